"""A plot two box benchmarks share (``click_boxes.py`` and ``tight_boxes.py``)."""

from __future__ import annotations

from pathlib import Path


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
