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

from fewclick.extras import require
from fewclick.simulate.scribbles import scribble
from fewclick.types import Scribble

__all__ = ["ALLOCATIONS", "RegionError", "region_errors", "allocate_scribbles"]

ALLOCATIONS = ("one_per_region", "free")
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class RegionError:
    """Pixels of true region ``true`` given to ``predicted``: ``crop`` (``bool``) is their
    mask inside ``window`` (a pair of slices of the image, of ``shape``); ``mask`` is the
    same at every image pixel."""

    true: int
    predicted: int
    pixels: int
    gain: float
    window: tuple[slice, slice]
    crop: np.ndarray
    shape: tuple[int, int]

    @property
    def mask(self) -> np.ndarray:
        """``bool[H, W]``: the error region's pixels."""
        out = np.zeros(self.shape, bool)
        out[self.window] = self.crop
        return out


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
    ndimage = require("scipy.ndimage", "error regions of a label map")
    size = max(regions, int(pred.max()) + 1)
    g, p = gt[counted], pred[counted]
    inter = np.bincount(g[g == p], minlength=size).astype(np.float64)
    union = np.bincount(g, minlength=size) + np.bincount(p, minlength=size) - inter
    wrong = counted & (gt != pred)
    pairs, index = np.unique(gt[wrong].astype(np.int64) * size + pred[wrong], return_inverse=True)
    ids = np.zeros(gt.shape, np.int32)  # 1 + the pair's position in ``pairs``; 0: no error
    ids[wrong] = index.reshape(-1) + 1
    errors = []
    for position, window in enumerate(ndimage.find_objects(ids)):
        if window is None:
            continue
        t, r = divmod(int(pairs[position]), size)
        components, n = ndimage.label(ids[window] == position + 1, structure=_EIGHT)
        sizes = np.bincount(components.ravel(), minlength=n + 1)
        for k in range(1, n + 1):
            px = int(sizes[k])
            gain_t = px / union[t] if union[t] else 0.0
            gain_r = inter[r] / (union[r] - px) - inter[r] / union[r] if union[r] > px else 0.0
            gain = (gain_t + gain_r) / regions
            errors.append(RegionError(t, r, px, gain, window, components == k, gt.shape))
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
    ndimage = require("scipy.ndimage", "allocating scribbles")
    out: list[Scribble] = []
    windows = ndimage.find_objects(np.where(counted, gt, -1) + 1)  # per true region
    for error in region_errors(gt, pred, void):
        if len(out) >= budget:
            break
        if allocation == "one_per_region" and error.true in served:
            continue
        drawn = _scribble_in_window(gt, error, windows[error.true], rng, width)
        if drawn is None:
            continue
        out.append(drawn)
        served.add(error.true)
    return out


def _scribble_in_window(gt, error: RegionError, window, rng, width: int) -> Scribble | None:
    """:func:`scribble` on the true region's box grown by ``width + 1`` pixels, not on the
    whole image: the same scribble (the same draws, in the same order, and a stroke leaving
    the true region is seen inside the margin), in a fraction of the time."""
    pad = width + 1
    y0, x0 = max(window[0].start - pad, 0), max(window[1].start - pad, 0)
    y1, x1 = min(window[0].stop + pad, gt.shape[0]), min(window[1].stop + pad, gt.shape[1])
    true_crop = gt[y0:y1, x0:x1] == error.true
    error_crop = np.zeros_like(true_crop)
    ey, ex = error.window
    error_crop[ey.start - y0 : ey.stop - y0, ex.start - x0 : ex.stop - x0] = error.crop
    drawn = scribble(true_crop, error_crop, rng, width=width, region=error.true)
    if drawn is None:
        return None
    return Scribble(drawn.points + np.array([x0, y0], np.float32), error.true)
