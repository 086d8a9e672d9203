"""Between database annotations (JSON geometry) and fewclick's columnar :class:`Objects`."""

from __future__ import annotations

import math

import numpy as np

from fewclick.server.db import Annotation
from fewclick.types import Objects, rboxes_to_boxes

PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075",
)  # fmt: skip


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


class GeometryError(ValueError):
    """Annotation geometry that does not describe a shape in the image."""


def check_geometry(kind: str, geometry: dict, width: int, height: int) -> dict:
    """A clean copy of ``geometry`` for an annotation of ``kind``, or a GeometryError that
    names the problem. Boxes are clipped to the image; a box with no area inside it, a
    point outside it, or a mask of another size is refused."""
    if not isinstance(geometry, dict):
        raise GeometryError(f"a {kind} needs its geometry as an object, got {geometry!r}")
    check = _Geometry(kind, geometry, width, height)
    by_kind = {
        "box": check.box_kind,
        "rbox": check.rbox_kind,
        "point": check.point_kind,
        "mask": check.mask_kind,
    }
    if kind not in by_kind:
        raise GeometryError(f"unknown annotation kind {kind!r}; expected box, rbox, mask or point")
    return by_kind[kind]()


class _Geometry:
    """The checks of :func:`check_geometry`: one method a kind, on its parts."""

    def __init__(self, kind: str, geometry: dict, width: int, height: int) -> None:
        self.kind, self.geometry, self.width, self.height = kind, geometry, width, height

    def numbers(self, key: str, n: int) -> list[float]:
        value = self.geometry.get(key)
        if not isinstance(value, list | tuple) or len(value) != n:
            raise GeometryError(f"a {self.kind} needs '{key}' as {n} numbers, got {value!r}")
        try:
            out = [float(v) for v in value]
        except (TypeError, ValueError):
            raise GeometryError(f"a {self.kind} needs '{key}' as {n} numbers, got {value!r}") from None
        if not all(math.isfinite(v) for v in out):
            raise GeometryError(f"'{key}' holds a value that is not finite: {value!r}")
        return out

    def box(self, values: list[float]) -> list[float]:
        width, height = self.width, self.height
        x0, y0, x1, y1 = values
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        clipped = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            raise GeometryError(
                f"box {values} has less than 1 pixel of width or height inside the {width} x {height} image"
            )
        return clipped

    def point(self, key: str) -> list[float]:
        x, y = self.numbers(key, 2)
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            raise GeometryError(f"point ({x:g}, {y:g}) is outside the {self.width} x {self.height} image")
        return [x, y]

    @staticmethod
    def outline(value) -> list[list[float]]:
        if not isinstance(value, list | tuple) or len(value) < 3:
            raise GeometryError(f"a polygon needs at least 3 [x, y] vertices, got {value!r}")
        try:
            out = [[float(x), float(y)] for x, y in value]
        except (TypeError, ValueError):
            raise GeometryError(f"a polygon needs [x, y] vertices, got {value!r}") from None
        if not all(math.isfinite(v) for xy in out for v in xy):
            raise GeometryError("the polygon holds a vertex that is not finite")
        return out

    def box_kind(self) -> dict:
        return {"box": self.box(self.numbers("box", 4))}

    def rbox_kind(self) -> dict:
        cx, cy, w, h, a = self.numbers("rbox", 5)
        if w < 1 or h < 1:
            raise GeometryError(f"oriented box {[cx, cy, w, h, a]} is under 1 pixel wide or high")
        enclosing = rboxes_to_boxes(np.array([[cx, cy, w, h, a]], np.float32))[0].tolist()
        out = {"rbox": [cx, cy, w, h, a], "box": self.box(enclosing)}
        if "mask" in self.geometry:  # an oriented object may carry its mask too (an import of both);
            mask = {"mask": self.geometry["mask"]}
            out.update(check_geometry("mask", mask, self.width, self.height))  # box: the mask's
        return out

    def point_kind(self) -> dict:
        out = {"point": self.point("point")}
        out["original"] = self.point("original") if "original" in self.geometry else list(out["point"])
        return out

    def mask_kind(self) -> dict:
        from fewclick.io.rle import check_rle, polygons_to_rle, rle_boxes

        width, height, geometry = self.width, self.height, self.geometry
        if geometry.get("mask") is None and geometry.get("polygon") is not None:
            vertices = self.outline(geometry["polygon"])
            rle = polygons_to_rle([vertices], height, width)  # filled over its box alone
            b = rle_boxes([rle])[0]
            if b[2] <= b[0]:
                raise GeometryError(f"the polygon covers no pixel of the {width} x {height} image")
            return {"mask": rle, "box": b.astype(float).tolist(), "polygon": vertices}
        try:
            rle = check_rle(geometry.get("mask"), height, width)
        except ValueError as exc:
            raise GeometryError(str(exc)) from None
        b = rle_boxes([rle])[0]
        if b[2] <= b[0]:
            raise GeometryError("the mask is empty")
        return {"mask": rle, "box": b.astype(float).tolist()}


def to_objects(annotations: list[Annotation], position_of: dict[int, int], oriented: bool) -> Objects:
    """The annotations of one image as :class:`Objects` (labels are class positions)."""
    n = len(annotations)
    boxes = np.full((n, 4), np.nan, np.float32)
    rboxes = np.full((n, 5), np.nan, np.float32) if oriented else None
    points = np.full((n, 2), np.nan, np.float32)
    original = np.full((n, 2), np.nan, np.float32)
    segs: list = [None] * n
    labels = np.zeros(n, np.int64)
    for i, ann in enumerate(annotations):
        g = ann.geometry
        labels[i] = position_of[ann.class_id]
        if "box" in g:
            boxes[i] = g["box"]
        if "rbox" in g and rboxes is not None:
            rboxes[i] = g["rbox"]
        if "point" in g:
            points[i] = g["point"]
            original[i] = g.get("original", g["point"])
        if "mask" in g:
            segs[i] = g["mask"]
    if rboxes is not None and np.isnan(rboxes).any():
        rboxes = None if np.isnan(rboxes).all() else _fill_rboxes(rboxes, boxes)
    has_points = bool(np.isfinite(points).all(1).any())
    return Objects(
        labels,
        boxes,
        rboxes=rboxes,
        points=points if has_points else None,
        segmentations=segs if any(s is not None for s in segs) else None,
        extra={"original": original} if has_points else {},
    )


def _fill_rboxes(rboxes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes as angle-0 oriented boxes where an object has no oriented box."""
    out = rboxes.copy()
    missing = np.isnan(out).any(1) & np.isfinite(boxes).all(1)
    b = boxes[missing]
    out[missing] = np.stack(
        [
            (b[:, 0] + b[:, 2]) / 2,
            (b[:, 1] + b[:, 3]) / 2,
            b[:, 2] - b[:, 0],
            b[:, 3] - b[:, 1],
            np.zeros(len(b)),
        ],
        1,
    )
    return out


def from_objects(objects: Objects, i: int, height: int, width: int) -> tuple[str, dict]:
    """``(kind, geometry)`` of object ``i`` of an image of ``height x width``: an oriented box
    with its mask when it has both, else mask (polygons become RLE) over oriented box over
    box over point."""
    from fewclick.io import rle

    seg = None if objects.segmentations is None else objects.segmentations[i]
    box = objects.boxes[i]
    if isinstance(seg, dict) and objects.rboxes is not None and np.isfinite(objects.rboxes[i]).all():
        encoded = rle.segmentation_to_rle(seg, height, width)
        return "rbox", {"rbox": objects.rboxes[i].astype(float).tolist(), "mask": encoded}
    if isinstance(seg, dict) or (seg and objects.rboxes is None):
        encoded = rle.segmentation_to_rle(seg, height, width)  # never the image-sized mask
        return "mask", {
            "mask": {"size": [height, width], "counts": encoded["counts"]},
            "box": box.astype(float).tolist(),
        }
    if objects.rboxes is not None and np.isfinite(objects.rboxes[i]).all():
        return "rbox", {"rbox": objects.rboxes[i].astype(float).tolist(), "box": box.astype(float).tolist()}
    if np.isfinite(box).all():
        return "box", {"box": box.astype(float).tolist()}
    if objects.points is not None and np.isfinite(objects.points[i]).all():
        p = objects.points[i].astype(float).tolist()
        return "point", {"point": p, "original": p}
    raise GeometryError(f"object {i} has no box, oriented box, mask or point")
