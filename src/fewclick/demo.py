"""The demo: a dataset, every kind of simulated annotator input on one image, one picture.

``render_inputs`` draws one image with its ground truth and the inputs of the papers'
simulated annotators (the same functions the evaluation protocols use);
``run_demo`` makes a synthetic dataset (or reads one) and calls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fewclick import draw
from fewclick.io import Dataset, ImageRecord, read_dataset
from fewclick.io.rle import objects_masks
from fewclick.types import Objects

ALL_KINDS = ("centre", "corrective", "extreme", "scribble", "coarse", "oracle")


def record_image(record: ImageRecord) -> np.ndarray:
    """The pixels of ``record``: from its file, or kept in memory by a generator."""
    if record.extra.get("pixels") is not None:
        return record.extra["pixels"]
    return record.load_image()


def render_inputs(
    dataset: Dataset, record: ImageRecord, kinds: list[str], out: str | Path, seed: int = 0
) -> Path:
    """Draw ``record`` with its ground truth and one panel per simulated input kind."""
    image = record_image(record)
    rng = np.random.default_rng(seed)
    panels = ["ground truth", *kinds]
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    h, w = image.shape[:2]
    draw.draw_image(axes.flat[0], image, f"{record.file_name}: {len(record.objects)} objects")
    draw.draw_objects(axes.flat[0], record.objects, h, w)
    target = _target_object(record.objects, h, w)
    for ax, kind in zip(axes.flat[1:], kinds):
        try:
            _PANELS[kind](ax, image, record.objects, target, rng)
        except ValueError as exc:
            where = f"object {target}" if target is not None else "its objects"
            raise ValueError(f"{record.file_name}: cannot simulate {kind} input on {where} ({exc})") from None
        if kind != "centre" and target is None:
            ax.set_title(ax.get_title() + "\n(needs boxes or masks; this image has none)", fontsize=9)
    fig.suptitle(
        f"{dataset.format}: {', '.join(dataset.classes[:8])}{' ...' if len(dataset.classes) > 8 else ''}",
        fontsize=9,
    )
    return draw.save_figure(fig, out)


def _target_object(objects: Objects, height: int, width: int) -> int | None:
    """The object the single-object panels use: the largest non-ignored one with a region."""
    areas = np.nan_to_num(
        (objects.boxes[:, 2] - objects.boxes[:, 0]) * (objects.boxes[:, 3] - objects.boxes[:, 1])
    )
    areas[objects.ignore] = 0
    return int(np.argmax(areas)) if len(objects) and areas.max() > 0 else None


def _object_panel(title: str, draw_inputs):
    """A single-object panel: ``image`` under ``title``, the ``target`` object's outline, the
    inputs ``draw_inputs(ax, gt, box, rng)`` simulates on it (``gt`` its mask, ``box`` its
    box) and a zoom on it; without a target, the image alone."""

    def panel(ax, image, objects: Objects, target: int | None, rng) -> None:
        draw.draw_image(ax, image, title)
        if target is None:
            return
        h, w = image.shape[:2]
        gt = objects_masks(objects[target], h, w)[0]
        draw.draw_mask_outline(ax, gt, "white")
        draw_inputs(ax, gt, objects.boxes[target], rng)
        draw.zoom(ax, objects.boxes[target], 1.0, h, w)

    return panel


def _panel_centre(ax, image, objects, target, rng) -> None:
    from fewclick.simulate import centre_clicks, click_order

    k = min(5, len(objects))
    clicks = centre_clicks(objects, k, click_order(objects, rng))
    draw.draw_image(ax, image, f"C3Det: {len(clicks)} centre clicks (class = colour)")
    draw.draw_clicks(ax, clicks)


def _corrective(ax, gt, box, rng) -> None:
    from fewclick.simulate import corrective_clicks, noisy_box

    h, w = gt.shape
    loose = noisy_box(box, rng, sigma=0.1 * _box_size(box), image_size=(w, h))
    # A stand-in first prediction: the ellipse inscribed in the noisy box.
    pred = _inscribed_ellipse(loose, h, w)
    clicks = corrective_clicks(gt, pred, 3, rng, strategy="center", noise_sigma=1.0)
    draw.draw_mask_outline(ax, pred, "#ffd400")
    draw.draw_boxes(ax, loose[None], ["#ffd400"], style="--")
    draw.draw_clicks(ax, clicks, mask_clicks=True)


def _extreme(ax, gt, box, rng) -> None:
    from fewclick.simulate import extreme_points

    draw.draw_extreme_points(ax, extreme_points(gt, rng, jitter_px=1))


def _scribble(ax, gt, box, rng) -> None:
    from fewclick.simulate import scribble

    # A stand-in prediction that misses the object's right half.
    x0, _, x1, _ = box
    missed = gt.copy()
    missed[:, : int((x0 + x1) / 2)] = False
    stroke = scribble(gt, missed, rng)
    draw.draw_mask_outline(ax, missed, "#e8273c")
    if stroke is not None:
        draw.draw_scribble(ax, stroke)


def _panel_coarse(ax, image, objects, target, rng) -> None:
    from fewclick.simulate import coarse_points

    h, w = image.shape[:2]
    has_box = ~np.isnan(objects.boxes).any(axis=1)
    draw.draw_image(ax, image, "coarse points (red) vs box centres (white)")
    if not has_box.any():
        return
    objs = objects[np.flatnonzero(has_box)]
    points = coarse_points(objs.boxes, rng)
    centres = objs.centers
    ax.scatter(centres[:, 0], centres[:, 1], c="white", s=6)
    ax.scatter(points[:, 0], points[:, 1], c="#e8273c", s=6)


def _panel_oracle(ax, image, objects, target, rng) -> None:
    from fewclick.simulate import oracle

    h, w = image.shape[:2]
    draw.draw_image(ax, image, "box oracle: snapped (green) / background (red)")
    usable = np.flatnonzero(~np.isnan(objects.boxes).any(axis=1))
    if len(usable) == 0:
        return
    picked = rng.choice(usable, size=min(8, len(usable)), replace=False)
    sizes = np.array([_box_size(b) for b in objects.boxes[picked]])
    queries = objects.boxes[picked] + rng.normal(0, 1, (len(picked), 4)) * sizes[:, None] * 0.2
    labels = objects.labels[picked].copy()
    answer = oracle(queries, labels, objects)
    background = answer.gt_index < 0
    draw.draw_boxes(ax, queries, ["#e8273c" if b else "#ffd400" for b in background], style="--")
    snapped = answer.boxes[~background]
    draw.draw_boxes(ax, snapped, ["#1db954"] * len(snapped), linewidth=1.2)


_PANELS = {
    "centre": _panel_centre,
    "corrective": _object_panel("box -> mask: noisy box, 3 corrective clicks", _corrective),
    "extreme": _object_panel("extreme points and their box", _extreme),
    "scribble": _object_panel("corrective scribble into a missed part", _scribble),
    "coarse": _panel_coarse,
    "oracle": _panel_oracle,
}


def _box_size(box: np.ndarray) -> float:
    return float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0)))


def _inscribed_ellipse(box: np.ndarray, height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = max((box[2] - box[0]) / 2, 1), max((box[3] - box[1]) / 2, 1)
    return ((xs + 0.5 - cx) / rx) ** 2 + ((ys + 0.5 - cy) / ry) ** 2 <= 1


def run_demo(
    out: str | Path, data: str | Path | None = None, image: str | None = None, seed: int = 0
) -> Iterator[str]:
    """Make (or read) a dataset, draw every simulated input on one image; yields progress lines."""
    from fewclick.data.synthetic import make_dataset

    out = Path(out)
    if data is None:
        synthetic = out / "synthetic"
        make_dataset("aerial", 4, seed=seed, out_dir=synthetic)
        yield f"generated 4 synthetic aerial images in {synthetic}"
        data = synthetic / "annotations.json"
    dataset = read_dataset(data)
    summary = dataset.summary()
    yield f"read {data}: {summary['format']}, {summary['images']} images, {summary['objects']} objects"
    if not dataset.images:
        raise ValueError(f"{data}: the dataset has no images to show")
    record = dataset.image(image) if image else max(dataset.images, key=lambda r: len(r.objects))
    path = render_inputs(dataset, record, list(ALL_KINDS), out / "inputs.png", seed=seed)
    yield f"wrote {path}"
