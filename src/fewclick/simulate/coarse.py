"""Coarse points (CPR, section 4.1 and its public code): one rough click per object.

Each point is the box centre plus a Gaussian offset of standard deviation ``sigma_frac``
times the box width (x) and height (y), paper: 0.25, *rectified* to the object: a draw
that falls outside the object (its box, or its mask when one is given) is redrawn. With a
box this is exactly a normal truncated to the box, i.e. at +-2 sigma for sigma_frac 0.25.

Redrawing is bounded: after ``max_tries`` rounds a point still outside falls back to the
nearest point of the object (the last draw clipped to the box; with a mask, the centre of
the nearest mask pixel; with ``max_tries = 0`` the box centre takes the draw's place).
With a box and sigma_frac 0.25 a draw is inside with probability about 0.91, so the
fallback practically never happens; thin or hollow masks make it more likely. An object
with an empty mask is treated by its box.

A point (x, y) is inside a box when x0 <= x <= x1 and y0 <= y <= y1, and inside a mask
``bool[H, W]`` when ``mask[floor(y), floor(x)]`` is set (pixel j covers [j, j + 1)).
"""

from __future__ import annotations

import numpy as np

from fewclick.types import Objects, as_boxes

__all__ = ["coarse_points"]


def _inside(xy: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None, use_mask: np.ndarray) -> np.ndarray:
    """``bool[N]``: point i lies in object i."""
    ok = (xy >= boxes[:, :2]).all(axis=1) & (xy <= boxes[:, 2:]).all(axis=1)
    if masks is None or not use_mask.any():
        return ok
    height, width = masks.shape[1:]
    col = np.floor(xy[:, 0]).astype(int)
    row = np.floor(xy[:, 1]).astype(int)
    in_image = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    hit = np.zeros(len(xy), bool)
    idx = np.flatnonzero(in_image)
    hit[idx] = masks[idx, row[idx], col[idx]]
    return np.where(use_mask, hit, ok)


def _nearest_mask_pixel(mask: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Centre of the mask pixel nearest to the pixel under ``xy`` (clipped to the image),
    ``float64[2]``; of equally near ones, the first in raster order."""
    height, width = mask.shape
    col = int(np.clip(np.floor(xy[0]), 0, width - 1))
    row = int(np.clip(np.floor(xy[1]), 0, height - 1))
    rows, cols = np.nonzero(mask)
    k = int(np.argmin((rows - row) ** 2 + (cols - col) ** 2))
    return np.array([cols[k] + 0.5, rows[k] + 0.5])


def coarse_points(
    objects: Objects | np.ndarray,
    rng: np.random.Generator,
    sigma_frac: float = 0.25,
    masks: np.ndarray | None = None,
    max_tries: int = 100,
) -> np.ndarray:
    """One coarse point per object, ``float32[N, 2]`` (x, y).

    ``objects``: ``Objects`` (their XYXY ``boxes``; oriented objects use the enclosing box)
    or XYXY boxes ``float[N, 4]``. ``masks``: optional ``bool[N, H, W]``, one per object.
    Objects without a finite box get NaN. See the module docstring for the distribution.
    """
    boxes = as_boxes(objects.boxes if isinstance(objects, Objects) else objects).astype(np.float64)
    n = len(boxes)
    if masks is not None:
        masks = np.asarray(masks, bool)
        if masks.ndim != 3 or len(masks) != n:
            raise ValueError(f"expected masks of shape ({n}, H, W), got {masks.shape}")
    use_mask = np.zeros(n, bool) if masks is None else masks.reshape(n, -1).any(axis=1)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    scale = sigma_frac * (boxes[:, 2:] - boxes[:, :2])
    todo = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    xy = np.full((n, 2), np.nan)
    xy[todo] = centre[todo]
    for _ in range(max_tries):
        if len(todo) == 0:
            break
        xy[todo] = centre[todo] + scale[todo] * rng.standard_normal((len(todo), 2))
        inside = _inside(xy[todo], boxes[todo], None if masks is None else masks[todo], use_mask[todo])
        todo = todo[~inside]
    for i in todo:
        if use_mask[i]:
            xy[i] = _nearest_mask_pixel(masks[i], xy[i])
        else:
            xy[i] = np.clip(xy[i], boxes[i, :2], boxes[i, 2:])
    return xy.astype(np.float32)
