"""The plot of ``prequential.py``: each source's seconds saved so far, image by image, on
the images it had not seen, and the source that served each image marked under them."""

from __future__ import annotations

from pathlib import Path

from fewclick.active.prequential import NONE


def plot(report: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report["per_image"]
    x = np.arange(1, len(rows) + 1)
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(8, 5), height_ratios=[4, 1], sharex=True)
    colours = {NONE: "lightgrey", **{n: plt.cm.tab10(k) for k, n in enumerate(report["sources"])}}
    for name in report["sources"]:
        saved = np.cumsum([sum(r["saved"][name].values()) for r in rows])
        ax.plot(x, saved, label=name, lw=1.5, color=colours[name])
    ax.plot(x, np.cumsum([r["served_seconds"] for r in rows]), "k--", lw=2, label="served (the test's pick)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("seconds saved so far\n(on images not yet seen)")
    ax.set_title(f"{title}: test, then train (z = {report['z']})")
    ax.legend(fontsize=7, loc="upper left")
    names = [NONE, *report["sources"]]
    classes = sorted({int(c) for r in rows for c in r["served"]})
    for k, c in enumerate(classes):
        for i, r in enumerate(rows):
            src = r["served"].get(c, r["served"].get(str(c)))
            if src is not None:
                strip.barh(k, 1, left=i + 0.5, color=colours[src], edgecolor="none")
    strip.set_yticks(range(len(classes)), [f"class {c}" for c in classes], fontsize=7)
    strip.set_xlabel("image (in the order finished)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in names]
    strip.legend(handles, names, fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.6))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
