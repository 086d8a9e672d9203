"""Box-to-mask zoomed in on small objects of a small image (issue 54, item 2).

SAM brings the whole image to its 1024 px input and sees it through a 64 x 64 embedding, so
a 20 px object of a 700 px image spans under two cells of it. For a small box, SAM is
prompted instead on a window around it (:func:`fewclick.predict.windows.mask_window`, at
least :data:`ZOOM_SIDE` px a side and twice the box), which the encoder brings to its
1024 px input: the object is magnified as a large image's objects are.

The rule, chosen object by object on the train parts of coco_tiny and dsb2018
(``benchmarks/window_masks.py``, ``docs/benchmarks/window_sizes.md``): zoom when the
square root of the box's area is under :data:`ZOOM_BELOW` (+0.045 mIoU under 32 px and
+0.034 at 32-96 px on coco_tiny's train part, windows of 256 px); keep the whole image for
larger boxes, where no window won. When the window would be the whole image, the whole
image serves. A click that starts a mask has no box: SAM answers it on the whole image,
and a corrective click after it frames the mask it corrects as a box would
(:func:`framing_box`), so a small object's mask is zoomed from then on.

A window's embedding is encoded once and cached under its key
(:meth:`fewclick.predict.windows.Window.key`); windows lie on a grid of an eighth of their
side, so the boxes of one neighbourhood share one.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from fewclick.predict.segment_api import MaskPrediction
from fewclick.predict.windows import Window, WindowedMasks, mask_window, sam_window_embedding
from fewclick.types import Clicks, mask_box

#: zoom for a box whose square root of area is under this (px; COCO's medium objects' top)
ZOOM_BELOW = 96.0
#: the least side of a zoom window (px): a 24 px box spans 96 px of SAM's input
ZOOM_SIDE = 256


def zoom_window(box: Any, width: int, height: int) -> Window | None:
    """The window SAM is prompted on for ``box`` (XYXY) in a ``width x height`` image, or
    None when the whole image serves (a large box, or a window that is the whole image)."""
    if box is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
    if x1 <= x0 or y1 <= y0 or math.sqrt((x1 - x0) * (y1 - y0)) >= ZOOM_BELOW:
        return None
    window = mask_window((x0, y0, x1, y1), width, height, ZOOM_SIDE)
    if window.size == (height, width):
        return None
    return window


def framing_box(shown: MaskPrediction, clicks: list, size: tuple[int, int], earlier=None) -> list | None:
    """The box a corrective click after a click start prompts SAM with, as if the person had
    dragged it, so that a small object's mask comes from its zoom window as a box's does:
    the tight box of the mask ``shown`` (the candidate the click corrects, in the frame its
    ``offset`` names), joined with the box an ``earlier`` click framed and grown to hold each
    positive click of ``clicks`` ``[x, y, positive]`` (a negative one says what lies
    outside). None when that box is too large to zoom (:func:`zoom_window`: the clicks alone
    prompt SAM, with its previous mask, as before) or there is none; ``size``: the image's
    (height, width)."""
    boxes = [] if earlier is None else [np.asarray(earlier, np.float32)]
    tight = mask_box(shown.mask)
    if tight is not None:
        dx, dy = shown.offset or (0, 0)
        boxes.append(tight + np.float32([dx, dy, dx, dy]))
    if not boxes:
        return None
    for x, y, positive in clicks:
        if positive:  # the pixel clicked
            boxes.append(np.float32([math.floor(x), math.floor(y), math.floor(x) + 1, math.floor(y) + 1]))
    stacked = np.stack(boxes)
    box = [*map(float, stacked[:, :2].min(0)), *map(float, stacked[:, 2:].max(0))]
    return box if zoom_window(box, size[1], size[0]) is not None else None


class ZoomedSam:
    """A :class:`~fewclick.predict.sam.SamPredictor` prompted on a zoom window for a small
    box (:func:`zoom_window`), on the whole image otherwise (the :class:`SegmentPredictor`
    protocol). ``full``: masks come back image-sized (as the protocols score them); else a
    window's mask comes with its ``offset`` (as the app sends it). ``key`` names the image
    whose window embeddings are cached under it (default: a digest of its pixels)."""

    name = "sam_zoom"

    def __init__(self, sam, full: bool = True) -> None:
        self.sam, self.full = sam, full
        self.encoder = sam.encoder
        self._image: np.ndarray | None = None
        self._key: str | None = None
        self._whole = None  # the whole image's embedding, set again after a window's
        self._on_whole = False
        self._windows = WindowedMasks(
            sam, self._show, level0=True, shown=self._shown_window, min_side=ZOOM_SIDE
        )
        self._current: str | None = None  # the window key whose embedding the SAM holds

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        from fewclick.io.images import to_rgb8
        from fewclick.predict.encoder import pixel_key

        image = to_rgb8(np.asarray(image), name="image")
        self._image, self._key = image, key or pixel_key(image)
        self._whole = self.encoder.encode(image, key=key)
        self.sam.set_embedding(self._whole)
        self._on_whole, self._current = True, None
        h, w = image.shape[:2]
        self._windows.set_image(self._key, w, h, self._read)

    def set_embedding(self, embedding, image: np.ndarray, key: str) -> None:
        """The whole image's embedding computed elsewhere (the app's cache), with the image
        and its key for the windows."""
        self._image, self._key, self._whole = image, key, embedding
        self.sam.set_embedding(embedding)
        self._on_whole, self._current = True, None
        h, w = image.shape[:2]
        self._windows.set_image(key, w, h, self._read)

    def window_for(self, box: Any) -> Window | None:
        h, w = self._image.shape[:2]
        return zoom_window(box, w, h)

    def predict(
        self, box: Any = None, clicks: Clicks | None = None, previous: Any = None, **options
    ) -> MaskPrediction:
        if self._image is None:
            raise ValueError("no image: call set_image first")
        window = self.window_for(box)
        if window is not None and not window.holds(clicks):
            window, previous = None, None  # a click outside the window: the whole image serves
        if window is None:
            if not self._on_whole:
                self.sam.set_embedding(self._whole)
                self._on_whole, self._current = True, None
            return self.sam.predict(box, clicks, previous, **options)
        pred = self._windows.predict(box, clicks, previous, **options)
        return image_sized(pred, self._image.shape[:2]) if self.full else pred

    def _read(self, window: Window) -> np.ndarray:
        return self._image[window.y0 : window.y1, window.x0 : window.x1]

    def _show(self, pixels: np.ndarray, window: Window, image: str) -> None:
        self.sam.set_embedding(sam_window_embedding(self.encoder, pixels, window, image))
        self._on_whole, self._current = False, window.key(image)

    def _shown_window(self, window: Window, image: str) -> bool:
        return not self._on_whole and self._current == window.key(image)


def image_sized(pred: MaskPrediction, size: tuple[int, int]) -> MaskPrediction:
    """A window's ``pred`` (and its candidates) as image-sized masks without an offset."""

    def paste(p: MaskPrediction) -> MaskPrediction:
        if p.offset is None:
            return p
        (x, y), (h, w) = p.offset, p.mask.shape
        mask = np.zeros(size, bool)
        mask[y : y + h, x : x + w] = p.mask
        return replace(p, mask=mask, offset=None, candidates=[])

    out = paste(pred)
    if pred.candidates:
        out.candidates = [out, *(paste(c) for c in pred.candidates[1:])]
    return out


__all__ = ["ZOOM_BELOW", "ZOOM_SIDE", "ZoomedSam", "framing_box", "image_sized", "zoom_window"]
