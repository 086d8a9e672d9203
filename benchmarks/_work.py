"""The benchmarks' work folders (a folder's models belong to one training budget), their
reports and a plot they share."""

from __future__ import annotations

import json
from pathlib import Path


def claim_work(work: Path, minutes: float) -> None:
    """Record ``minutes`` as the budget of the models in ``work``, or stop when the models
    already there were trained with another budget (a resumed run would silently measure
    them under the new run's name)."""
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "budget.json"
    if stamp.is_file():
        stored = json.loads(stamp.read_text()).get("budget_minutes")
        if stored != minutes:
            raise SystemExit(
                f"{work} holds models trained with a {stored}-minute budget, not {minutes}: "
                "pass another --work or delete the folder"
            )
    stamp.write_text(json.dumps({"budget_minutes": minutes}))


def load_average() -> float:
    """The machine's 1-minute load average, which the reports name beside timings."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def write_report(report: dict, out: Path) -> None:
    """``report`` as indented JSON at ``out`` (NaN as null), its folder made."""
    from fewclick.protocols import json_ready

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(report), indent=1))


def plot_iou_histograms(path: Path, title: str, ylabel: str, series: list) -> None:
    """Histograms of IoU with the person's boxes, one per ``(ious, label)`` of ``series``,
    the manual-quality bar (0.7) marked: how the boxes of two ways compare."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 21)
    for ious, label in series:
        ax.hist(ious, bins, alpha=0.6, label=label)
    ax.axvline(0.7, color="k", lw=1, ls="--")
    ax.set_xlabel("IoU with the person's box (0.7: manual quality)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
