"""Pictures of images, their objects and annotator inputs, with matplotlib.

Each ``draw_*`` function draws onto a matplotlib ``Axes`` so that callers compose
figures; :func:`save_figure` writes one. Colours: one per class (tab10/tab20), mask
clicks green (positive) and red (negative).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from fewclick.io.rle import objects_masks  # noqa: E402
from fewclick.types import Clicks, ExtremePoints, Objects, Scribble, rboxes_to_polygons  # noqa: E402

POSITIVE, NEGATIVE = "#1db954", "#e8273c"


def class_colour(label: int) -> tuple:
    cmap = plt.get_cmap("tab10" if label < 10 else "tab20")
    return cmap(label % cmap.N)


def draw_image(ax, image: np.ndarray, title: str | None = None) -> None:
    ax.imshow(image)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def draw_objects(
    ax,
    objects: Objects,
    height: int,
    width: int,
    *,
    masks: bool = True,
    oriented: bool = True,
    linewidth: float = 0.8,
) -> None:
    """Boxes (oriented when present), translucent masks and points of ``objects``."""
    if masks and objects.segmentations is not None and any(s is not None for s in objects.segmentations):
        overlay = np.zeros((height, width, 4), np.float32)
        decoded = objects_masks(objects, height, width)
        for label, m, seg in zip(objects.labels, decoded, objects.segmentations):
            if seg is not None:
                overlay[m] = (*class_colour(int(label))[:3], 0.35)
        ax.imshow(overlay)
    polys = rboxes_to_polygons(objects.rboxes) if oriented and objects.rboxes is not None else None
    for i, label in enumerate(objects.labels):
        colour = class_colour(int(label))
        style = "--" if objects.ignore[i] else "-"
        if polys is not None:
            ax.add_patch(Polygon(polys[i], closed=True, fill=False, ec=colour, lw=linewidth, ls=style))
        elif not np.isnan(objects.boxes[i]).any():
            x0, y0, x1, y1 = objects.boxes[i]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=linewidth, ls=style))
        if objects.points is not None and not np.isnan(objects.points[i]).any():
            ax.plot(*objects.points[i], ".", color=colour, ms=3)


def draw_clicks(ax, clicks: Clicks, *, mask_clicks: bool = False, size: float = 40) -> None:
    """Detection clicks as class-coloured stars; mask clicks as green/red discs."""
    if len(clicks) == 0:
        return
    if mask_clicks:
        colours = [POSITIVE if p else NEGATIVE for p in clicks.positive]
        ax.scatter(clicks.xy[:, 0], clicks.xy[:, 1], c=colours, s=size, edgecolors="white", linewidths=0.8)
    else:
        colours = [class_colour(int(lab)) for lab in clicks.labels]
        ax.scatter(
            clicks.xy[:, 0],
            clicks.xy[:, 1],
            c=colours,
            s=size * 2,
            marker="*",
            edgecolors="white",
            linewidths=0.6,
        )


def draw_extreme_points(ax, points: ExtremePoints, colour: str = "#ffd400") -> None:
    ax.scatter(points.points[:, 0], points.points[:, 1], c=colour, s=25, edgecolors="black", linewidths=0.6)
    x0, y0, x1, y1 = points.box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=1, ls=":"))


def draw_scribble(ax, scribble: Scribble, colour: str = POSITIVE) -> None:
    ax.plot(scribble.points[:, 0], scribble.points[:, 1], "-", color=colour, lw=2)
    ax.plot(*scribble.points[0], "o", color=colour, ms=4)


def draw_mask_outline(ax, mask: np.ndarray, colour: str = "white", linewidth: float = 1.0) -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=linewidth)


def draw_boxes(ax, boxes: np.ndarray, colours: list, linewidth: float = 1.0, style: str = "-") -> None:
    for (x0, y0, x1, y1), colour in zip(np.asarray(boxes), colours):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=linewidth, ls=style))


def zoom(
    ax, box: np.ndarray, margin: float = 1.0, height: int | None = None, width: int | None = None
) -> None:
    """Zoom ``ax`` onto a square around ``box``, ``margin`` times its longer side on each side."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * (0.5 + margin) + 8
    ax.set_xlim(max(cx - half, 0), min(cx + half, width or cx + half))
    ax.set_ylim(min(cy + half, height or cy + half), max(cy - half, 0))


def save_figure(fig, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` (PNG unless the suffix names another format); returns the file."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
