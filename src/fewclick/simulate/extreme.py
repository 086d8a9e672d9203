"""Extreme points of a mask (full-image segmentation section 4, which uses DEXTR's code).

DEXTR's ``extreme_points(mask, pert)`` picks, for each side, a random mask pixel among
those within ``pert`` pixels of the extreme coordinate (``x <= x_min + pert`` for the
left-most point, and so on). We follow it: ``jitter_px`` is DEXTR's ``pert`` (DEXTR trains
with 5 and evaluates with 0). Jittered points are therefore mask pixels by construction,
near the box side they stand for; the box they define can shrink by up to ``jitter_px`` on
each side. With ``jitter_px = 0`` and several tied pixels, one is drawn with ``rng``, or the
median one (along the side) when ``rng`` is None, which makes the result deterministic.

Points are (x, y) pixel indices, in the order left-most, top-most, right-most, bottom-most
(:class:`fewclick.types.ExtremePoints`); DEXTR's order is left, right, top, bottom. Their
box is the inclusive index box of the mask: add 1 to x1 and y1 for the half-open box.
"""

from __future__ import annotations

import numpy as np

from fewclick.types import ExtremePoints

__all__ = ["extreme_points"]


def _pick(xs: np.ndarray, ys: np.ndarray, along: np.ndarray, rng: np.random.Generator | None) -> list[int]:
    """One candidate pixel: random with ``rng``, else the lower median along ``along``."""
    if rng is not None:
        i = int(rng.integers(len(xs)))
    else:
        order = np.argsort(along, kind="stable")
        i = int(order[(len(order) - 1) // 2])
    return [int(xs[i]), int(ys[i])]


def extreme_points(
    mask: np.ndarray, rng: np.random.Generator | None = None, jitter_px: int = 0
) -> ExtremePoints:
    """Left-, top-, right- and bottom-most pixels of ``mask`` (``bool[H, W]``) as
    ``ExtremePoints`` (``float32[4, 2]``, (x, y)); see the module docstring for ties and
    ``jitter_px``. Raises ValueError for an empty mask (it has no extreme points)."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a mask of shape (H, W), got {mask.shape}")
    if jitter_px < 0:
        raise ValueError(f"expected jitter_px >= 0, got {jitter_px}")
    if jitter_px > 0 and rng is None:
        raise ValueError("expected an rng when jitter_px > 0, got None")
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("expected a mask with at least one pixel, got an empty mask")
    sides = [
        (xs <= xs.min() + jitter_px, ys),  # left: ties run along y
        (ys <= ys.min() + jitter_px, xs),  # top
        (xs >= xs.max() - jitter_px, ys),  # right
        (ys >= ys.max() - jitter_px, xs),  # bottom
    ]
    points = [_pick(xs[sel], ys[sel], along[sel], rng) for sel, along in sides]
    return ExtremePoints(np.array(points, np.float32))
