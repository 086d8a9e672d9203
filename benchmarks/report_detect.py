"""Render click-to-detect benchmark results (JSON from benchmarks/detect.py) as Markdown.

    python benchmarks/report_detect.py docs/benchmarks/detect_*.json --out docs/benchmarks/detect.md

Every number comes from the JSON files; the targets of the click-to-detect issue are
checked and shown with their gap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import generated_by, run_on

ORDER = ("c3det", "late-fusion", "early-fusion", "passthrough", "plain")
SHOW_K = (0, 1, 3, 5, 10, 20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    parts = [
        "# Click-to-detect benchmark",
        "",
        *generated_by("detect"),
        "mAP is VOC07 11-point AP@0.5 over all classes with ground truth, on whole test images",
        "(C3Det's protocol: k simulated centre clicks per 1024 px patch, without replacement).",
        "",
    ]
    for path in args.results:
        parts += _section(path, json.loads(path.read_text()))
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}")
    return 0


def _section(path: Path, r: dict) -> list[str]:
    methods = {m: r["methods"][m] for m in ORDER if m in r["methods"]}
    lines = [
        f"## {Path(r['train']).name}",
        "",
        f"- {run_on(r)}; train {r['train_images']} images, test {r['test_images']} "
        f"images ({'split by image from one folder' if r['train'] == r['test'] else 'given test set'}); "
        f"boxes: {r['boxes']}; training budget {r['budget_minutes']} min per model"
        + (
            " (each click model starts from the plain detector; its minutes include the plain one's)"
            if r.get("warm_start")
            else ""
        )
        + f"; {len(next(iter(methods.values()))['mAP_per_session'])} session(s) of clicks.",
        f"- plot: ![mAP vs clicks]({path.with_suffix('.png').name})",
        "",
        "| method | " + " | ".join(f"k={k}" for k in SHOW_K) + " | train min (idle) |",
        "|---|" + "---|" * (len(SHOW_K) + 1),
    ]
    for name, res in methods.items():
        cells = [_at(res, k) for k in SHOW_K]
        idle = r.get("train_minutes_idle", {}).get(name)
        minutes = f"{r['train_minutes'].get(name, '-')}" + (f" ({idle})" if idle is not None else "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {minutes} |")
    lines += [
        "",
        "Clicked recall (share of clicked objects returned with the clicked class at IoU >= 0.5, "
        "or within the point rule for points-only data):",
        "",
        "| method | " + " | ".join(f"k={k}" for k in SHOW_K if k) + " |",
        "|---|" + "---|" * (len(SHOW_K) - 1),
    ]
    for name, res in methods.items():
        if name != "plain":
            lines.append(
                f"| {name} | " + " | ".join(_at(res, k, "clicked_recall") for k in SHOW_K if k) + " |"
            )
    lat = r["latency_ms"]
    lines += [
        "",
        f"Latency on a {r['image_size'][0]} x {r['image_size'][1]} image (C3Det): set_image p50 "
        f"{lat['set_image']['p50']} ms, p95 {lat['set_image']['p95']} ms; predict p50 "
        f"{lat['predict']['p50']} ms, p95 {lat['predict']['p95']} ms.",
        "",
        "Targets:",
        "",
    ]
    lines += [f"- {line}" for line in _targets(methods, r)]
    if r.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in r["notes"]]
    return lines + [""]


def _at(res: dict, k: int, key: str = "mAP_mean") -> str:
    if k not in res["k"]:
        return "-"
    value = res[key][res["k"].index(k)]
    return "-" if value is None else f"{value:.3f}"


def _value(res: dict, k: int, key: str = "mAP_mean") -> float | None:
    return res[key][res["k"].index(k)] if k in res["k"] else None


def _targets(methods: dict, r: dict) -> list[str]:
    c3 = methods["c3det"]
    ks = [k for k in c3["k"] if k >= 1]
    out = []
    for rival in ("late-fusion", "early-fusion", "passthrough"):
        if rival in methods:
            gaps = [
                _value(c3, k) - _value(methods[rival], k) for k in ks if _value(methods[rival], k) is not None
            ]
            ok = all(g > 0 for g in gaps)
            out.append(
                f"C3Det above {rival} at every k >= 1: {'met' if ok else 'MISSED'} "
                f"(smallest margin {min(gaps):+.3f})"
            )
    gain = _value(c3, 20) - _value(c3, 0)
    out.append(
        f"C3Det at 20 clicks >= 0 clicks + 0.10: {'met' if gain >= 0.10 else 'MISSED'} (gain {gain:+.3f})"
    )
    if "late-fusion" in methods:
        gap = _value(c3, 3) - _value(methods["late-fusion"], 20)
        out.append(f"C3Det at 3 clicks >= Late Fusion at 20: {'met' if gap >= 0 else 'MISSED'} ({gap:+.3f})")
    recall = [v for v in c3["clicked_recall"] if v is not None]
    out.append(
        f"clicked recall >= 0.95 at every k: {'met' if min(recall) >= 0.95 else 'MISSED'} "
        f"(lowest {min(recall):.3f})"
    )
    if "plain" in methods:
        drop = _value(c3, 0) - _value(methods["plain"], 0)
        out.append(f"C3Det at 0 clicks vs the plain detector: {drop:+.3f}")
    lat = r["latency_ms"]
    out.append(
        f"predict p95 <= 100 ms: {'met' if lat['predict']['p95'] <= 100 else 'MISSED'} "
        f"({lat['predict']['p95']} ms); set_image <= 1 s: "
        f"{'met' if lat['set_image']['p95'] <= 1000 else 'MISSED'} ({lat['set_image']['p95']} ms)"
    )
    minutes = r.get("train_minutes_idle") or r["train_minutes"]
    slowest = max(minutes.values())
    kind = "steps x measured speed, idle machine" if "train_minutes_idle" in r else "wall clock"
    out.append(
        f"each model trains within 15 minutes: {'met' if slowest <= 15 else 'MISSED'} "
        f"(slowest {slowest} min, {kind})"
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
