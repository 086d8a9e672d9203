"""fewclick's types as the API's answers hold them: detections and masks as JSON lists and
COCO RLE, and class ids as the class positions the models count by (and back).

The worker process encodes with :func:`detection_lists`, :func:`mask_answer` and
:func:`region_answers`, the outline route with :func:`outline_answer`; a route turns the
positions in an answer into the project's class ids with a :class:`ClassMap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from fewclick.types import Detections

V = TypeVar("V")

BOX_DECIMALS = 2  # boxes' coordinates in image pixels
RBOX_DECIMALS = 3  # oriented boxes' (cx, cy, w, h, angle)
SCORE_DECIMALS = 4


def detection_lists(det: Detections) -> dict:
    """``det`` as JSON-ready lists: ``boxes`` XYXY ``[N][4]``, ``rboxes`` (cx, cy, w, h,
    angle) ``[N][5]`` or None, ``scores`` ``[N]`` and ``labels`` ``[N]`` (class positions;
    :meth:`ClassMap.ids` makes them class ids), rounded to the decimals above."""
    return {
        "boxes": det.boxes.round(BOX_DECIMALS).tolist(),
        "rboxes": None if det.rboxes is None else det.rboxes.round(RBOX_DECIMALS).tolist(),
        "scores": det.scores.round(SCORE_DECIMALS).tolist(),
        "labels": det.labels.tolist(),
    }


def answer_detections(found: dict):
    """The Detections of an answer's lists (:func:`detection_lists`; labels as class
    positions): what a worker's answer holds, read back to be joined with another's."""
    from fewclick.types import Detections

    rboxes = found.get("rboxes")
    return Detections(
        np.asarray(found["boxes"], np.float32).reshape(-1, 4),
        np.asarray(found["scores"], np.float32),
        np.asarray(found["labels"], np.int64),
        rboxes=None if rboxes is None else np.asarray(rboxes, np.float32).reshape(-1, 5),
    )


def mask_answer(
    mask: np.ndarray,
    score: float,
    offset: tuple[int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> dict:
    """A ``bool[H, W]`` mask as the page draws it: its COCO RLE (``mask``), its tight XYXY
    ``box`` (an empty mask's is the zero box at the origin, as :func:`~fewclick.io.rle.rle_boxes`
    gives it; None only were it not finite), ``score`` and ``area`` in pixels. With
    ``offset`` (x, y) and ``size`` (height, width), ``mask`` is a window of an image of that
    size, and the RLE the image's (the image-sized mask is never made)."""
    from fewclick.io.rle import mask_to_rle, rle_boxes, window_to_rle

    rle = mask_to_rle(mask) if offset is None else window_to_rle(mask, offset, *size)
    b = rle_boxes([rle])[0]
    return {
        "mask": rle,
        "box": None if not np.isfinite(b).all() else b.tolist(),
        "score": float(score),
        "area": int(mask.sum()),
    }


def region_answers(labels: np.ndarray, count: int) -> list[dict]:
    """Per region of the ``int32[H, W]`` region map: its ``index``, its mask as COCO RLE
    (``rle``, as :func:`mask_answer` gives masks) and its ``area`` in pixels (0 when the
    others cover it)."""
    from fewclick.io.rle import mask_to_rle

    areas = np.bincount(labels.ravel(), minlength=count)
    return [{"index": i, "rle": mask_to_rle(labels == i), "area": int(areas[i])} for i in range(count)]


def outline_answer(rings: list[tuple[np.ndarray, bool]], offset: tuple[int, int] = (0, 0)) -> dict:
    """An outline (``[(float64[K, 2] (x, y), is_hole)]``, as :func:`fewclick.outline.editable_outline`
    gives it) moved by ``offset`` (x, y) whole pixels: ``{"rings": [{"points", "hole"}]}``.
    The coordinates are not rounded: the page fills exactly the rings the simulator does."""
    dx, dy = offset
    return {"rings": [{"points": (r + [dx, dy]).tolist(), "hole": bool(hole)} for r, hole in rings]}


class ProjectClassLike(Protocol):
    id: int
    position: int


class ClassMap:
    """A project's class ids and the positions its models count classes by (0, 1, ... in
    the order of its classes), both ways. The API speaks class ids; models, the worker and
    :class:`~fewclick.types.Objects` speak positions."""

    def __init__(self, classes: Iterable[ProjectClassLike]) -> None:
        self.position_of: dict[int, int] = {c.id: c.position for c in classes}
        self.class_of: dict[int, int] = {p: i for i, p in self.position_of.items()}

    def __contains__(self, class_id: object) -> bool:
        return class_id in self.position_of

    def position(self, class_id: int) -> int:
        """The position of class ``class_id`` (KeyError when the project has no such class)."""
        return self.position_of[class_id]

    def ids(self, positions: Iterable[int]) -> list[int]:
        """The class ids of ``positions`` (numpy integers too)."""
        return [self.class_of[int(p)] for p in positions]

    def by_position(self, per_class: Mapping[int, V]) -> dict[int, V]:
        """``per_class`` (class id -> value) keyed by position instead."""
        return {self.position_of[k]: v for k, v in per_class.items()}

    def by_id(self, per_position: Iterable[V | None]) -> dict[int, V]:
        """A per-position list (``None``: no value) as class id -> value, for the positions
        the project still has."""
        known = self.class_of
        return {known[k]: v for k, v in enumerate(per_position) if v is not None and k in known}
