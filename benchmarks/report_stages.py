"""Where the seconds of SAM's proposals go, before and after a change (issue 69): a Markdown
table and a plot from ``lookalikes.py`` results (their ``stages`` and ``latency`` keys).

    python benchmarks/report_stages.py NAME=F.json [NAME=F.json ...] --out docs/benchmarks/X.md

Each ``NAME=F.json`` is one run, named in the table and the plot (X.png beside the page):
per stage, its seconds a window on average; then the latency keys, the prompts a window and
the look-alikes' quality. Every number comes from the JSON files; the load each ran at is
the JSON's (``latency.load``, read at the end of the run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fewclick.predict.stage_clock import STAGES

LATENCY = ("window_s_p50", "window_s_p95", "encode_s_p95", "prepare_s_p95", "decode_ms_per_prompt_p50")
QUALITY = ("recall70", "recall50", "precision", "precision50")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="NAME=F.json")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    runs = []
    for entry in args.runs:
        name, sep, path = entry.partition("=")
        if not sep or not path:
            p.error(f"expected NAME=F.json, got {entry!r}")
        report = json.loads(Path(path).read_text())
        if "stages" not in report:
            p.error(f"{path}: no 'stages' key (a lookalikes.py run before issue 69, or not one)")
        runs.append((name, Path(path), report))
    args.out.write_text("\n".join(_page(runs)) + "\n")
    _plot(runs, args.out.with_suffix(".png"))
    return 0


def _page(runs: list) -> list[str]:
    names = [name for name, _, _ in runs]
    head = "| | " + " | ".join(names) + " |"
    rule = "|---" * (len(names) + 1) + "|"
    lines = ["## Seconds a window, per stage", "", head, rule]
    for stage in STAGES:
        cells = [f"{_per_window(r, stage):.2f}" for _, _, r in runs]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + " | ".join(f"**{sum(_per_window(r, s) for s in STAGES):.2f}**" for _, _, r in runs)
        + " |"
    )
    lines += ["", "## Latency, prompts and quality", "", head, rule]
    for key in (*LATENCY, "prompts_per_window_p50", "windows", "load"):
        lines.append(f"| {key} | " + " | ".join(_number(r["latency"].get(key)) for _, _, r in runs) + " |")
    for part in ("first_click", "opened"):
        for key in QUALITY:
            lines.append(
                f"| {part} {key} | " + " | ".join(_number(r[part].get(key)) for _, _, r in runs) + " |"
            )
    lines += ["", "Runs:", ""]
    lines += [f"- {name} ({path.name}, {r['date']}): `{r['command']}`" for name, path, r in runs]
    return lines


def _per_window(report: dict, stage: str) -> float:
    windows = report["latency"].get("windows") or 0
    return report["stages"][stage]["seconds"] / windows if windows else 0.0


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def _plot(runs: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 * len(runs) + 2.2))
    for row, (_, _, report) in enumerate(runs):
        left = 0.0
        for k, stage in enumerate(STAGES):
            width = _per_window(report, stage)
            ax.barh(row, width, left=left, color=f"C{k}", label=stage if row == 0 else None)
            left += width
    ax.set_yticks(range(len(runs)), [name for name, _, _ in runs])
    ax.invert_yaxis()
    ax.set_xlabel("seconds a window of SAM's proposals, one thread (mean)")
    ax.legend(ncol=len(STAGES), fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
