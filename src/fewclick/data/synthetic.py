"""Seeded synthetic scenes full of small objects, with exact ground truth.

Two kinds, both drawn with OpenCV from a ``numpy`` generator, so the same seed always
gives the same pixels:

- ``aerial``: ground with fields, roads and a water body; small and large vehicles parked
  along roads (rotated, shaded, with a cast shadow) and ships on the water;
- ``cells``: a stained-tissue background with nuclei of three classes that differ in
  size, shape, colour and texture (round dark inflammatory, elongated fibroblast,
  large pale epithelial).

Every object has an exact instance mask (the pixels drawn for it, minus what a later
object covers), its XYXY box, an oriented box, its centre point and a class.
The core tests and the demo use these scenes so they never depend on real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.rle import mask_to_rle
from fewclick.types import Objects

AERIAL_CLASSES = ["small-vehicle", "large-vehicle", "ship"]
CELL_CLASSES = ["epithelial", "fibroblast", "inflammatory"]
KINDS = ("aerial", "cells")


@dataclass(frozen=True)
class Scene:
    """One generated image: ``image uint8[H, W, 3]``, its objects and ``masks bool[N, H, W]``."""

    image: np.ndarray
    objects: Objects
    masks: np.ndarray
    classes: list[str]


@dataclass(frozen=True)
class _Shape:
    label: int
    cx: float
    cy: float
    w: float
    h: float
    angle: float  # radians, counter-clockwise on screen


def aerial_scene(
    rng: np.random.Generator, width: int = 512, height: int = 512, density: float = 1.0
) -> Scene:
    """An aerial-like scene: about ``60 * density`` vehicles per 512 x 512 px, a few ships."""
    image, water, roads = _aerial_background(rng, width, height)
    area_scale = width * height / 512**2
    shapes: list[_Shape] = []
    for _ in range(int(rng.poisson(60 * density * area_scale))):
        shape = _vehicle_on_road(rng, roads)
        if shape is not None:
            shapes.append(shape)
    for _ in range(int(rng.poisson(5 * density * area_scale))):
        shape = _ship_on_water(rng, water)
        if shape is not None:
            shapes.append(shape)
    shapes = _drop_overlaps(shapes, width, height)
    masks = np.zeros((len(shapes), height, width), bool)
    for i, shape in enumerate(shapes):
        _draw_vehicle(image, shape, rng) if shape.label < 2 else _draw_ship(image, shape, rng)
        masks[i] = _polygon_mask(shape, width, height, pointed=shape.label == 2)
    image = _sensor_noise(image, rng, sigma=4.0, blur=0.6)
    return _scene(image, shapes, masks, AERIAL_CLASSES)


def cell_scene(rng: np.random.Generator, width: int = 512, height: int = 512, density: float = 1.0) -> Scene:
    """A stained-tissue scene with about ``120 * density`` nuclei per 512 x 512 px."""
    base = np.array([236, 200, 222], np.float32)  # pinkish eosin
    image = np.empty((height, width, 3), np.float32)
    image[:] = base
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 6)
    image += texture[..., None] * np.array([18, 30, 20], np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    shapes = []
    n = int(rng.poisson(120 * density * width * height / 512**2))
    sizes = {0: (11.0, 8.5), 1: (14.0, 4.0), 2: (5.0, 5.0)}  # (semi-major, semi-minor) px
    for _ in range(n):
        label = int(rng.choice(3, p=[0.4, 0.25, 0.35]))
        a, b = (s * rng.uniform(0.8, 1.25) for s in sizes[label])
        shapes.append(
            _Shape(label, rng.uniform(0, width), rng.uniform(0, height), 2 * a, 2 * b, rng.uniform(0, np.pi))
        )
    shapes = _drop_overlaps(shapes, width, height, max_overlap=0.15)
    masks = np.zeros((len(shapes), height, width), bool)
    colours = {0: (150, 110, 190), 1: (110, 60, 150), 2: (60, 25, 95)}
    grain = rng.normal(0, 1, (height, width, 1)).astype(np.float32)  # chromatin texture
    for i, shape in enumerate(shapes):
        masks[i] = _ellipse_mask(shape, width, height)
        colour = np.array(colours[shape.label], np.float32) * rng.uniform(0.9, 1.1)
        pix = masks[i]
        image[pix] = np.clip(colour + grain[pix] * (12 if shape.label == 0 else 6), 0, 255).astype(np.uint8)
    image = _sensor_noise(image, rng, sigma=3.0, blur=0.8)
    return _scene(image, shapes, masks, CELL_CLASSES)


def make_scene(
    kind: str, rng: np.random.Generator, width: int = 512, height: int = 512, density: float = 1.0
) -> Scene:
    """One scene of ``kind`` (``"aerial"`` or ``"cells"``)."""
    if kind == "aerial":
        return aerial_scene(rng, width, height, density)
    if kind == "cells":
        return cell_scene(rng, width, height, density)
    raise ValueError(f"unknown synthetic scene kind {kind!r}; expected one of {KINDS}")


def make_dataset(
    kind: str,
    n_images: int,
    seed: int = 0,
    width: int = 512,
    height: int = 512,
    density: float = 1.0,
    out_dir: str | Path | None = None,
) -> Dataset:
    """``n_images`` scenes as a :class:`Dataset`. With ``out_dir`` the images are written as
    PNG under ``out_dir/images`` and the annotations as ``out_dir/annotations.json`` (COCO)."""
    if n_images < 0:
        raise ValueError(f"expected n_images >= 0, got {n_images}")
    rng = np.random.default_rng(seed)
    records = []
    classes = AERIAL_CLASSES if kind == "aerial" else CELL_CLASSES
    for i in range(n_images):
        scene = make_scene(kind, rng, width, height, density)
        name = f"{kind}_{seed}_{i:04d}.png"
        path = None
        if out_dir is not None:
            path = Path(out_dir) / "images" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        record = ImageRecord(f"images/{name}", width, height, scene.objects, path=path, id=i + 1)
        record.extra["pixels"] = None if out_dir is not None else scene.image
        records.append(record)
    dataset = Dataset(
        list(classes), records, format="synthetic", root=None if out_dir is None else Path(out_dir)
    )
    if out_dir is not None:
        from fewclick.io import write_dataset

        for record in records:
            record.extra.pop("pixels")
        write_dataset(dataset, Path(out_dir) / "annotations.json", "coco")
    return dataset


# --------------------------------------------------------------------------- aerial parts
def _aerial_background(rng: np.random.Generator, width: int, height: int):
    fields = cv2.resize(
        rng.uniform(0, 1, (6, 6)).astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST
    )
    green = np.array([92, 110, 70], np.float32)
    brown = np.array([140, 125, 95], np.float32)
    image = green * fields[..., None] + brown * (1 - fields[..., None])
    image += cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2)[..., None] * 10
    roads = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(2, 4)):
        horizontal = rng.random() < 0.5
        pos = int(rng.uniform(0.15, 0.85) * (height if horizontal else width))
        tilt = int(rng.uniform(-0.15, 0.15) * (width if horizontal else height))
        p0, p1 = ((0, pos), (width, pos + tilt)) if horizontal else ((pos, 0), (pos + tilt, height))
        cv2.line(roads, p0, p1, 1, thickness=int(rng.integers(36, 56)))
    image[roads > 0] = np.array([105, 105, 108], np.float32)
    water = np.zeros((height, width), np.uint8)
    if rng.random() < 0.8:
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        axes = (int(width * rng.uniform(0.2, 0.35)), int(height * rng.uniform(0.15, 0.3)))
        cv2.ellipse(water, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        water[roads > 0] = 0
        image[water > 0] = np.array([40, 70, 95], np.float32)
    _add_clutter(image, (roads > 0) | (water > 0), rng)
    return np.clip(image, 0, 255).astype(np.uint8), water > 0, roads > 0


def _add_clutter(image: np.ndarray, occupied: np.ndarray, rng: np.random.Generator) -> None:
    """Unannotated distractors: buildings (large rectangles with a shadow) and trees."""
    height, width = occupied.shape
    scale = width * height / 512**2
    for _ in range(int(rng.poisson(10 * scale))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if occupied[int(cy), int(cx)]:
            continue
        house = _Shape(-1, cx, cy, rng.uniform(30, 60), rng.uniform(25, 45), rng.uniform(0, np.pi))
        shade = _Shape(-1, cx + 5, cy + 5, house.w, house.h, house.angle)
        cv2.fillPoly(image, [_corners(shade)], (50, 50, 45))
        roof = (150, 70, 60) if rng.random() < 0.5 else (175, 170, 165)
        cv2.fillPoly(image, [_corners(house)], roof)
    for _ in range(int(rng.poisson(40 * scale))):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        if occupied[centre[1], centre[0]]:
            continue
        radius = int(rng.integers(4, 10))
        cv2.circle(image, (centre[0] + 2, centre[1] + 2), radius, (40, 50, 35), -1)
        cv2.circle(image, centre, radius, (45, 85, 40), -1, lineType=cv2.LINE_AA)


def _vehicle_on_road(rng: np.random.Generator, roads: np.ndarray) -> _Shape | None:
    ys, xs = np.nonzero(roads)
    if len(xs) == 0:
        return None
    i = rng.integers(len(xs))
    large = rng.random() < 0.35
    length = rng.uniform(22, 34) if large else rng.uniform(10, 15)
    width = rng.uniform(8, 11) if large else rng.uniform(5, 7)
    # Vehicles mostly follow the road direction; estimate it from the road mask locally.
    angle = _local_direction(roads, xs[i], ys[i]) + rng.normal(0, 0.15)
    return _Shape(int(large), float(xs[i]), float(ys[i]), length, width, float(np.mod(angle, np.pi)))


def _ship_on_water(rng: np.random.Generator, water: np.ndarray) -> _Shape | None:
    ys, xs = np.nonzero(water)
    if len(xs) == 0:
        return None
    i = rng.integers(len(xs))
    length = rng.uniform(25, 60)
    return _Shape(
        2, float(xs[i]), float(ys[i]), length, length * rng.uniform(0.22, 0.3), float(rng.uniform(0, np.pi))
    )


def _local_direction(mask: np.ndarray, x: int, y: int, radius: int = 30) -> float:
    h, w = mask.shape
    y0, y1, x0, x1 = max(y - radius, 0), min(y + radius, h), max(x - radius, 0), min(x + radius, w)
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    if len(xs) < 3:
        return 0.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    return float(np.arctan2(-vy, vx))  # screen y points down


def _draw_vehicle(image: np.ndarray, shape: _Shape, rng: np.random.Generator) -> None:
    shadow = _Shape(shape.label, shape.cx + 3, shape.cy + 3, shape.w, shape.h, shape.angle)
    cv2.fillPoly(image, [_corners(shadow)], (35, 35, 38), lineType=cv2.LINE_AA)
    palette = [(200, 200, 205), (30, 30, 35), (160, 30, 30), (40, 60, 150), (220, 220, 210), (120, 120, 125)]
    colour = np.array(palette[rng.integers(len(palette))], np.float32) * rng.uniform(0.85, 1.1)
    cv2.fillPoly(
        image, [_corners(shape)], tuple(int(c) for c in np.clip(colour, 0, 255)), lineType=cv2.LINE_AA
    )
    roof = _Shape(shape.label, shape.cx, shape.cy, shape.w * 0.45, shape.h * 0.7, shape.angle)
    cv2.fillPoly(image, [_corners(roof)], tuple(int(c) for c in np.clip(colour * 0.75, 0, 255)))


def _draw_ship(image: np.ndarray, shape: _Shape, rng: np.random.Generator) -> None:
    hull = _hull_polygon(shape)
    cv2.fillPoly(image, [hull], (225, 225, 220), lineType=cv2.LINE_AA)
    deck = _Shape(2, shape.cx, shape.cy, shape.w * 0.35, shape.h * 0.55, shape.angle)
    cv2.fillPoly(image, [_corners(deck)], (150, 90, 60))
    wake = _Shape(2, shape.cx, shape.cy, shape.w * 1.6, shape.h * 0.9, shape.angle)
    cv2.polylines(image, [_corners(wake)], True, (90, 120, 140), 1, lineType=cv2.LINE_AA)


def _corners(shape: _Shape) -> np.ndarray:
    from fewclick.types import rboxes_to_polygons

    poly = rboxes_to_polygons([[shape.cx, shape.cy, shape.w, shape.h, shape.angle]])[0]
    return np.round(poly).astype(np.int32)


def _hull_polygon(shape: _Shape) -> np.ndarray:
    """A pointed hull: the box with its front end narrowed to a bow."""
    half_w, half_h = shape.w / 2, shape.h / 2
    local = np.array(
        [[-half_w, -half_h], [half_w * 0.6, -half_h], [half_w, 0], [half_w * 0.6, half_h], [-half_w, half_h]]
    )
    cos, sin = np.cos(shape.angle), np.sin(shape.angle)
    xs = shape.cx + local[:, 0] * cos + local[:, 1] * sin
    ys = shape.cy - local[:, 0] * sin + local[:, 1] * cos
    return np.round(np.stack([xs, ys], 1)).astype(np.int32)


def _polygon_mask(shape: _Shape, width: int, height: int, pointed: bool) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [_hull_polygon(shape) if pointed else _corners(shape)], 1)
    return mask > 0


def _ellipse_mask(shape: _Shape, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    centre = (int(round(shape.cx)), int(round(shape.cy)))
    axes = (max(int(round(shape.w / 2)), 1), max(int(round(shape.h / 2)), 1))
    cv2.ellipse(mask, centre, axes, -float(np.rad2deg(shape.angle)), 0, 360, 1, -1)
    return mask > 0


# --------------------------------------------------------------------------- shared parts
def _drop_overlaps(shapes: list[_Shape], width: int, height: int, max_overlap: float = 0.0) -> list[_Shape]:
    """Keep shapes whose enclosing discs overlap earlier kept ones by at most ``max_overlap``."""
    kept: list[_Shape] = []
    for s in shapes:
        r = 0.5 * np.hypot(s.w, s.h)
        if not (0 <= s.cx < width and 0 <= s.cy < height):
            continue
        clash = any(
            np.hypot(s.cx - k.cx, s.cy - k.cy) < (1 - max_overlap) * (r + 0.5 * np.hypot(k.w, k.h)) * 0.8
            for k in kept
        )
        if not clash:
            kept.append(s)
    return kept


def _sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: float, blur: float) -> np.ndarray:
    out = cv2.GaussianBlur(image.astype(np.float32), (0, 0), blur)
    out += rng.normal(0, sigma, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _scene(image: np.ndarray, shapes: list[_Shape], masks: np.ndarray, classes: list[str]) -> Scene:
    # A later object hides an earlier one where they overlap; keep masks disjoint and
    # drop objects that ended up (almost) fully hidden or cut away by the border.
    for i in range(len(masks) - 1, 0, -1):
        masks[:i] &= ~masks[i]
    keep = masks.reshape(len(masks), -1).sum(1) >= 12 if len(masks) else np.zeros(0, bool)
    shapes = [s for s, k in zip(shapes, keep) if k]
    masks = masks[keep]
    n = len(shapes)
    boxes = np.zeros((n, 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    rboxes = np.array([[s.cx, s.cy, s.w, s.h, s.angle] for s in shapes], np.float32).reshape(-1, 5)
    objects = Objects(
        labels=np.array([s.label for s in shapes], np.int64),
        boxes=boxes,
        rboxes=rboxes,
        points=rboxes[:, :2].copy(),
        segmentations=[mask_to_rle(m) for m in masks],
    )
    return Scene(image, objects, masks, list(classes))
