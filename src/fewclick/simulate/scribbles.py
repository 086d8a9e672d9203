"""Corrective scribbles (interactive full image segmentation, section 4).

A scribble extends a ground-truth region (``true_region``) over one of its error regions
(``error_region``: pixels of the true region that the prediction gives to another region).
Each try:

1. the start point is drawn uniformly among the pixels of the true region that lie outside
   the error region but touch it (8-neighbourhood): the border of the error region where it
   touches the rest of the true region, on the correctly predicted side, as in the paper's
   Fig. 4. When the error region *is* the whole true region (a region missed entirely) no
   such pixel exists and the start is drawn on the inner border of the error region shrunk
   by half the stroke width (so that a stroke can fit);
2. two more points are drawn uniformly among the error region's pixels; the nearer one to
   the start is visited first;
3. the stroke is the quadratic Bezier curve that *passes through* the three points: its
   middle control point is solved so that the curve meets the middle point at the
   chord-length parameter t = |P0 P1| / (|P0 P1| + |P1 P2|). A quadratic is the lowest
   degree curve through three points and has no free parameter to choose; a cubic would
   need an extra, arbitrary tangent. The curve is sampled at ``samples`` parameter values.

Of ``tries`` tries (paper: 10) the longest scribble whose rasterised stroke (``width``
pixels, paper: 3) lies entirely in the true region is kept; None if none does. Points are
(x, y) pixel indices.
"""

from __future__ import annotations

import numpy as np

from fewclick.extras import require
from fewclick.types import Scribble

__all__ = ["scribble", "rasterize_scribble", "bezier_through"]


def rasterize_scribble(scribble: Scribble, shape: tuple[int, int], width: int = 3) -> np.ndarray:
    """Draw ``scribble`` into a ``bool[H, W]`` canvas of ``shape = (H, W)``: its polyline
    (points rounded to pixels) one pixel wide with ``cv2.polylines``, dilated by a
    ``width x width`` disk, so the stroke is ``width`` pixels across (symmetric for odd
    widths). OpenCV's own ``thickness`` is not used: it draws 5 px for ``thickness=3``."""
    cv2 = require("cv2", "drawing scribbles")
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(scribble.points).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:  # a scribble of zero length: a dot
        cv2.circle(canvas, (int(pts[0, 0, 0]), int(pts[0, 0, 1])), 0, 1, -1)
    elif len(pts):
        cv2.polylines(canvas, [pts], isClosed=False, color=1, thickness=1)
    if width > 1:
        canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(width), int(width))))
    return canvas.astype(bool)


def bezier_through(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, samples: int) -> np.ndarray:
    """``samples`` points (``float64[samples, 2]``) of the quadratic Bezier curve from ``p0``
    to ``p2`` that passes through ``p1`` at the chord-length parameter."""
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    d0, d1 = np.linalg.norm(p1 - p0), np.linalg.norm(p2 - p1)
    t = 0.5 if d0 + d1 == 0 else float(np.clip(d0 / (d0 + d1), 0.05, 0.95))
    control = (p1 - (1 - t) ** 2 * p0 - t**2 * p2) / (2 * t * (1 - t))
    s = np.linspace(0.0, 1.0, max(int(samples), 2))[:, None]
    return (1 - s) ** 2 * p0 + 2 * s * (1 - s) * control + s**2 * p2


def _start_candidates(true_region: np.ndarray, error_region: np.ndarray, width: int) -> np.ndarray:
    """``int[K, 2]`` (x, y) pixels a scribble may start from."""
    ndimage = require("scipy.ndimage", "scribble starts")
    square = np.ones((3, 3), bool)
    start = true_region & ~error_region & ndimage.binary_dilation(error_region, structure=square)
    if not start.any():  # the whole region is missed: start on the error's own inner border,
        # far enough in for a ``width``-pixel stroke to fit
        core = error_region
        if width > 2:
            core = ndimage.binary_erosion(error_region, structure=square, iterations=width // 2)
        core = core if core.any() else error_region
        start = core & ~ndimage.binary_erosion(core, structure=square)
    ys, xs = np.nonzero(start)
    return np.stack([xs, ys], axis=1)


def _inside(points: np.ndarray, shape: tuple[int, int]) -> bool:
    h, w = shape
    return bool((points >= -0.5).all() and (points[:, 0] < w - 0.5).all() and (points[:, 1] < h - 0.5).all())


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def scribble(
    true_region: np.ndarray,
    error_region: np.ndarray,
    rng: np.random.Generator,
    tries: int = 10,
    samples: int = 50,
    width: int = 3,
    region: int = 1,
) -> Scribble | None:
    """Simulate one corrective scribble extending ``true_region`` (``bool[H, W]``) over
    ``error_region`` (``bool[H, W]``, a subset of it); see the module docstring.

    Returns a ``Scribble`` (``points float32[samples, 2]`` (x, y), ``region`` as given) whose
    first point is the start on the error border, or None when the error region is empty or
    no try stays inside the true region.
    """
    true_region, error_region = np.asarray(true_region, bool), np.asarray(error_region, bool)
    if true_region.ndim != 2 or true_region.shape != error_region.shape:
        raise ValueError(
            f"expected true_region and error_region of one shape (H, W), got "
            f"{true_region.shape} and {error_region.shape}"
        )
    if (error_region & ~true_region).any():
        raise ValueError("expected error_region inside true_region, got error pixels outside it")
    if not error_region.any():
        return None
    starts = _start_candidates(true_region, error_region, width)
    ys, xs = np.nonzero(error_region)
    inner = np.stack([xs, ys], axis=1)
    best: np.ndarray | None = None
    for _ in range(tries):
        p0 = starts[rng.integers(len(starts))]
        a, b = inner[rng.integers(len(inner), size=2)]
        if np.linalg.norm(b - p0) < np.linalg.norm(a - p0):
            a, b = b, a
        points = bezier_through(p0, a, b, samples)
        if not _inside(points, true_region.shape):
            continue  # the curve leaves the image, where the drawing would be clipped unseen
        drawn = rasterize_scribble(Scribble(points), true_region.shape, width)
        if (drawn & ~true_region).any():
            continue
        if best is None or _length(points) > _length(best):
            best = points
    return None if best is None else Scribble(best, region)
