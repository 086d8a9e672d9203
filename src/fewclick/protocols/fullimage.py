"""The full-image protocol (interactive full image segmentation, section 4): per image,
4 extreme points per region at step 0, then one step of corrective scribbles after another
under an allocation, the regions' mean IoU after every step.

The ground truth is a label map (:func:`fewclick.models.fullimage.region_map`): every object
of the record is a region, and the pixels of no object (the background, e.g. around nuclei)
one more region;
regions under ``min_region`` of the image are void, as are the pixels where objects
overlap, and count for nothing. Regions are ids ``0..N-1`` in the objects' order, the
background last.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fewclick.models.fullimage import MIN_REGION, RegionPrompt, region_map
from fewclick.simulate.allocation import ALLOCATIONS, allocate_scribbles
from fewclick.simulate.extreme import extreme_points


def region_miou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Mean over ``gt``'s regions of IoU with the prediction, void pixels left out."""
    counted = gt >= 0
    n = int(gt.max()) + 1
    if n <= 0:
        raise ValueError("expected a ground truth with at least one region, got only void")
    g, p = gt[counted], pred[counted]
    size = max(n, int(p.max()) + 1 if p.size else 0)
    inter = np.bincount(g[g == p], minlength=size)[:n]
    union = np.bincount(g, minlength=size)[:n] + np.bincount(p, minlength=size)[:n] - inter
    return float(np.mean(inter / np.maximum(union, 1)))


def extreme_prompts(gt: np.ndarray, rng: np.random.Generator | None = None) -> list[RegionPrompt]:
    """Each region's 4 extreme points (DEXTR's rule; ties drawn with ``rng``)."""
    return [RegionPrompt(extreme_points(gt == k, rng)) for k in range(int(gt.max()) + 1)]


def run_session(
    predictor,
    image: np.ndarray,
    gt: np.ndarray,
    steps: int,
    allocation: str,
    rng: np.random.Generator,
) -> list[float]:
    """mIoU after step 0 (extreme points) and after each of ``steps`` scribble steps."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {allocation!r}: expected one of {', '.join(ALLOCATIONS)}")
    prompts = extreme_prompts(gt, rng)
    predictor.set_image(image)
    pred = predictor.predict(prompts)
    curve = [region_miou(gt, pred)]
    for _ in range(steps):
        for s in allocate_scribbles(gt, pred, rng, allocation):
            prompts[s.region].scribbles.append(s)
        pred = predictor.predict(prompts)
        curve.append(region_miou(gt, pred))
    return curve


def curves(
    predictor, records: Iterable, steps: int, allocation: str, seed: int = 0, min_region: float = MIN_REGION
) -> dict:
    """``{"scribbles_per_region": [0..steps], "mIoU": [mean over images per step]}``."""
    sessions = []
    for i, record in enumerate(records):
        gt, _ = region_map(record, min_region)
        rng = np.random.default_rng([seed, i])
        sessions.append(run_session(predictor, record.load_image(), gt, steps, allocation, rng))
    if not sessions:
        raise ValueError("expected at least one image, got none")
    return {"scribbles_per_region": list(range(steps + 1)), "mIoU": np.mean(sessions, axis=0).tolist()}
