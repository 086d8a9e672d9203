"""Simulated annotators: pure functions of ground truth, a prediction and an explicit
``rng: np.random.Generator``, one module per annotator kind.

- :mod:`.clicks`: centre clicks with classes for click-to-detect (C3Det);
- :mod:`.corrective`: corrective mask clicks, RITM's next click and loose boxes
  (interactive segmentation at scale);
- :mod:`.extreme`: extreme points (DEXTR's protocol);
- :mod:`.scribbles`: corrective Bezier scribbles (interactive full image segmentation);
- :mod:`.allocation`: where a full-image annotator spends its scribbles (error regions by
  mIoU gain; one per region or free allocation);
- :mod:`.coarse`: coarse points from a rectified Gaussian (CPR);
- :mod:`.oracle`: the box oracle of box-level active learning.

Coordinates are (x, y) everywhere.
"""

from fewclick.simulate.allocation import ALLOCATIONS, RegionError, allocate_scribbles, region_errors
from fewclick.simulate.clicks import (
    centre_clicks,
    click_order,
    object_centres,
    training_click_indices,
    training_clicks,
)
from fewclick.simulate.coarse import coarse_points
from fewclick.simulate.corrective import (
    ErrorRegions,
    corrective_clicks,
    error_regions,
    noisy_box,
    ritm_next_click,
)
from fewclick.simulate.extreme import extreme_points
from fewclick.simulate.oracle import OracleAnswer, box_iou, oracle
from fewclick.simulate.scribbles import bezier_through, rasterize_scribble, scribble

__all__ = [
    "ALLOCATIONS",
    "RegionError",
    "allocate_scribbles",
    "region_errors",
    "ErrorRegions",
    "OracleAnswer",
    "bezier_through",
    "box_iou",
    "centre_clicks",
    "click_order",
    "coarse_points",
    "corrective_clicks",
    "error_regions",
    "extreme_points",
    "noisy_box",
    "object_centres",
    "oracle",
    "rasterize_scribble",
    "ritm_next_click",
    "scribble",
    "training_click_indices",
    "training_clicks",
]
