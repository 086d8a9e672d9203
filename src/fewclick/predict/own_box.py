"""The clicked object's own box (issue 32, part 3). A trained detector does not always box
the object a person clicked: on hit_uav, after a minute of training on 5 images, it found
the clicked object at IoU 0.5 for only 35-43% of clicks. A click it leaves without a box of
its class around it (at :data:`OWN_MIN_SCORE` or more) gets SAM's box from the click, as
the training-free start gives it (on hit_uav 70% of such boxes reached IoU 0.5 with the
clicked object), at score 1: the clicked object's own box; the detector's boxes of that
class on top of it go.

SAM's box is the object as SAM segments it, not as the person boxes it: on hit_uav's thermal
images its top edge sat about 4 px below the person's, and only a third of its click boxes
reached IoU 0.7 (manual quality). :class:`EdgeOffsets` learns the person's convention from
the project's finished images (their boxes against SAM's click boxes at their centres) and
moves each edge by it (``benchmarks/click_boxes.py``).

A trained detector's proposal may be made tight the same way (issue 32's "tight boxes"): SAM's
mask from the proposal as a box prompt, and the box around that mask (:func:`tight_box`). On
hit_uav's test part it raised the persons' proposals at IoU 0.7 from 12% to 36%, the cars'
from 9% to 11%; on the detector's own training images it lowered both (its boxes there are
tight already). So whether a class's proposals are made tight is learnt on held-out finished
images (:func:`tight_classes`; ``benchmarks/tight_boxes.py``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fewclick.metrics.detection import KEPT_IOU, box_iou, paired_box_iou
from fewclick.types import Clicks, Detections, mask_box

MIN_FIT = 3  # a class with fewer finished pairs keeps SAM's boxes
FIT_IOU = 0.3  # a SAM box this far off its object (background taken) says nothing of the edges
MAX_OFFSET = 0.5  # an edge moves at most this share of the box side
OWN_MIN_SCORE = 0.3  # a detector's box around the click at this score or more is the object's
DUPLICATE_IOU = 0.5  # a detector's box of the class overlapping an own box this much goes
NEAR_IOU = 0.3  # a proposal this close to an object of its class is that object's, loosely


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


class EdgeOffsets:
    """Per class, what to add to a SAM click box's edges (x0, y0, x1, y1), as a share of its
    width and height, to reach the person's box: the median over the class's finished objects
    when it has :data:`MIN_FIT` or more. A class without them keeps SAM's boxes: offsets of
    all classes pooled moved hit_uav's bicycles away from their boxes (IoU >= 0.7 from 0.2 to
    0 on the training part, 0.12 to 0.02 on the test part)."""

    def __init__(self, per_class: Mapping[int, np.ndarray]) -> None:
        self.per_class = dict(per_class)

    @classmethod
    def fit(cls, labels: np.ndarray, theirs: np.ndarray, sam: np.ndarray) -> EdgeOffsets:
        """From the person's boxes ``theirs`` and SAM's click boxes ``sam`` of the same
        objects (``float[N, 4]``, classes ``labels``); pairs under :data:`FIT_IOU` are left out."""
        labels = np.asarray(labels, np.int64).reshape(-1)
        theirs = np.asarray(theirs, np.float32).reshape(-1, 4)
        sam = np.asarray(sam, np.float32).reshape(-1, 4)
        near = paired_box_iou(theirs, sam) >= FIT_IOU
        labels, theirs, sam = labels[near], theirs[near], sam[near]
        shares = np.clip((theirs - sam) / _sides(sam), -MAX_OFFSET, MAX_OFFSET)
        return cls(
            {
                int(c): np.median(shares[labels == c], 0)
                for c in np.unique(labels)
                if (labels == c).sum() >= MIN_FIT
            }
        )

    def __bool__(self) -> bool:
        return bool(self.per_class)

    def apply(self, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``boxes`` (``float[N, 4]`` SAM click boxes of classes ``labels``) moved edge by edge."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        none = np.zeros(4, np.float32)
        shares = np.stack([self.per_class.get(int(c), none) for c in labels]) if len(boxes) else 0
        moved = boxes + shares * _sides(boxes)
        # never inside out: an edge moved past the opposite one stays at the box's centre
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        out = np.concatenate([np.minimum(moved[:, :2], centre), np.maximum(moved[:, 2:], centre)], 1)
        return out.astype(np.float32)


def _sides(boxes: np.ndarray) -> np.ndarray:
    w, h = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0), np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    return np.stack([w, h, w, h], 1)


def tight_box(sam, box, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The box around SAM's mask for ``box`` (x0, y0, x1, y1 in image pixels) as its prompt;
    ``sam`` holds the embedding of the image (or of the tile at ``origin``, the image pixel of
    its top-left corner). ``box`` itself when the mask is empty."""
    box = np.asarray(box, np.float32).reshape(4)
    shift = np.array([origin[0], origin[1], origin[0], origin[1]], np.float32)
    tight = mask_box(sam.predict(box=box - shift).mask)
    return box if tight is None else tight + shift


def near_pairs(det: Detections, boxes: np.ndarray, labels: np.ndarray) -> list[tuple[int, int]]:
    """(proposal, object) index pairs of ``det`` and the person's ``boxes`` (classes
    ``labels``): by descending score, each proposal to the free object of its class it
    overlaps most, at IoU :data:`NEAR_IOU` or more."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if not len(det) or not len(boxes):
        return []
    iou = box_iou(det.boxes, boxes)
    iou[det.labels[:, None] != labels[None, :]] = 0
    taken = np.zeros(len(boxes), bool)
    pairs = []
    for i in np.argsort(-det.scores, kind="stable"):
        row = np.where(taken, 0, iou[i])
        j = int(np.argmax(row))
        if row[j] >= NEAR_IOU:
            taken[j] = True
            pairs.append((int(i), j))
    return pairs


def tight_classes(labels, theirs, proposed, tight) -> set[int]:
    """The classes whose proposals are better made tight: of the person's boxes ``theirs``,
    the detector's proposals on them ``proposed`` and those made tight ``tight``
    (``float[N, 4]``, classes ``labels``, on images the detector did not train on), those
    with :data:`MIN_FIT` pairs or more where more tight boxes than proposed ones reach
    :data:`~fewclick.metrics.detection.KEPT_IOU`."""
    labels = np.asarray(labels, np.int64).reshape(-1)
    theirs = np.asarray(theirs, np.float32).reshape(-1, 4)
    as_proposed = paired_box_iou(theirs, np.asarray(proposed, np.float32).reshape(-1, 4)) >= KEPT_IOU
    as_tight = paired_box_iou(theirs, np.asarray(tight, np.float32).reshape(-1, 4)) >= KEPT_IOU
    return {
        int(c)
        for c in np.unique(labels)
        if (labels == c).sum() >= MIN_FIT and as_tight[labels == c].sum() > as_proposed[labels == c].sum()
    }
