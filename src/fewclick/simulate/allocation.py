"""Where a full-image annotator spends its scribbles (interactive full image segmentation,
section 4): error regions ranked by what correcting them gains, and the two allocations.

The ground truth and the prediction are label maps (``int[H, W]``, region ids ``0..N-1``;
void pixels, ``void`` true or ground truth < 0, count for nothing). An *error region* is a
connected group (8-neighbourhood) of pixels of true region ``t`` that the prediction gives
to one other region ``r``. Correcting it moves its ``n`` pixels from ``r`` to ``t``:

- region ``t``'s intersection grows by ``n`` and its union stays (the pixels were in it);
- region ``r``'s union shrinks by ``n`` and its intersection stays (the pixels were not its).

Its *gain* is the rise of the mean IoU over the ``N`` regions: ``((I_t + n) / U_t - I_t /
U_t + I_r / (U_r - n) - I_r / U_r) / N``. Regions are ranked by it, largest first.

Allocations of one step:

- ``one_per_region``: each true region with an error gets one scribble, on its error
  region of largest gain (a region without error gets none);
- ``free``: a budget of one scribble per region on average (``N`` scribbles) goes to the
  ``N`` error regions of largest gain in the whole image, wherever they lie.

Each chosen error region gets one scribble from :func:`fewclick.simulate.scribbles.scribble`,
which extends its true region over it. An error region no scribble fits in (every try
leaves the true region) is skipped, and the budget moves down the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from fewclick.simulate.scribbles import scribble
from fewclick.types import Scribble

__all__ = ["ALLOCATIONS", "RegionError", "region_errors", "allocate_scribbles"]

ALLOCATIONS = ("one_per_region", "free")
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class RegionError:
    """Pixels (``mask``, ``bool[H, W]``) of true region ``true`` given to ``predicted``."""

    true: int
    predicted: int
    mask: np.ndarray
    pixels: int
    gain: float


def _void(gt: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    out = gt < 0
    return out if void is None else out | np.asarray(void, bool)


def region_errors(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> list[RegionError]:
    """The error regions of ``pred`` against ``gt``, largest gain first (see the module)."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"expected label maps of one shape (H, W), got {gt.shape} and {pred.shape}")
    counted = ~_void(gt, void)
    regions = int(gt[counted].max()) + 1 if counted.any() else 0
    if regions == 0:
        return []
    size = max(regions, int(pred.max()) + 1)
    g, p = gt[counted], pred[counted]
    inter = np.bincount(g[g == p], minlength=size).astype(np.float64)
    union = np.bincount(g, minlength=size) + np.bincount(p, minlength=size) - inter
    wrong = counted & (gt != pred)
    pairs = np.where(wrong, gt.astype(np.int64) * size + pred, -1)
    errors = []
    for pair in np.unique(pairs[wrong]):
        t, r = divmod(int(pair), size)
        components, n = ndimage.label(pairs == pair, structure=_EIGHT)
        sizes = np.bincount(components.ravel(), minlength=n + 1)
        for k in range(1, n + 1):
            px = int(sizes[k])
            gain_t = px / union[t] if union[t] else 0.0
            gain_r = inter[r] / (union[r] - px) - inter[r] / union[r] if union[r] > px else 0.0
            errors.append(RegionError(t, r, components == k, px, (gain_t + gain_r) / regions))
    errors.sort(key=lambda e: e.gain, reverse=True)
    return errors


def allocate_scribbles(
    gt: np.ndarray,
    pred: np.ndarray,
    rng: np.random.Generator,
    allocation: str = "free",
    void: np.ndarray | None = None,
    budget: int | None = None,
    width: int = 3,
) -> list[Scribble]:
    """One step's scribbles under ``allocation`` (``one_per_region`` or ``free``); ``budget``
    defaults to one per region. Each scribble's ``region`` is the true region it extends."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {allocation!r}: expected one of {', '.join(ALLOCATIONS)}")
    gt = np.asarray(gt)
    counted = ~_void(gt, void)
    regions = int(gt[counted].max()) + 1 if counted.any() else 0
    budget = regions if budget is None else int(budget)
    served: set[int] = set()
    out: list[Scribble] = []
    for error in region_errors(gt, pred, void):
        if len(out) >= budget:
            break
        if allocation == "one_per_region" and error.true in served:
            continue
        drawn = scribble(gt == error.true, error.mask, rng, width=width, region=error.true)
        if drawn is None:
            continue
        out.append(drawn)
        served.add(error.true)
    return out
