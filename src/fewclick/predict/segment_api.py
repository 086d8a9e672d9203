"""What every box-to-mask predictor shares: the result type, the interface, the box check.

A predictor segments one object at a time: ``set_image(image)`` once, then
``predict(box, clicks, previous)`` for each box and each round of corrective clicks, where
``previous`` is the ``state`` of the backend's last prediction on the same object (SAM's
low-resolution logits, the previous mask for the others); callers pass it through without
looking inside. The pretrained SAM (:mod:`fewclick.predict.sam`), the learned M_b / M_b+c
(:mod:`fewclick.predict.segment`), OpenCV GrabCut (:mod:`fewclick.predict.grabcut`) and the
box itself (:class:`BoxPredictor`) all follow it, so the protocols run against any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fewclick.types import Clicks


@dataclass
class MaskPrediction:
    """One object's mask: ``mask bool[H, W]`` in full-image pixels; ``score`` the
    predictor's own confidence in [0, 1] (mean foreground probability inside the mask for
    a learned model, 1.0 where a predictor has none); ``quality`` the estimated IoU from the
    mask-quality ranker, None until a ranker has scored it; ``state`` what the same backend
    takes back as ``previous`` for the next round on this object; ``candidates`` the
    other masks a person may switch to (``Tab`` on the page), this one first, where the
    backend offers any (SAM with ``multimask``), else empty. ``offset`` (x, y), when set,
    says ``mask`` is a window of a large image with its top-left pixel there
    (:mod:`fewclick.predict.windows`). ``shape`` names a candidate that is not the backend's
    answer but offered beside it (:mod:`fewclick.predict.shapes`: "ellipse", a shape prior;
    "proposal", the image's proposal under a click)."""

    mask: np.ndarray
    score: float
    quality: float | None = None
    state: Any = None
    candidates: list[MaskPrediction] = field(default_factory=list)
    offset: tuple[int, int] | None = None
    shape: str | None = None


class SegmentPredictor(Protocol):
    """Box (+ corrective clicks) -> mask. Clicks are :class:`Clicks` in image pixels with
    ``positive`` True for "this belongs to the object"; their ``labels`` are ignored. Only
    a backend that can segment from clicks alone (SAM) accepts ``box=None``; the others
    raise ValueError (:func:`require_box`)."""

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(
        self, box: Any = None, clicks: Clicks | None = None, previous: Any = None
    ) -> MaskPrediction: ...


def require_box(box: Any, backend: str) -> Any:
    """``box``, or ValueError saying that ``backend`` needs one."""
    if box is None:
        raise ValueError(
            f"the {backend} backend needs a box (x0, y0, x1, y1); it cannot segment from clicks alone"
        )
    return box


def check_box(box: Any, width: int, height: int) -> np.ndarray:
    """``box`` (x0, y0, x1, y1) in pixels -> ``float32[4]`` clipped to the image.

    A box partly outside the image is clipped; one wholly outside, with NaN/inf, or with
    no area after clipping raises ValueError naming the box."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"expected a box (x0, y0, x1, y1) of 4 finite numbers, got {box!r}")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"box {b.tolist()} is degenerate: expected x1 > x0 and y1 > y0")
    clipped = np.clip(b, 0, [width, height, width, height])
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        raise ValueError(f"box {b.tolist()} lies outside the {width} x {height} image")
    return clipped.astype(np.float32)


def check_mask_clicks(clicks: Clicks | None, width: int, height: int) -> Clicks:
    """``clicks`` or no clicks; a click outside the image raises ValueError naming it."""
    if clicks is None:
        return Clicks.empty()
    for i, (x, y) in enumerate(clicks.xy):
        if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
            raise ValueError(f"click {i} at ({x:g}, {y:g}) is outside the {width} x {height} image")
    return clicks


class BoxPredictor:
    """The simplest baseline: the (clipped) box itself is the mask; clicks are ignored."""

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._shape = tuple(np.asarray(image).shape[:2])

    def predict(self, box: Any = None, clicks: Clicks | None = None, previous: Any = None) -> MaskPrediction:
        if self._shape is None:
            raise RuntimeError("no image set: call set_image(image) before predict(box)")
        h, w = self._shape
        x0, y0, x1, y1 = check_box(require_box(box, "box"), w, h)
        check_mask_clicks(clicks, w, h)
        mask = np.zeros((h, w), bool)
        mask[int(round(y0)) : int(round(y1)), int(round(x0)) : int(round(x1))] = True
        return MaskPrediction(mask, 1.0, state=mask)
