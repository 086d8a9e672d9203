"""The clicked object's own box (issue 32, part 3). A trained detector does not always box
the object a person clicked: on hit_uav, after a minute of training on 5 images, it found
the clicked object at IoU 0.5 for only 35-43% of clicks. A click it leaves without a box of
its class around it (at :data:`OWN_MIN_SCORE` or more) gets SAM's box from the click, as
the training-free start gives it (on hit_uav 70% of such boxes reached IoU 0.5 with the
clicked object), at score 1: the clicked object's own box; the detector's boxes of that
class on top of it go."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.types import Clicks, Detections

OWN_MIN_SCORE = 0.3  # a detector's box around the click at this score or more is the object's
DUPLICATE_IOU = 0.5  # a detector's box of the class overlapping an own box this much goes


def unboxed_clicks(det: Detections, clicks: Clicks, min_score: float = OWN_MIN_SCORE) -> list[int]:
    """The indices of the positive clicks with no detection of their class around them
    (the click inside its box) at ``min_score`` or more."""
    missing = []
    for i, ((x, y), label, positive) in enumerate(zip(clicks.xy, clicks.labels, clicks.positive)):
        if not positive:
            continue
        b = det.boxes
        around = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
        if not (around & (det.labels == label) & (det.scores >= min_score)).any():
            missing.append(i)
    return missing


def with_own_boxes(det: Detections, clicks: Clicks, own: Mapping[int, np.ndarray]) -> Detections:
    """``det`` with each click ``i`` of ``own`` boxed by ``own[i]`` (x0, y0, x1, y1) at score
    1 in its class, and without the detections of that class overlapping one at
    :data:`DUPLICATE_IOU` or more. An oriented ``det`` gets them as unrotated boxes."""
    if not own:
        return det
    boxes = np.asarray([own[i] for i in own], np.float32).reshape(-1, 4)
    labels = clicks.labels[list(own)]
    keep = np.ones(len(det), bool)
    if len(det):
        iou = box_iou(det.boxes, boxes)
        keep = ~((iou >= DUPLICATE_IOU) & (det.labels[:, None] == labels[None])).any(1)
    det = det[keep]
    rboxes = None
    if det.rboxes is not None:
        centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
        rboxes = np.concatenate([det.rboxes, np.c_[centre, size, np.zeros(len(boxes))]]).astype(np.float32)
    return Detections(
        np.concatenate([det.boxes, boxes]),
        np.concatenate([det.scores, np.ones(len(boxes), np.float32)]),
        np.concatenate([det.labels, labels]),
        rboxes,
    )
