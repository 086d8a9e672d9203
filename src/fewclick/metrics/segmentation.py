"""Mask metrics: IoU, mIoU, boundary F, and the number of clicks (NoC) of interactive segmentation.

Masks are ``bool[H, W]`` (anything numpy turns into bool). Empty cases:
- IoU of two empty masks (empty union) is 1.0: nothing to find, nothing predicted;
- boundary F of two masks without boundary is 1.0; if only one side has a boundary it is 0.0
  (precision 1 / recall 0 when the prediction has none, precision 0 / recall 1 otherwise), as DAVIS;
- NoC of a session without any click result is ``max_clicks``; the mean of no sessions,
  like the mIoU of no pairs, is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BoundaryScore", "mask_iou", "miou", "boundary_f", "noc", "mean_noc"]


def mask_iou(pred: Any, gt: Any, void: Any = None) -> float:
    """IoU of two masks ``bool[H, W]``; pixels where ``void bool[H, W]`` is set are left out.
    An empty union gives 1.0."""
    p, g = _pair(pred, gt)
    if void is not None:
        keep = ~_mask(void, g.shape, "void")
        p, g = p & keep, g & keep
    union = np.count_nonzero(p | g)
    return 1.0 if union == 0 else np.count_nonzero(p & g) / union


def miou(pairs: Iterable[tuple[Any, Any]]) -> float:
    """Mean of :func:`mask_iou` over ``(pred, gt)`` pairs; NaN for no pairs."""
    values = [mask_iou(p, g) for p, g in pairs]
    return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class BoundaryScore:
    """Boundary precision, recall and their harmonic mean ``f``, all in [0, 1]."""

    precision: float
    recall: float
    f: float


def boundary_f(pred: Any, gt: Any, tolerance_px: float = 2) -> BoundaryScore:
    """Boundary F of two masks ``bool[H, W]`` (DAVIS's F measure).

    A boundary pixel is a mask pixel with a 4-neighbour outside the mask; the image edge
    is not a boundary. A predicted boundary pixel is correct when a ground-truth boundary
    pixel lies within ``tolerance_px`` (Euclidean, between pixel centres), and the other way
    round for recall. Empty cases: see the module docstring.
    """
    if not tolerance_px >= 0:  # NaN too
        raise ValueError(f"expected tolerance_px >= 0, got {tolerance_px}")
    p, g = _pair(pred, gt)
    bp, bg = _boundary(p), _boundary(g)
    n_p, n_g = np.count_nonzero(bp), np.count_nonzero(bg)
    if n_p == 0 or n_g == 0:
        both_empty = float(n_p == n_g)
        return BoundaryScore(precision=float(n_p == 0), recall=float(n_g == 0), f=both_empty)
    precision = np.count_nonzero(_near(bg, tolerance_px)[bp]) / n_p
    recall = np.count_nonzero(_near(bp, tolerance_px)[bg]) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BoundaryScore(precision=float(precision), recall=float(recall), f=float(f))


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (outside the image counts as inside)."""
    padded = np.pad(mask, 1, constant_values=True)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _near(mask: np.ndarray, radius: float) -> np.ndarray:
    """``bool[H, W]``: the pixels within Euclidean ``radius`` of a set pixel of ``mask``, a
    dilation by the disk, done as one row-shifted run-length dilation per row offset."""
    height, width = mask.shape
    r = int(min(np.floor(radius), height + width))  # farther reaches every pixel anyway
    padded = np.pad(mask, r)
    sums = np.concatenate([np.zeros((height + 2 * r, 1), np.int64), np.cumsum(padded, axis=1)], axis=1)
    near = np.zeros(mask.shape, bool)
    cols = np.arange(width) + r  # each pixel's column in ``padded``
    for dy in range(-r, r + 1):
        reach = [dx for dx in range(r + 1) if np.sqrt(dx * dx + dy * dy) <= radius]
        if not reach:
            continue
        rows = sums[r + dy : r + dy + height]
        near |= (rows[:, cols + reach[-1] + 1] - rows[:, cols - reach[-1]]) > 0
    return near


def noc(ious_per_click: Sequence[float], threshold: float = 0.85, max_clicks: int = 20) -> int:
    """Number of clicks to reach ``threshold`` IoU (RITM's NoC).

    ``ious_per_click[k]`` is the IoU after click k + 1; clicks count from 1. Returns the
    first click whose IoU is >= ``threshold`` among the first ``max_clicks``, else ``max_clicks``.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"expected an IoU threshold in (0, 1], got {threshold}")
    if max_clicks < 1:
        raise ValueError(f"expected max_clicks >= 1, got {max_clicks}")
    ious = np.asarray(ious_per_click, np.float64).reshape(-1)[:max_clicks]
    reached = np.flatnonzero(ious >= threshold)
    return int(reached[0]) + 1 if len(reached) else max_clicks


def mean_noc(sessions: Iterable[Sequence[float]], threshold: float = 0.85, max_clicks: int = 20) -> float:
    """Mean :func:`noc` over sessions (one IoU-per-click sequence each); NaN for none."""
    values = [noc(s, threshold, max_clicks) for s in sessions]
    return float(np.mean(values)) if values else math.nan


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(gt).astype(bool)
    if g.ndim != 2:
        raise ValueError(f"expected a ground-truth mask of shape (H, W), got {g.shape}")
    return _mask(pred, g.shape, "prediction"), g


def _mask(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    m = np.asarray(mask).astype(bool)
    if m.shape != shape:
        raise ValueError(f"expected a {name} mask of the ground truth's shape {shape}, got {m.shape}")
    return m
