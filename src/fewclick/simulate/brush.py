"""A simulated annotator's brush and eraser strokes, and what they cost.

:func:`strokes_to_fix` paints the errors of a mask the way a careful person does: the
biggest brush that fits inside an error first, never over pixels that were right, then
smaller brushes for what is left, until the mask reaches the IoU asked for. A stroke is
one continuous drag through the places where the brush fits; a jump to another place is
another stroke. The brush sizes are the page's ([ and ] step through them); picking the
brush or the eraser and changing size are key presses (:func:`brush_keys`).

:func:`stroke_seconds` prices a stroke with the keystroke-level model: decide (M), point
(P), press, drag, release (B + D + B), with Card, Moran and Newell's drawing operator
D = 0.9 s a straight segment + 0.16 s a centimetre, at 96 pixels an inch on screen.
"""

from __future__ import annotations

import cv2
import numpy as np

from fewclick.brush import Stroke, apply_strokes, stroke_area
from fewclick.metrics.segmentation import mask_iou

BRUSH_SIZES = (16, 8, 4, 2, 1)  # radii in px, the page's ladder ([ / ])
CM_PER_PX = 2.54 / 96
#: KLM M + P + B + B (Card, Moran and Newell 1980); the drag's D is added per stroke
STROKE_BASE_SECONDS = 1.35 + 1.1 + 0.1 + 0.1
PAGE_RADIUS = 8  # px: the brush's size for an object 64 px across or more (page_radius)
SIDE_PER_RADIUS = 8  # a new mask's brush is about this many times thinner than its box's short side


def page_radius(box) -> int:
    """The brush's radius when a mask of ``box`` (x0, y0, x1, y1) starts on the page
    (``modes/mask.js``): the largest of the ladder's sizes at most the box's short side over
    :data:`SIDE_PER_RADIUS`, and at most :data:`PAGE_RADIUS` (1 px for the smallest), so
    that a stroke on a small object does not take its neighbours' pixels."""
    side = min(box[2] - box[0], box[3] - box[1]) / SIDE_PER_RADIUS
    return max([r for r in BRUSH_SIZES if r <= min(side, PAGE_RADIUS)], default=1)


def stroke_seconds(stroke: Stroke) -> float:
    """The keystroke-level seconds of ``stroke`` (module docstring): its straight segments
    (a turn of more than 30 degrees starts a new one) and its length on screen."""
    pts = np.asarray(stroke.points, np.float64)
    steps = np.diff(pts, axis=0)
    steps = steps[np.hypot(*steps.T) > 0] if len(steps) else steps
    length_cm = float(np.hypot(*steps.T).sum()) * CM_PER_PX if len(steps) else 0.0
    segments = 1
    if len(steps) > 1:
        a, b = steps[:-1], steps[1:]
        cos = (a * b).sum(1) / (np.hypot(*a.T) * np.hypot(*b.T))
        segments += int((cos < np.cos(np.radians(30))).sum())
    return STROKE_BASE_SECONDS + 0.9 * segments + 0.16 * length_cm


def strokes_to_fix(
    truth: np.ndarray, mask: np.ndarray, target_iou: float, sizes: tuple[int, ...] = BRUSH_SIZES
) -> list[Stroke]:
    """The strokes (in order) that bring ``mask`` to ``target_iou`` with ``truth``, or as
    close as the smallest brush gets. Each stroke only covers pixels it makes right."""
    truth, mask = np.asarray(truth, bool), np.asarray(mask, bool)
    strokes: list[Stroke] = []
    for radius in sizes:
        if mask_iou(mask, truth) >= target_iou:
            break
        found = _strokes_of_size(truth, mask, radius)
        # the brush's strokes, then the eraser's (one switch), each biggest first
        found.sort(key=lambda s: (not s.add, -int(stroke_area(s, mask.shape).sum())))
        for stroke in found:
            if mask_iou(mask, truth) >= target_iou:
                break
            mask = apply_strokes(mask, [stroke])
            strokes.append(stroke)
    return strokes


def brush_keys(strokes: list[Stroke], sizes: tuple[int, ...] = BRUSH_SIZES, start: int = PAGE_RADIUS) -> int:
    """The key presses ``strokes`` take on the page: A or E to pick the brush or the
    eraser and at each switch between them, and one [ or ] a step of brush size from the
    brush's size on the page as the mask starts (``start``: :func:`page_radius`)."""
    if not strokes:
        return 0
    ladder = sorted(set(sizes) | {start})
    keys, tool, radius = 0, None, start
    for s in strokes:
        keys += (s.add != tool) + abs(ladder.index(int(s.radius)) - ladder.index(radius))
        tool, radius = s.add, int(s.radius)
    return keys


def _strokes_of_size(truth: np.ndarray, mask: np.ndarray, radius: int) -> list[Stroke]:
    """Brush strokes of ``radius`` over the missing pixels and eraser strokes over the
    extra ones, wherever a disc of that radius fits inside the error."""
    out = []
    for add, error in ((True, truth & ~mask), (False, mask & ~truth)):
        if not error.any():
            continue
        disc = np.zeros((2 * radius + 1, 2 * radius + 1), np.uint8)
        cv2.circle(disc, (radius, radius), radius, 1, thickness=-1)  # the disc the page paints
        fits = cv2.erode(error.astype(np.uint8), disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        count, labels = cv2.connectedComponents(fits, connectivity=8)
        for k in range(1, count):
            out += [Stroke(path, float(radius), add) for path in _paths(labels == k, radius)]
    return out


def _paths(centres: np.ndarray, radius: int) -> list[np.ndarray]:
    """Drags through ``centres`` (where the brush fits): rows of grid points ``radius``
    apart, taken in turn left-right then right-left; the drag goes on from one point to the
    next while the way between them stays where the brush fits, else a new one starts."""
    ys, xs = np.nonzero(centres)
    step = max(int(radius), 1)
    rows: dict[int, list[int]] = {}
    for y, x in zip(ys, xs):
        rows.setdefault(int(y) // step, []).append(int(x))
    points = []
    for i, row in enumerate(sorted(rows)):
        y = _centre_row(centres, row, step)
        cols = sorted({x // step for x in rows[row] if centres[y, x]} or {min(rows[row]) // step})
        picked = [_centre_col(centres, y, c, step) for c in cols]
        picked = [x for x in picked if x is not None]
        points += [(x, y) for x in (picked if i % 2 == 0 else picked[::-1])]
    paths, current = [], [points[0]] if points else []
    for p in points[1:]:
        if _reachable(centres, current[-1], p, step):
            current.append(p)
        else:
            paths.append(current)
            current = [p]
    if current:
        paths.append(current)
    return [np.array(p, np.float32) for p in paths]


def _centre_row(centres: np.ndarray, row: int, step: int) -> int:
    """The image row of grid row ``row`` with the most centres."""
    band = centres[row * step : (row + 1) * step]
    return row * step + int(np.argmax(band.sum(axis=1)))


def _centre_col(centres: np.ndarray, y: int, col: int, step: int) -> int | None:
    """A centre of row ``y`` in grid column ``col`` (its middle one), None if there is none."""
    xs = np.flatnonzero(centres[y, col * step : (col + 1) * step])
    return None if len(xs) == 0 else col * step + int(xs[len(xs) // 2])


def _reachable(centres: np.ndarray, a: tuple, b: tuple, step: int) -> bool:
    """Whether the straight way from ``a`` to ``b`` is short (neighbouring grid cells)
    and stays where the brush fits."""
    if max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 2 * step:
        return False
    n = max(abs(a[0] - b[0]), abs(a[1] - b[1]), 1)
    xs = np.round(np.linspace(a[0], b[0], n + 1)).astype(int)
    ys = np.round(np.linspace(a[1], b[1], n + 1)).astype(int)
    return bool(centres[ys, xs].all())


__all__ = [
    "BRUSH_SIZES",
    "CM_PER_PX",
    "PAGE_RADIUS",
    "STROKE_BASE_SECONDS",
    "brush_keys",
    "stroke_seconds",
    "strokes_to_fix",
]
