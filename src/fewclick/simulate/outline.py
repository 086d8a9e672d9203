"""A simulated annotator's outline edits, and what they cost (issue 54).

When corrective clicks stall short of the IoU asked for, a person does not redraw the
object: they turn the mask into an outline (:func:`fewclick.outline.editable_outline`),
look it over and fix the stretches that are wrong. SAM's mask is usually right on most of
its boundary and wrong on one stretch: a thin part missed, or background bled in.

:func:`plan_edits` finds those stretches and the cheapest fix of each. A vertex is *right*
when it lies within a tolerance of the reference object's boundary, an edge when every
point along it does; a *stretch* runs from one right vertex to the next right one with
something wrong between them. It is fixed by one of:

- ``delete``: the wrong vertices between deleted (a spike of background);
- ``drag``: each wrong vertex dragged to the nearest point of the object's boundary;
- ``redraw``: the stretch redrawn along the object's boundary (a click on its first
  vertex, a click at each corner of the boundary, simplified as the outline is, and a
  click on its last vertex), as CVAT's redraw; the page replaces the shorter of the ring's
  two stretches between the ends, so only a stretch shorter than the rest is redrawn.

The fixes are taken greedily, the most IoU gained per second first, until the filled
outline reaches the IoU asked for (the cheapest fix that gets there at once, when one does);
none when no fix gains any more. Every step is priced
by the issue's keystroke-level model (:data:`EDIT_SECONDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fewclick.brush import apply_strokes
from fewclick.metrics.segmentation import mask_iou
from fewclick.outline import editable_outline, fill_outline, tolerance
from fewclick.simulate.annotator import COST_SECONDS, MASK_IOU, STALL_RUN, polygon_outlines
from fewclick.simulate.brush import (
    CM_PER_PX,
    STROKE_BASE_SECONDS,
    brush_keys,
    page_radius,
    stroke_seconds,
    strokes_to_fix,
)

EDIT_SECONDS = {
    "outline": 1.63,  # M + K: the mask turned into an outline
    "look": 1.6,  # the outline looked over: a verification (Papadopoulos et al., CVPR 2016)
    "delete": 2.55,  # M + P + B: a vertex deleted
    "insert": 2.55,  # M + P + B: a vertex inserted on an edge
    "redraw": 1.0,  # a redraw click: a polygon's vertex (COCO's 79.2 s an object)
}
DRAG_SECONDS = STROKE_BASE_SECONDS + 0.9  # M + P + B + D + B, as a brush stroke; + 0.16 s a cm
VERTEX_SHARE, EDGE_SHARE = 0.03, 0.06  # tolerances, as shares of the object's size (sqrt of area)
MIN_GAIN = 0.002  # a fix that gains less IoU is not worth its seconds
MAX_FIXES = 40
MAX_VERTICES = 150  # an outline of more vertices is not edited
MAX_PART = 0.5  # a part of the object added to its outline is under this share of it
PAD = 3  # pixels around the object and the mask in the window the plan works in


@dataclass(frozen=True)
class Edit:
    """One fix: ``kind`` (``delete``, ``drag``, ``redraw``, ``remove`` a ring or a new
    ``part``), the interactions it takes (vertices deleted or dragged, redraw clicks) and
    their seconds."""

    kind: str
    interactions: int
    seconds: float


@dataclass
class OutlinePlan:
    """The edits that bring an outline to the IoU asked for, the outline they leave (in
    image pixels) and its IoU with the object."""

    edits: list[Edit] = field(default_factory=list)
    rings: list = field(default_factory=list)
    iou: float = 0.0

    @property
    def interactions(self) -> int:
        """The key that makes the outline, then each edit's clicks (Enter is the caller's)."""
        return 1 + sum(e.interactions for e in self.edits)

    @property
    def seconds(self) -> float:
        """The key, the look over the outline and the edits (Enter is the caller's)."""
        return EDIT_SECONDS["outline"] + EDIT_SECONDS["look"] + sum(e.seconds for e in self.edits)


class _Boundary:
    """The reference object's boundary in a window: its contours through the boundary
    pixels' centres, and for every pixel the nearest boundary pixel and its distance."""

    def __init__(self, truth: np.ndarray) -> None:
        from scipy.ndimage import distance_transform_edt

        contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        self.contours = [c.reshape(-1, 2) for c in contours]
        on = np.zeros(truth.shape, bool)
        self.where = -np.ones((*truth.shape, 2), np.int64)  # (contour, position) of each boundary pixel
        for i, c in enumerate(self.contours):
            on[c[:, 1], c[:, 0]] = True
            self.where[c[:, 1], c[:, 0]] = np.stack([np.full(len(c), i), np.arange(len(c))], 1)
        self.distance, self.nearest = distance_transform_edt(~on, return_indices=True)
        self.parts = []  # the object's parts: each its mask and its outline as a person clicks it
        count, labels = cv2.connectedComponents(truth.astype(np.uint8))
        for label in range(1, count):
            part = labels == label
            rings = [r for r, hole in editable_outline(part) if not hole]
            if rings:
                self.parts.append({"mask": part, "ring": rings[0]})
        size = float(np.sqrt(max(np.count_nonzero(truth), 1)))
        self.vertex_tol = max(1.5, VERTEX_SHARE * size)
        self.edge_tol = max(2.0, EDGE_SHARE * size)
        self.simplify = tolerance(truth)

    def _pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.distance.shape
        xs = np.clip(np.floor(points[:, 0]).astype(int), 0, w - 1)
        ys = np.clip(np.floor(points[:, 1]).astype(int), 0, h - 1)
        return ys, xs

    def distances(self, points: np.ndarray) -> np.ndarray:
        return self.distance[self._pixel(points)]

    def snap(self, points: np.ndarray) -> np.ndarray:
        """The nearest boundary pixel's centre of each point."""
        ys, xs = self._pixel(points)
        return np.stack([self.nearest[1][ys, xs], self.nearest[0][ys, xs]], 1) + 0.5

    def path(self, a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray | None:
        """The boundary's corners between the points nearest ``a`` and ``b``, in the
        direction whose length is nearest ``length`` (the stretch it replaces), simplified
        as an outline is; None when they lie on different contours."""
        ys, xs = self._pixel(np.stack([a, b]))
        (ca, ka), (cb, kb) = self.where[self.nearest[0][ys, xs], self.nearest[1][ys, xs]]
        if ca < 0 or ca != cb:
            return None
        contour = self.contours[ca].astype(np.float64) + 0.5
        n = len(contour)
        forward = contour[(ka + np.arange((kb - ka) % n + 1)) % n]
        backward = contour[(ka - np.arange((ka - kb) % n + 1)) % n]
        run = min((forward, backward), key=lambda p: abs(_length(p) - length))
        if len(run) < 3:
            return run[1:-1]
        simple = cv2.approxPolyDP(run.astype(np.float32).reshape(-1, 1, 2), self.simplify, False)
        return simple.reshape(-1, 2).astype(np.float64)[1:-1]


def _length(points: np.ndarray) -> float:
    return float(np.hypot(*np.diff(points, axis=0).T).sum()) if len(points) > 1 else 0.0


def _window(pred: np.ndarray, truth: np.ndarray) -> tuple[slice, slice] | None:
    ys, xs = np.nonzero(pred | truth)
    if not len(xs):
        return None
    h, w = truth.shape
    return (
        slice(max(int(ys.min()) - PAD, 0), min(int(ys.max()) + PAD + 1, h)),
        slice(max(int(xs.min()) - PAD, 0), min(int(xs.max()) + PAD + 1, w)),
    )


def plan_edits(
    pred: np.ndarray, truth: np.ndarray, target_iou: float, rings=None, budget: float | None = None
) -> OutlinePlan | None:
    """The outline edits that bring mask ``pred`` to ``target_iou`` with ``truth`` (both
    ``bool[H, W]``), greedily (module docstring), from ``rings`` (the outline the app made
    of ``pred``, in image pixels; by default :func:`fewclick.outline.editable_outline`'s);
    None when they do not get there, when the outline has over ``MAX_VERTICES`` (no one
    edits that: a polygon is drawn), or once the plan's seconds pass ``budget`` (what
    finishing another way costs)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    window = _window(pred, truth)
    if window is None or not pred.any() or not truth.any():
        return None
    shift = np.array([window[1].start, window[0].start], np.float64)
    t = truth[window]
    if rings is None:
        rings = editable_outline(pred[window])
    else:
        rings = [(np.asarray(ring, np.float64).reshape(-1, 2) - shift, hole) for ring, hole in rings]
    if sum(len(ring) for ring, _ in rings) > MAX_VERTICES:
        return None
    boundary = _Boundary(t)
    plan = OutlinePlan(rings=rings, iou=mask_iou(fill_outline(rings, *t.shape), t))
    while plan.iou < target_iou and len(plan.edits) < MAX_FIXES:
        if budget is not None and plan.seconds >= budget:
            return None
        best, last = None, None  # the most IoU a second; the cheapest that gets there at once
        for trial, edit in _trials(plan.rings, boundary, t):
            iou = mask_iou(fill_outline(trial, *t.shape), t)
            gain = iou - plan.iou
            if gain >= MIN_GAIN and (best is None or gain / edit.seconds > best[0]):
                best = (gain / edit.seconds, trial, edit, iou)
            if iou >= target_iou and (last is None or edit.seconds < last[2].seconds):
                last = (None, trial, edit, iou)
        if last is not None and (best is None or last[2].seconds <= best[2].seconds):
            best = last
        if best is None:
            return None
        plan.rings, plan.iou = best[1], best[3]
        plan.edits.append(best[2])
    if plan.iou < target_iou:
        return None
    plan.rings = [(ring + shift, hole) for ring, hole in plan.rings]
    return plan


def _trials(rings: list, boundary: _Boundary, truth: np.ndarray):
    """``(outline after, Edit)`` for every fix of ``rings``: a wrong stretch of a ring fixed
    (:func:`_fixes`); a ring removed (a part that is background, a hole that is not one:
    one delete on it); a part of the object the outline misses added as a new ring, its
    corners clicked as a polygon's (each a redraw click, and one more on the first to close
    it), when it is under ``MAX_PART`` of the object (more is a new polygon, not an edit)."""
    for k, (ring, hole) in enumerate(rings):
        for new, edit in _fixes(ring, boundary):
            yield rings[:k] + [(new, hole)] + rings[k + 1 :], edit
        if len(rings) > 1:
            yield rings[:k] + rings[k + 1 :], Edit("remove", 1, EDIT_SECONDS["delete"])
    covered = fill_outline(rings, *truth.shape)
    for part in boundary.parts:  # not the object's main part: that would be a new polygon
        if not (covered & part["mask"]).any() and part["mask"].sum() < MAX_PART * truth.sum():
            clicks = len(part["ring"]) + 1
            yield rings + [(part["ring"], False)], Edit("part", clicks, EDIT_SECONDS["redraw"] * clicks)


def _fixes(ring: np.ndarray, boundary: _Boundary):
    """``(new ring, Edit)`` for each fix of each wrong stretch of ``ring``."""
    n = len(ring)
    wrong_vertex = boundary.distances(ring) > boundary.vertex_tol
    right = np.flatnonzero(~wrong_vertex)
    if not len(right):
        return
    for i, a in enumerate(right):
        b = right[(i + 1) % len(right)]
        inner = (a + 1 + np.arange((b - a - 1) % n)) % n if len(right) > 1 else (a + 1 + np.arange(n - 1)) % n
        stretch = np.concatenate([[a], inner, [b]])
        if not len(inner) and not _wrong_edge(ring[a], ring[b], boundary):
            continue
        yield from _stretch_fixes(ring, stretch, boundary)


def _wrong_edge(a: np.ndarray, b: np.ndarray, boundary: _Boundary) -> bool:
    steps = max(int(np.hypot(*(b - a))), 1)
    points = a + (b - a) * (np.arange(1, steps) / steps)[:, None]
    return bool(len(points)) and bool((boundary.distances(points) > boundary.edge_tol).any())


def _replace(ring: np.ndarray, stretch: np.ndarray, inner: np.ndarray) -> np.ndarray | None:
    """``ring`` with the vertices strictly inside ``stretch`` replaced by ``inner``."""
    a, b = stretch[0], stretch[-1]
    keep = ring[(b + np.arange((a - b) % len(ring) + 1)) % len(ring)] if a != b else ring[[a]]
    out = np.concatenate([keep, inner]) if len(inner) else keep
    return out if len(out) >= 3 else None


def _stretch_fixes(ring: np.ndarray, stretch: np.ndarray, boundary: _Boundary):
    inner = ring[stretch[1:-1]]
    options = []
    if len(inner):
        options.append((np.zeros((0, 2)), Edit("delete", len(inner), EDIT_SECONDS["delete"] * len(inner))))
        targets = boundary.snap(inner)
        moved = float(np.hypot(*(targets - inner).T).sum()) * CM_PER_PX
        options.append((targets, Edit("drag", len(inner), DRAG_SECONDS * len(inner) + 0.16 * moved)))
    length = _length(ring[stretch])
    # the page redraws the shorter of the ring's two stretches between the ends clicked
    shorter = length <= _length(np.concatenate([ring, ring[:1]])) - length
    path = boundary.path(ring[stretch[0]], ring[stretch[-1]], length) if shorter else None
    if path is not None:
        clicks = len(path) + 2  # its first vertex, the new ones, its last vertex
        options.append((path, Edit("redraw", clicks, EDIT_SECONDS["redraw"] * clicks)))
    for inner_new, edit in options:
        new = _replace(ring, stretch, inner_new)
        if new is not None:
            yield new, edit


def cheapest_finish(
    pred: np.ndarray, truth: np.ndarray, segmentation, box, rings=None, target_iou: float = MASK_IOU
):
    """How a person finishes mask ``pred`` short of ``target_iou``: the cheapest in seconds of
    the brush (``strokes``), the outline edited (its :class:`OutlinePlan`, from ``rings`` when
    the app made them) and a new polygon (None), each with Enter; ``(way, fix, seconds)``."""
    accept = COST_SECONDS["accept"]
    polygons = polygon_outlines(truth, segmentation)
    best = ("polygon", None, sum(COST_SECONDS["vertex"] * max(len(r), 3) + accept for r in polygons))
    strokes = strokes_to_fix(truth, pred, target_iou)
    if strokes and mask_iou(apply_strokes(pred, strokes), truth) >= target_iou:
        keys = brush_keys(strokes, start=page_radius(box))
        brush = sum(map(stroke_seconds, strokes)) + COST_SECONDS["brush"] * keys + accept
        best = min(best, ("brush", strokes, brush), key=lambda b: b[2])
    plan = plan_edits(pred, truth, target_iou, rings, budget=best[2] - accept)
    if plan is not None:
        best = min(best, ("outline", plan, plan.seconds + accept), key=lambda b: b[2])
    return best


def clicks_not_paying(finish: list[float], price: float, run: int = STALL_RUN) -> bool:
    """Whether a person stops clicking on a mask (issue 54: judged by the seconds): ``finish``
    holds the seconds finishing it another way would take (:func:`cheapest_finish`) before
    the first click and after each since; the last ``run`` clicks each saved less than
    their own ``price``."""
    if len(finish) <= run:
        return False
    return all(a - b < price for a, b in zip(finish[-run - 1 : -1], finish[-run:]))
