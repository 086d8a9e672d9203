"""Brush and eraser strokes over a mask: the last pixels a box and clicks could not get.

A :class:`Stroke` is a path of points in image pixels drawn with a round brush of
``radius`` pixels, adding pixels to the mask (the brush) or taking them away (the
eraser). :func:`apply_strokes` paints them in order over a copy of the mask: each point a
disc, and the way between consecutive points swept by the disc (at every pixel along it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

MAX_RADIUS = 200  # px: a brush larger than this is a fill, not a stroke


@dataclass(frozen=True)
class Stroke:
    """``points float32[N, 2]`` (x, y) in image pixels, ``radius`` in pixels, ``add`` True
    for the brush and False for the eraser."""

    points: np.ndarray
    radius: float
    add: bool = True

    @classmethod
    def parse(cls, raw: dict, index: int = 0) -> Stroke:
        """A stroke from ``{"points": [[x, y], ...], "radius": r, "add": bool}`` (the
        page's JSON); ValueError naming stroke ``index`` and what is wrong with it."""
        try:
            points = np.asarray(raw["points"], np.float64).reshape(-1, 2)
            radius = float(raw["radius"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"stroke {index}: expected points [[x, y], ...], a radius and add, got {raw!r}"
            ) from None
        if len(points) == 0 or not np.isfinite(points).all():
            raise ValueError(f"stroke {index}: expected at least one point of finite numbers")
        if not 0.5 <= radius <= MAX_RADIUS:
            raise ValueError(f"stroke {index}: radius {radius:g} px is outside 0.5-{MAX_RADIUS} px")
        return cls(points.astype(np.float32), radius, bool(raw.get("add", True)))

    def to_json(self) -> dict:
        return {"points": self.points.round(1).tolist(), "radius": self.radius, "add": self.add}


def stroke_area(stroke: Stroke, shape: tuple[int, int]) -> np.ndarray:
    """``bool[H, W]``: the pixels ``stroke`` covers in an image of ``shape``."""
    canvas = np.zeros(shape, np.uint8)
    r = max(int(round(stroke.radius)), 0)
    for x, y in np.unique(np.round(_swept(stroke.points)).astype(np.int64), axis=0):
        cv2.circle(canvas, (int(x), int(y)), r, 1, thickness=-1)
    return canvas.astype(bool)


def _swept(points: np.ndarray) -> np.ndarray:
    """``points`` and the points between each consecutive pair, a pixel apart."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.ceil(np.abs(b - a).max()))
        out.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / max(n, 1)))
    return np.concatenate(out)


def apply_strokes(mask: np.ndarray, strokes: Iterable[Stroke]) -> np.ndarray:
    """``mask bool[H, W]`` with ``strokes`` painted in order (a new array). A stroke that
    covers no pixel of the image raises ValueError naming it."""
    out = np.asarray(mask, bool).copy()
    h, w = out.shape
    for i, stroke in enumerate(strokes):
        far = 2 * max(h, w) + stroke.radius  # beyond this a stroke is a mistake, not an edge
        if (np.asarray(stroke.points) < -far).any() or (np.asarray(stroke.points) > far + max(h, w)).any():
            raise ValueError(f"stroke {i} reaches far outside the {w} x {h} image")
        area = stroke_area(stroke, out.shape)
        if not area.any():
            raise ValueError(f"stroke {i} lies outside the {w} x {h} image")
        out[area] = stroke.add
    return out


__all__ = ["MAX_RADIUS", "Stroke", "apply_strokes", "stroke_area"]
