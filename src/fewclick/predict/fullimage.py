"""Full-image segmentation predictors: every region of an image from its 4 extreme points
and its corrective scribbles, all regions at once, every pixel to exactly one region.

A predictor has ``set_image(image)`` and ``predict(prompts) -> int32[H, W]`` (region ids,
the index of each prompt). Two live here:

- :class:`BoxFill`, the floor every learned model must beat: each region is the box of its
  extreme points, larger boxes painted first, so a small region inside a large one stays
  on top; scribbles paint their own pixels last. Pixels outside every box go to the
  nearest box (by distance to the box).
- :class:`SamCompete`, training-free: per region SAM's logits from its box, its extreme
  points and its scribbles' points as positive clicks, and as negative clicks the scribble
  points of other regions inside its box (the region they take pixels from). Regions
  compete by the argmax of their logits at every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from fewclick.types import Clicks, ExtremePoints, Scribble

SCRIBBLE_CLICKS = 5  # points taken along each scribble as SAM clicks
OUTSIDE_BOX = -1e4  # a region's logit outside its box: any region whose box holds the pixel wins


@dataclass
class RegionPrompt:
    """What the annotator gave for one region: its extreme points and its scribbles."""

    extreme: ExtremePoints
    scribbles: list[Scribble] = field(default_factory=list)

    @property
    def box(self) -> np.ndarray:
        """The half-open box ``[x0, y0, x1, y1]`` of the extreme points."""
        xy = self.extreme.points
        return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max() + 1, xy[:, 1].max() + 1], np.float32)


def scribble_points(scribble: Scribble, count: int = SCRIBBLE_CLICKS) -> np.ndarray:
    """``count`` points spread along the scribble (its first and last included)."""
    points = scribble.points
    if len(points) <= count:
        return points
    return points[np.linspace(0, len(points) - 1, count).round().astype(int)]


def paint_scribbles(labels: np.ndarray, prompts: list[RegionPrompt], width: int = 3) -> None:
    """Give every scribble's own pixels to its region, in place."""
    from fewclick.simulate.scribbles import rasterize_scribble

    for index, prompt in enumerate(prompts):
        for s in prompt.scribbles:
            labels[rasterize_scribble(s, labels.shape, width)] = index


class BoxFill:
    """Each region is its box (see the module)."""

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, prompts: list[RegionPrompt]) -> np.ndarray:
        h, w = self.shape
        labels = np.full((h, w), -1, np.int32)
        boxes = [p.box for p in prompts]
        for index in sorted(range(len(prompts)), key=lambda i: -_area(boxes[i])):
            x0, y0, x1, y1 = (int(round(v)) for v in boxes[index])
            labels[max(y0, 0) : y1, max(x0, 0) : x1] = index
        paint_scribbles(labels, prompts)
        return _fill_nearest(labels)


class SamCompete:
    """SAM's logits per region, argmax across regions (see the module)."""

    def __init__(self, sam) -> None:
        self.sam = sam

    def set_image(self, image: np.ndarray) -> None:
        self.sam.set_image(image)
        self.shape = image.shape[:2]

    def predict(self, prompts: list[RegionPrompt]) -> np.ndarray:
        if not prompts:
            raise ValueError("expected at least one region, got none")
        h, w = self.shape
        best = np.full((h, w), -np.inf, np.float32)
        labels = np.zeros((h, w), np.int32)
        for index, prompt in enumerate(prompts):
            logits = self.sam.logits(box=prompt.box, clicks=self._clicks(index, prompts))
            x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
            outside = np.ones((h, w), bool)
            outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
            logits[outside] = OUTSIDE_BOX  # a region lives in its box, as the paper's RoI crop
            better = logits > best
            best[better], labels[better] = logits[better], index
        paint_scribbles(labels, prompts)
        return labels

    @staticmethod
    def _clicks(index: int, prompts: list[RegionPrompt]) -> Clicks:
        own = prompts[index]
        positive = [own.extreme.points] + [scribble_points(s) for s in own.scribbles]
        x0, y0, x1, y1 = own.box
        negative = [
            p
            for other, prompt in enumerate(prompts)
            if other != index
            for s in prompt.scribbles
            for p in scribble_points(s)
            if x0 <= p[0] < x1 and y0 <= p[1] < y1
        ]
        xy = np.concatenate(positive + [np.reshape(negative, (-1, 2))]).astype(np.float32)
        sign = np.r_[np.ones(sum(len(p) for p in positive), bool), np.zeros(len(negative), bool)]
        return Clicks(xy, np.zeros(len(xy), np.int64), sign)


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _fill_nearest(labels: np.ndarray) -> np.ndarray:
    """Pixels still -1 take the label of the nearest labelled pixel."""
    unset = labels < 0
    if not unset.any() or unset.all():
        return np.where(unset, 0, labels).astype(np.int32)
    _, (iy, ix) = ndimage.distance_transform_edt(unset, return_indices=True)
    return labels[iy, ix].astype(np.int32)


def resize_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``float32[H', W']`` logits in SAM's resized frame -> ``float32[H, W]`` at image pixels."""
    h, w = size
    return cv2.resize(logits.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
