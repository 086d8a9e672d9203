"""Objects from a label map: one object per region id, with its COCO RLE and XYXY box.

Shared by the readers whose ground truth is an image of region ids (BSDS500's
segmentations, Coelho 2009's nucleus labels).
"""

from __future__ import annotations

import numpy as np

from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.types import Objects


def label_objects(labels: np.ndarray, label: int = 0, skip: tuple[int, ...] = ()) -> Objects:
    """One object of class ``label`` per distinct value of ``labels`` (ids in ``skip``, e.g.
    a background 0, make none), in increasing id order."""
    ids = [int(i) for i in np.unique(labels) if int(i) not in skip]
    rles = [mask_to_rle(labels == i) for i in ids]
    return Objects(labels=np.full(len(rles), label, np.int64), boxes=rle_boxes(rles), segmentations=rles)
