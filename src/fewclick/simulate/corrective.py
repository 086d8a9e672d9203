"""Corrective clicks on a predicted mask (interactive segmentation at scale, section 3.1-3.2).

The annotator of the paper's simulations:

- looks at the error regions: connected components of the false negatives (object pixels the
  mask misses, clicked *positive*) and of the false positives (clicked *negative*); regions
  smaller than ``min_region_px`` pixels are ignored (the paper tries 20^2 and 30^2);
- gives each click to an error region with probability proportional to its area
  (``allocation="sample"``, the paper), or deterministically in proportion to the areas
  (``allocation="proportional"``, largest remainders, larger regions first);
- spreads several clicks of one region so that they roughly partition it into equal areas
  (k-means cells of the region's pixels) or, for boundary clicks, its outline into equal
  lengths;
- places a click at the interior point farthest from the region boundary
  (``strategy="center"``, the paper's choice), on the boundary (``"boundary"``), or uniformly
  in the region (``"random"``, what the paper's human annotators did);
- misses by isotropic Gaussian noise N(0, ``noise_sigma``) pixels (paper: 3). The noisy click
  is kept even when the noise carries it out of its error region, as in the paper; it keeps
  the sign of the region it was aimed at and is only clamped into the image.

Coordinates are (x, y) pixel indices: a click at (x, y) aims at ``mask[y, x]``.
:func:`ritm_next_click` is RITM's deterministic single-click protocol and
:func:`noisy_box` the paper's loose initial box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fewclick.extras import require
from fewclick.simulate.oracle import box_iou
from fewclick.types import Click, Clicks

__all__ = ["ErrorRegions", "error_regions", "corrective_clicks", "ritm_next_click", "noisy_box"]

Strategy = Literal["center", "boundary", "random"]


@dataclass(frozen=True)
class ErrorRegions:
    """Error regions of one mask, largest first.

    labels ``int32[H, W]``: 0 where there is no (kept) error, i + 1 on region i;
    positive ``bool[R]``: True for a false-negative region (to add), False for false-positive;
    areas ``int64[R]`` in pixels, non-increasing.
    """

    labels: np.ndarray
    positive: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return len(self.areas)

    def mask(self, i: int) -> np.ndarray:
        """Region ``i`` as ``bool[H, W]``."""
        return self.labels == i + 1


def _masks(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None) -> tuple[np.ndarray, ...]:
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(f"expected gt and pred masks of one shape (H, W), got {gt.shape} and {pred.shape}")
    keep = np.ones_like(gt) if void is None else ~np.asarray(void, bool)
    if keep.shape != gt.shape:
        raise ValueError(f"expected a void mask of shape {gt.shape}, got {keep.shape}")
    return gt & ~pred & keep, ~gt & pred & keep


def error_regions(
    gt: np.ndarray, pred: np.ndarray, min_region_px: int = 0, void: np.ndarray | None = None
) -> ErrorRegions:
    """8-connected components of the false negatives (``gt & ~pred``) and false positives
    (``~gt & pred``) of ``bool[H, W]`` masks, ``void`` pixels excluded, keeping those of at
    least ``min_region_px`` pixels, sorted by area (largest first; FN before FP on ties)."""
    fn, fp = _masks(gt, pred, void)
    labels = np.zeros(fn.shape, np.int32)
    parts: list[tuple[int, bool, np.ndarray]] = []
    for positive, err in ((True, fn), (False, fp)):
        cv2 = require("cv2", "error regions")
        count, comp, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), connectivity=8)
        for c in range(1, count):
            area = int(stats[c, cv2.CC_STAT_AREA])
            if area >= max(min_region_px, 1):
                parts.append((area, positive, comp == c))
    parts.sort(key=lambda p: (-p[0], not p[1]))
    for i, (_, _, region) in enumerate(parts):
        labels[region] = i + 1
    return ErrorRegions(
        labels,
        np.array([p[1] for p in parts], bool),
        np.array([p[0] for p in parts], np.int64),
    )


def _allocate(areas: np.ndarray, n: int, rng: np.random.Generator, allocation: str) -> np.ndarray:
    """Clicks per region, ``int64[R]``, never more than a region's area."""
    share = areas / areas.sum()
    if allocation == "sample":
        counts = rng.multinomial(n, share)
    elif allocation == "proportional":
        quota = n * share
        counts = np.floor(quota).astype(np.int64)
        rest = np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]
        counts[rest] += 1
    else:
        raise ValueError(f"expected allocation 'sample' or 'proportional', got {allocation!r}")
    return np.minimum(counts, areas)


def _distance_to_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each mask pixel to the nearest non-mask pixel; the image border
    counts as outside (padding, as RITM does)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    cv2 = require("cv2", "corrective clicks")
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _argmax_xy(values: np.ndarray) -> np.ndarray:
    y, x = np.unravel_index(int(np.argmax(values)), values.shape)
    return np.array([x, y], np.float64)


def _center_points(region: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` points, each the deepest pixel of one k-means cell of the region."""
    if m == 1:
        return _argmax_xy(_distance_to_outside(region))[None]
    ys, xs = np.nonzero(region)
    xy = np.stack([xs, ys], axis=1).astype(np.float64)
    kmeans2 = require("scipy.cluster.vq", "corrective clicks at region centres").kmeans2
    _, cell = kmeans2(xy, m, minit="++", seed=rng)
    points = []
    for c in np.unique(cell):
        part = np.zeros_like(region)
        part[ys[cell == c], xs[cell == c]] = True
        points.append(_argmax_xy(_distance_to_outside(part)))
    return np.array(points)


def _boundary_points(region: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` pixels on the region's outer contour, equally spaced in arc length from a random start."""
    cv2 = require("cv2", "corrective clicks on region boundaries")
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len).reshape(-1, 2).astype(np.float64)
    steps = np.linalg.norm(np.diff(contour, axis=0, append=contour[:1]), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    length = max(float(steps.sum()), 1.0)
    targets = (rng.random() + np.arange(m)) / m * length
    return contour[np.searchsorted(arc, targets, side="right") - 1]


def _random_points(region: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.nonzero(region)
    pick = rng.choice(len(xs), size=m, replace=False)
    return np.stack([xs[pick], ys[pick]], axis=1).astype(np.float64)


_PLACERS = {"center": _center_points, "boundary": _boundary_points, "random": _random_points}


def corrective_clicks(
    gt: np.ndarray,
    pred: np.ndarray,
    n_clicks: int,
    rng: np.random.Generator,
    strategy: Strategy = "center",
    noise_sigma: float = 3.0,
    min_region_px: int = 0,
    allocation: Literal["sample", "proportional"] = "sample",
    void: np.ndarray | None = None,
) -> Clicks:
    """Up to ``n_clicks`` corrective clicks on the errors of ``pred`` (``bool[H, W]``) against
    ``gt`` (``bool[H, W]``), one round of the paper's simulated annotator (module docstring).

    Returns ``Clicks``: xy ``float32[n, 2]`` (x, y) pixel positions after noise, clamped to
    ``[0, W - 1] x [0, H - 1]``; ``positive`` True for clicks aimed at false negatives;
    ``labels`` 0. Clicks are ordered by region, largest first. Fewer than ``n_clicks`` come
    back when there are fewer error pixels (none when ``pred`` matches ``gt``).
    """
    if n_clicks < 0:
        raise ValueError(f"expected n_clicks >= 0, got {n_clicks}")
    if strategy not in _PLACERS:
        raise ValueError(f"expected strategy one of {sorted(_PLACERS)}, got {strategy!r}")
    regions = error_regions(gt, pred, min_region_px, void)
    if n_clicks == 0 or len(regions) == 0:
        return Clicks.empty()
    counts = _allocate(regions.areas, n_clicks, rng, allocation)
    points, positive = [], []
    for i in np.flatnonzero(counts):
        points.append(_PLACERS[strategy](regions.mask(i), int(counts[i]), rng))
        positive += [bool(regions.positive[i])] * len(points[-1])
    xy = np.concatenate(points)
    if noise_sigma > 0:
        xy = xy + rng.normal(0.0, noise_sigma, size=xy.shape)
    height, width = regions.labels.shape
    xy = np.clip(xy, 0, [width - 1, height - 1])
    return Clicks(xy, np.zeros(len(xy), np.int64), np.array(positive, bool))


def ritm_next_click(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, clicked: Clicks | None = None
) -> Click | None:
    """RITM's evaluation click: the error pixel farthest from the error's boundary.

    The false-negative and false-positive masks (``void`` excluded) are zero-padded by one
    pixel (so the image border counts as boundary), distance-transformed (exact L2), the
    pixels of earlier ``clicked`` positions are zeroed, and the click goes to the first
    (row-major) maximum of the map with the larger maximum: positive if that is the FN map
    (FP wins ties, as in RITM). Returns ``Click(x, y, positive=...)`` with integer pixel
    coordinates, or None when there is no error left.
    """
    fn, fp = _masks(gt, pred, void)
    dt_fn, dt_fp = _distance_to_outside(fn), _distance_to_outside(fp)
    if clicked is not None and len(clicked):
        ij = np.round(clicked.xy).astype(int)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < fn.shape[1]) & (ij[:, 1] >= 0) & (ij[:, 1] < fn.shape[0])
        dt_fn[ij[inside, 1], ij[inside, 0]] = 0
        dt_fp[ij[inside, 1], ij[inside, 0]] = 0
    if max(dt_fn.max(initial=0), dt_fp.max(initial=0)) <= 0:
        return None
    positive = bool(dt_fn.max() > dt_fp.max())
    x, y = _argmax_xy(dt_fn if positive else dt_fp)
    return Click(float(x), float(y), 0, positive)


def noisy_box(
    box: np.ndarray,
    rng: np.random.Generator,
    sigma: float = 60.0,
    min_iou: float = 0.7,
    image_size: tuple[int, int] | None = None,
    max_tries: int = 1000,
) -> np.ndarray:
    """A loose box: each XYXY coordinate of ``box`` (``float[4]``) plus N(0, ``sigma``) pixels
    (paper: 60), clipped to ``image_size = (width, height)`` when given, resampled until it is
    a proper box with IoU >= ``min_iou`` (paper: 0.7) with ``box``. Returns ``float32[4]``.

    After ``max_tries`` rejected draws the true box itself (clipped) is returned, so the
    result always satisfies the IoU bound; with the paper's sigma this needs boxes of about
    30 px or less on a side to happen at all.
    """
    truth = np.asarray(box, np.float64).reshape(-1)
    if truth.shape != (4,):
        raise ValueError(f"expected one XYXY box of 4 numbers, got shape {np.shape(box)}")
    if not (truth[2] > truth[0] and truth[3] > truth[1]):
        raise ValueError(f"expected a box with x1 > x0 and y1 > y0, got {truth.tolist()}")
    high = None if image_size is None else np.array([image_size[0], image_size[1]] * 2, np.float64)
    for _ in range(max_tries):
        cand = truth + rng.normal(0.0, sigma, size=4)
        if high is not None:
            cand = np.clip(cand, 0, high)
        if cand[2] > cand[0] and cand[3] > cand[1] and box_iou(cand[None], truth[None])[0, 0] >= min_iou:
            return cand.astype(np.float32)
    return (truth if high is None else np.clip(truth, 0, high)).astype(np.float32)
