"""Training samples for the click detector: crops, flips, simulated clicks, dense targets.

A sample is a square crop of one training image (objects cut below 70% visibility
become ignore regions, as in C3Det's patching), flipped and transposed at random, with
clicks on a random subset of its objects (C3Det's training synthesis) and CenterNet
targets on the stride-4 grid.

An object may carry a loss weight (``objects.extra[LOSS_WEIGHT]``, ``float[N]``, 1 when
absent): box-level active learning trains on images whose unqueried predictions are noisy
labels, dampened by lambda_d (:mod:`fewclick.active`). The paper averages the loss over the
anchors assigned to a box; on our dense grid the cells "assigned" to a box are the cells
inside it: a cell inside boxes takes the highest of their weights, a cell on a Gaussian
takes the weight of the object whose Gaussian is highest there, and the object's size and
offset terms take its weight. Cells of no box take ``objects.extra[BACKGROUND_WEIGHT]`` (a
number, 1 when absent): in a partly labeled image nobody said that they are background.
A box answered *background* is an ignore-type object flagged ``objects.extra[NEGATIVE]``
(``bool[N]``): no peak, its cells labeled negatives at its weight instead of ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewclick.io.tiling import Tile, crop_objects
from fewclick.simulate.clicks import object_centres, training_click_indices
from fewclick.types import (
    Objects,
    geometry_only,
    polygons_to_boxes,
    polygons_to_rboxes,
    rboxes_to_polygons,
)

#: ``Objects.extra`` key of the per-object loss weight (``float[N]``)
LOSS_WEIGHT = "loss_weight"
#: ``Objects.extra`` key of the loss weight of cells that no object reaches (a number)
BACKGROUND_WEIGHT = "background_weight"
#: ``Objects.extra`` key: ``bool[N]``, an ignore-type object that is a box answered background
NEGATIVE = "negative"


@dataclass
class Sample:
    image: np.ndarray  # uint8[S, S, 3]
    objects: Objects  # in crop pixels
    clicked: np.ndarray  # int64[K] indices into objects


def random_crop(
    image: np.ndarray, objects: Objects, size: int, rng: np.random.Generator, min_visible: float = 0.7
) -> tuple[np.ndarray, Objects]:
    """A ``size`` x ``size`` crop (zero-padded where the image is smaller), centred half of
    the time on a random object so that sparse images still give objects to learn."""
    h, w = image.shape[:2]
    centres = object_centres(objects) if len(objects) else np.zeros((0, 2))
    usable = np.flatnonzero(np.isfinite(centres).all(1))
    if len(usable) and rng.random() < 0.5:
        cx, cy = centres[rng.choice(usable)] + rng.uniform(-size / 3, size / 3, 2)
        x0, y0 = int(cx - size / 2), int(cy - size / 2)
    else:
        x0, y0 = int(rng.integers(0, max(w - size, 0) + 1)), int(rng.integers(0, max(h - size, 0) + 1))
    x0 = int(np.clip(x0, 0, max(w - size, 0)))
    y0 = int(np.clip(y0, 0, max(h - size, 0)))
    tile = Tile(x0, y0, min(x0 + size, w), min(y0 + size, h))
    crop = np.zeros((size, size, 3), np.uint8)
    crop[: tile.height, : tile.width] = image[tile.y0 : tile.y1, tile.x0 : tile.x1]
    objs = crop_objects(geometry_only(objects), tile, min_visible=min_visible, cut_as_difficult=True)
    return crop, objs


def random_flip(image: np.ndarray, objects: Objects, rng: np.random.Generator) -> tuple[np.ndarray, Objects]:
    """Horizontal / vertical flips and a transpose, each with probability 1/2 (square crops)."""
    ops = rng.random(3) < 0.5
    if not ops.any():
        return image, objects
    if ops[0]:
        image = image[:, ::-1]
    if ops[1]:
        image = image[::-1]
    if ops[2]:
        image = image.transpose(1, 0, 2)
    return np.ascontiguousarray(image), flip_objects(objects, image.shape[0], ops)


def flip_objects(objects: Objects, size: int, ops: np.ndarray) -> Objects:
    """``objects`` of a ``size`` x ``size`` crop after a horizontal flip (``ops[0]``), a
    vertical flip (``ops[1]``) and then a transpose (``ops[2]``). Geometry moves through
    corner polygons, so oriented boxes follow exactly."""
    if not np.any(ops):
        return objects

    def move(xy: np.ndarray) -> np.ndarray:
        xy = xy.copy()
        if ops[0]:
            xy[..., 0] = size - xy[..., 0]
        if ops[1]:
            xy[..., 1] = size - xy[..., 1]
        if ops[2]:
            xy = xy[..., ::-1]
        return xy

    boxes = objects.boxes.copy()
    finite = np.isfinite(boxes).all(1)
    if finite.any():
        corners = boxes[finite][:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(-1, 4, 2)  # two opposite corners suffice
        boxes[finite] = polygons_to_boxes(move(corners))
    rboxes = None
    if objects.rboxes is not None:
        rboxes = (
            polygons_to_rboxes(move(rboxes_to_polygons(objects.rboxes))) if len(objects) else objects.rboxes
        )
    points = None if objects.points is None else move(objects.points)
    return Objects(
        objects.labels,
        boxes,
        rboxes=rboxes,
        points=points,
        ignore=objects.ignore,
        difficult=objects.difficult,
        extra=objects.extra,
    )


def make_sample(
    image: np.ndarray,
    objects: Objects,
    size: int,
    rng: np.random.Generator,
    max_clicks: int = 20,
    click_rule: str = "code",
) -> Sample:
    crop, objs = random_crop(image, objects, size, rng)
    crop, objs = random_flip(crop, objs, rng)
    clicked = training_click_indices(objs, rng, max_clicks, click_rule)
    return Sample(crop, objs, clicked)


@dataclass
class Targets:
    """CenterNet targets of one sample on an ``h x w`` grid.

    heatmap ``float32[C, h, w]`` (Gaussian peaks), weight ``float32[h, w]`` (0 inside
    ignore regions), and per object (ignored ones excluded): cell ``index int64[N]``
    (row-major), class ``labels``, ``size float32[N, 2]`` log(w/s), log(h/s), ``offset
    float32[N, 2]``, ``angle float32[N, 2]`` (cos 2a, sin 2a), ``boxes float32[N, 4]`` in
    cells (for the User-input Enforcing Loss), ``object int64[N]`` indices into the
    sample's objects, and ``object_weight float32[N]``, each object's loss weight."""

    heatmap: np.ndarray
    weight: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    size: np.ndarray
    offset: np.ndarray
    angle: np.ndarray
    boxes: np.ndarray
    object: np.ndarray
    object_weight: np.ndarray


def build_targets(
    objects: Objects, shape: tuple[int, int], num_classes: int, stride: int = 4, point_radius: float = 6.0
) -> Targets:
    """Targets for ``objects`` in an image of ``shape = (H, W)``. Objects known only by a
    point get a Gaussian of ``point_radius`` pixels; boxes get CenterNet's size-adaptive one;
    loss weights as the module says."""
    h, w = shape[0] // stride, shape[1] // stride
    heat = np.zeros((num_classes, h, w), np.float32)
    weight = np.ones((h, w), np.float32)
    loss_weight = _loss_weights(objects)
    negative = np.asarray(objects.extra.get(NEGATIVE, np.zeros(len(objects), bool)), bool).reshape(-1)
    # class-agnostic: the highest Gaussian at each cell and the loss weight of its object
    strongest = np.zeros((h, w), np.float32)
    cell_weight = np.full((h, w), _background_weight(objects), np.float32)
    for i in np.flatnonzero(~objects.ignore | negative):  # the cells assigned to each box
        if np.isfinite(objects.boxes[i]).all():
            x0, y0, x1, y1 = np.floor(objects.boxes[i] / stride).astype(int)
            inside = cell_weight[max(y0, 0) : max(y1 + 1, 0), max(x0, 0) : max(x1 + 1, 0)]
            np.maximum(inside, loss_weight[i], out=inside)
    centres = object_centres(objects) if len(objects) else np.zeros((0, 2), np.float32)
    sizes = _object_sizes(objects)
    keep = []
    for i in range(len(objects)):
        if negative[i]:
            continue
        if objects.ignore[i]:
            if np.isfinite(objects.boxes[i]).all():
                x0, y0, x1, y1 = (objects.boxes[i] / stride).astype(int)
                weight[max(y0, 0) : max(y1 + 1, 0), max(x0, 0) : max(x1 + 1, 0)] = 0
            continue
        c = centres[i] / stride
        cx, cy = int(np.floor(c[0])), int(np.floor(c[1]))
        if not (0 <= cx < w and 0 <= cy < h):
            continue
        bw, bh = sizes[i] / stride if np.isfinite(sizes[i]).all() else (point_radius * 2 / stride,) * 2
        patch, rows, cols = _draw_gaussian(heat[objects.labels[i]], cx, cy, _radius(bw, bh))
        higher = patch > strongest[rows, cols]
        strongest[rows, cols][higher] = patch[higher]
        cell_weight[rows, cols][higher] = loss_weight[i]
        keep.append(i)
    keep = np.asarray(keep, np.int64)
    cells = np.floor(centres[keep] / stride).astype(np.int64) if len(keep) else np.zeros((0, 2), np.int64)
    angle = np.zeros((len(keep), 2), np.float32)
    angle[:, 0] = 1
    if objects.rboxes is not None and len(keep):
        a = canonical_rboxes(objects.rboxes[keep])[:, 4].astype(np.float64)
        angle = np.stack([np.cos(2 * a), np.sin(2 * a)], 1).astype(np.float32)
    size = np.log(np.maximum(np.nan_to_num(sizes[keep], nan=point_radius * 2), 1.0) / stride).astype(
        np.float32
    )
    boxes = objects.boxes[keep] / stride if len(keep) else np.zeros((0, 4), np.float32)
    missing = ~np.isfinite(boxes).all(1)
    if missing.any():
        r = point_radius / stride
        p = centres[keep][missing] / stride
        boxes[missing] = np.concatenate([p - r, p + r], 1)
    weight *= cell_weight
    return Targets(
        heat,
        weight,
        cells[:, 1] * w + cells[:, 0],
        objects.labels[keep],
        size,
        (centres[keep] / stride - cells).astype(np.float32),
        angle,
        boxes.astype(np.float32),
        keep,
        loss_weight[keep].astype(np.float32),
    )


def _background_weight(objects: Objects) -> float:
    value = float(objects.extra.get(BACKGROUND_WEIGHT, 1.0))
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"expected a finite, non-negative background weight, got {value}")
    return value


def _loss_weights(objects: Objects) -> np.ndarray:
    """``float32[N]``: each object's loss weight (1 where ``objects.extra`` gives none)."""
    given = objects.extra.get(LOSS_WEIGHT)
    if given is None:
        return np.ones(len(objects), np.float32)
    given = np.asarray(given, np.float32).reshape(-1)
    if len(given) != len(objects) or not np.isfinite(given).all() or (given < 0).any():
        raise ValueError(
            f"expected {len(objects)} finite, non-negative loss weights, got {given.tolist()[:10]}"
        )
    return given


def canonical_rboxes(rboxes: np.ndarray) -> np.ndarray:
    """Oriented boxes with ``w >= h`` (sides swapped and the angle turned by pi/2 where
    needed) and the angle in [0, pi): one description per box, so that the angle target
    (cos 2a, sin 2a) does not flip sign between two descriptions of the same box."""
    rb = np.asarray(rboxes, np.float32).copy()
    swap = rb[:, 2] < rb[:, 3]
    rb[swap, 2], rb[swap, 3] = rboxes[swap, 3], rboxes[swap, 2]
    rb[swap, 4] += np.pi / 2
    rb[:, 4] = np.mod(rb[:, 4], np.pi)
    return rb


def _object_sizes(objects: Objects) -> np.ndarray:
    """(w, h) per object: the oriented box's own sides (w >= h) when present, else the box's."""
    if objects.rboxes is not None and len(objects):
        return canonical_rboxes(objects.rboxes)[:, 2:4]
    b = objects.boxes
    return np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) if len(b) else np.zeros((0, 2), np.float32)


def _radius(w: float, h: float, min_overlap: float = 0.7) -> float:
    """CenterNet's Gaussian radius (in cells) for a box of ``w x h`` cells: the largest
    corner shift that keeps IoU >= min_overlap; sigma = (2r + 1) / 6."""
    a1, b1 = 1, h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return max(0.0, float(min(r1, r2, r3)))


def _draw_gaussian(heat: np.ndarray, cx: int, cy: int, radius: float) -> tuple[np.ndarray, slice, slice]:
    """Raise ``heat`` to a Gaussian peak at cell (cx, cy); returns the Gaussian's patch and
    the rows and columns of ``heat`` it covers."""
    r = int(np.ceil(radius))
    sigma = max((2 * radius + 1) / 6, 0.5)
    ys, xs = np.ogrid[-r : r + 1, -r : r + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma)).astype(np.float32)
    h, w = heat.shape
    x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
    patch = g[y0 - (cy - r) : y1 - (cy - r), x0 - (cx - r) : x1 - (cx - r)]
    np.maximum(heat[y0:y1, x0:x1], patch, out=heat[y0:y1, x0:x1])
    return patch, slice(y0, y1), slice(x0, x1)


def side_range(objects: list[Objects], num_classes: int) -> dict[int, list[float]]:
    """Per class id, the smallest and largest box side of the (not ignored) ``objects``:
    stored with a detector, whose predictor drops proposals far outside them."""
    sides: dict[int, list[float]] = {}
    for o in objects:
        b = o.boxes
        ok = np.isfinite(b).all(1) & ~o.ignore
        for label, (x0, y0, x1, y1) in zip(o.labels[ok], b[ok]):
            sides.setdefault(int(label), []).extend([float(x1 - x0), float(y1 - y0)])
    return {k: [min(v), max(v)] for k, v in sorted(sides.items()) if k < num_classes}
