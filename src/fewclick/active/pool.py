"""The box pool U_B and the features the core-set measures compare.

A *unit* is one image (one encoder tile: an image larger than the encoder's input is
split into tiles, each a unit); coordinates are the encoder's input pixels of that unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fewclick.types import Detections

if TYPE_CHECKING:
    import torch

SAME_OBJECT_IOU = 0.5


@dataclass(frozen=True)
class BoxPool:
    """Predicted boxes not yet answered: ``unit int64[N]`` (which unit each is on),
    ``boxes float32[N, 4]`` XYXY, ``labels int64[N]`` (the predicted class), ``scores
    float32[N]`` (the predicted class's probability P)."""

    unit: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.unit)
        for name in ("boxes", "labels", "scores"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"expected {n} {name} (one per pooled box), got {len(getattr(self, name))}")

    @classmethod
    def from_detections(cls, per_unit: dict[int, Detections], threshold: float) -> BoxPool:
        """The boxes of ``per_unit`` (unit id -> its detections) scoring >= ``threshold``
        (t_d, the paper's membership function). Detections of several classes on one
        object (IoU >= :data:`SAME_OBJECT_IOU`) are one box, with the class of highest
        probability: the paper's P is a box's highest class probability."""
        units, boxes, labels, scores = [], [], [], []
        for unit, det in sorted(per_unit.items()):
            det = one_box_per_object(det, threshold)
            units.append(np.full(len(det), unit, np.int64))
            boxes.append(det.boxes)
            labels.append(det.labels)
            scores.append(det.scores)
        if not units:
            return cls.empty()
        return cls(
            np.concatenate(units),
            np.concatenate(boxes).astype(np.float32).reshape(-1, 4),
            np.concatenate(labels).astype(np.int64),
            np.concatenate(scores).astype(np.float32),
        )

    @classmethod
    def empty(cls) -> BoxPool:
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
        )

    def __len__(self) -> int:
        return len(self.unit)

    def __getitem__(self, index) -> BoxPool:
        idx = np.arange(len(self))[index].reshape(-1)
        return BoxPool(self.unit[idx], self.boxes[idx], self.labels[idx], self.scores[idx])

    @property
    def uncertainty(self) -> np.ndarray:
        """``float32[N]``: classification uncertainty 1 - P of every box."""
        return 1.0 - self.scores

    def on(self, unit: int) -> BoxPool:
        """The boxes on one unit."""
        return self[self.unit == unit]


def one_box_per_object(det: Detections, threshold: float) -> Detections:
    """The detections scoring >= ``threshold``, those of several classes on one object
    (IoU >= :data:`SAME_OBJECT_IOU`) merged into the most probable one, highest first."""
    above = np.flatnonzero(det.scores >= threshold)
    if not len(above):
        return det[above]
    import torch
    from torchvision.ops import nms

    kept = nms(torch.from_numpy(det.boxes[above]), torch.from_numpy(det.scores[above]), SAME_OBJECT_IOU)
    return det[above[kept.numpy()]]


def box_features(maps: list[torch.Tensor], boxes: np.ndarray, stride: int = 8) -> np.ndarray:
    """``float32[N, D]``: the pretrained encoder's maps of one unit (``[1, C, h, w]`` each,
    finest first) as unit vectors on the stride-``stride`` grid
    (:func:`fewclick.models.backbone.unit_similarity_features`), averaged inside each XYXY
    box (encoder input pixels) and normalised again."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    index = (4, 8, 16).index(stride)
    import torch
    from torchvision.ops import roi_align

    from fewclick.models.backbone import unit_similarity_features

    with torch.inference_mode():
        unit = unit_similarity_features([m.float() for m in maps], index)
        if not len(boxes):
            return np.zeros((0, unit.shape[1]), np.float32)
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], 1)
        pooled = roi_align(
            unit, rois, output_size=1, spatial_scale=1.0 / stride, sampling_ratio=2, aligned=True
        )
        pooled = torch.nn.functional.normalize(pooled.flatten(1), dim=1)
    return pooled.numpy().astype(np.float32)
