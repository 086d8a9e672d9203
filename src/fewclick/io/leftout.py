"""What a writer could not keep, counted: one message per reason, naming the first images.

A format that cannot hold some geometry (YOLO has no points, VOC no masks, ...) leaves
those objects out; a writer adds each one here and returns :meth:`LeftOut.report`, so an
export says "12 object(s) left out: points (YOLO detection holds boxes)" instead of
dropping them silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.io.parsing import warn
from fewclick.types import Objects

__all__ = ["LeftOut", "geometry_of", "object_scores"]

_ONLY = {"point": "points only", "none": "objects without geometry"}


class LeftOut:
    """Counts of objects (or parts of objects) a writer left out, by reason and image."""

    def __init__(self, format: str) -> None:
        self.format = format
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, reason: str, image: str, n: int = 1) -> None:
        if n:
            per_image = self.counts.setdefault(reason, {})
            per_image[image] = per_image.get(image, 0) + n

    def writable(self, objs: Objects, i: int, image: str, name: str, holds: str) -> str | None:
        """Object ``i``'s geometry (:func:`geometry_of`), or None after counting it as left
        out: a crowd region (``name`` has no crowd flag) or an object with only a point or
        nothing (``name`` ``holds`` boxes, say)."""
        if objs.ignore[i]:
            self.add(f"left out: crowd regions ({name} has no crowd flag)", image)
            return None
        geometry = geometry_of(objs, i)
        if geometry in _ONLY:
            self.add(f"left out: {_ONLY[geometry]} ({holds})", image)
            return None
        return geometry

    def report(self, where: Path | str) -> list[str]:
        """One message per reason (also warned); ``[]`` when nothing was left out."""
        messages = []
        for reason, per_image in self.counts.items():
            first = ", ".join(f"{name} ({n})" for name, n in list(per_image.items())[:5])
            more = f" and {len(per_image) - 5} more images" if len(per_image) > 5 else ""
            messages.append(
                f"{where}: {self.format}: {reason}: {sum(per_image.values())} object(s), in {first}{more}"
            )
        for message in messages:
            warn(message)
        return messages


def geometry_of(objs: Objects, i: int) -> str:
    """The richest geometry object ``i`` has: ``"mask"`` (an RLE), ``"polygon"``,
    ``"rbox"``, ``"box"``, ``"point"`` or ``"none"``."""
    seg = None if objs.segmentations is None else objs.segmentations[i]
    if isinstance(seg, dict):
        return "mask"
    if seg:
        return "polygon"
    if objs.rboxes is not None and np.isfinite(objs.rboxes[i]).all():
        return "rbox"
    if np.isfinite(objs.boxes[i]).all():
        return "box"
    if objs.points is not None and np.isfinite(objs.points[i]).all():
        return "point"
    return "none"


def object_scores(objs: Objects) -> np.ndarray | None:
    """``float32[N]`` scores (NaN where an object has none), or None when none has one.
    Readers of scored files (predictions) put them in ``extra["scores"]``."""
    scores = objs.extra.get("scores")
    if scores is None:
        return None
    scores = np.asarray(scores, np.float32).reshape(-1)
    if len(scores) != len(objs):
        raise ValueError(f"expected one score per object ({len(objs)}), got {len(scores)}")
    return None if np.isnan(scores).all() else scores
