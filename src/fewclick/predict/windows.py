"""Box-to-mask on a window of a large image, at full resolution.

A large image (a GeoTIFF, a slide) is never encoded or held whole: a 64 x 35 px truck in a
16,000 px scene would be 4 x 2 px of a 1024 px encoding. Box-to-mask instead reads a window
around the box, with context, from the file's pyramid (:class:`fewclick.io.regions.RegionImage`)
and runs the mask backend on that window, as the crop protocol does for small images:

- the window is ``MIN_SIDE`` px a side, or the box's longer side times ``CONTEXT`` when that
  is more; it is read at full resolution up to ``WINDOW`` px a side, and a larger one at
  the level that brings it to ``WINDOW`` px. The encoder brings every window to its 1024 px
  input, so a small object is magnified as in a small image: on 40 nuclei of dsb2018 and 40
  objects of iSAID (not the benchmark's), SAM's mIoU from the box was 0.748 / 0.848 with
  1024 px windows, 0.816 / 0.874 with 512, 0.830 / (not run) with 384 and 0.830 / 0.875
  with 256 (``benchmarks/large.py``'s mosaics); and object by object against the whole
  image, as a small image is encoded (``benchmarks/window_masks.py``, 300 objects each of
  the train parts of dota_samples and isaid_samples): 384 px windows gave +0.040 and
  +0.064 mIoU, with DOTA's boxes under 32 px the exception (-0.064 on 16 objects);
- it is placed on a grid of an eighth of its side, so that the boxes of one neighbourhood
  share a window (and its embedding, kept on disk under the window's key) and every box
  keeps at least an eighth of the window as context on each side;
- prompts move into the window and the mask comes back as the window's with its
  ``offset``; :func:`fewclick.io.rle.window_to_rle` numbers it in the image without ever
  making the image-sized mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fewclick.predict.segment_api import MaskPrediction
from fewclick.types import Clicks

#: the most pixels a side read from a window (SAM's input side): a larger window is read coarser
WINDOW = 1024
#: the least side of a window, in level-0 pixels (see the module's text for the choice)
MIN_SIDE = 384
#: the window's side is at least this many times the box's longer side
CONTEXT = 2.0
#: the longest box side box-to-mask takes on a large image: its window is then 2048 px, read
#: at half resolution, and each mask (SAM's are the window's level-0 size) 4 MB
MAX_BOX_SIDE = 1024
#: windows snap to a grid of this share of their side
GRID = 8


@dataclass(frozen=True)
class Window:
    """``x0, y0, x1, y1`` in level-0 pixels (clipped to the image) and ``scale``, the
    pixels read per level-0 pixel (1: full resolution)."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @property
    def offset(self) -> tuple[int, int]:
        return self.x0, self.y0

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in level-0 pixels."""
        return self.y1 - self.y0, self.x1 - self.x0

    def holds(self, clicks: Clicks | None) -> bool:
        """Whether every click of ``clicks`` is inside the window (none: it holds them)."""
        if clicks is None or not len(clicks):
            return True
        xy = np.asarray(clicks.xy, np.float32).reshape(-1, 2)
        lo, hi = np.float32([self.x0, self.y0]), np.float32([self.x1, self.y1])
        return bool(((xy >= lo) & (xy < hi)).all())

    def key(self, image_key: str) -> str:
        """The window's embedding key under its image's."""
        return f"{image_key}@{self.x0}_{self.y0}_{self.x1}_{self.y1}_{self.scale:.4f}"


def mask_window(
    box: Any, width: int, height: int, min_side: int = MIN_SIDE, grid: int | None = GRID
) -> Window:
    """The window box-to-mask reads for ``box`` (XYXY, level-0 pixels) in a ``width x
    height`` image, at least ``min_side`` px a side, on a grid of ``1 / grid`` of its side
    (None: centred on the box, to the pixel). ValueError for a box outside the image or
    over :data:`MAX_BOX_SIDE`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {[x0, y0, x1, y1]} is not inside the {width} x {height} image")
    longest = max(x1 - x0, y1 - y0)
    if longest > MAX_BOX_SIDE:
        raise ValueError(
            f"box of {longest:.0f} px a side: box-to-mask on a large image takes boxes up to "
            f"{MAX_BOX_SIDE} px (draw the object's parts, or a polygon)"
        )
    side = max(min_side, GRID * math.ceil(CONTEXT * longest / GRID))
    step = 1 if grid is None else max(1, side // grid)
    placed = []
    for centre, extent in (((x0 + x1) / 2, width), ((y0 + y1) / 2, height)):
        span = min(side, extent)
        start = math.floor((centre - side / 2) / step) * step
        placed.append((min(max(start, 0), extent - span), span))
    (wx, ww), (wy, wh) = placed
    return Window(wx, wy, wx + ww, wy + wh, min(1.0, WINDOW / side))


#: a click-to-detect window's side: one encoder input at full resolution
DETECT_SIDE = 1024
#: click-to-detect windows lie on a grid of this step, so that they overlap by half
DETECT_STEP = 512
#: the most windows one click-to-detect request detects on (the last clicks' windows)
MAX_DETECT_WINDOWS = 16


def detect_window(x: float, y: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The click-to-detect window (x0, y0, x1, y1) of a click at (x, y) in a large image:
    the grid window whose centre is nearest, so that the click lies at least a quarter of
    the window from its sides (but at the image's edges), and the clicks of one neighbourhood
    share it (and its embedding)."""
    out = []
    for v, extent in ((x, width), (y, height)):
        side = min(DETECT_SIDE, extent)
        start = round((v - DETECT_SIDE / 2) / DETECT_STEP) * DETECT_STEP
        start = min(max(start, 0), extent - side)
        out += [start, start + side]
    return out[0], out[2], out[1], out[3]


#: the look-alikes sweep's windows (:func:`sweep_windows`) overlap by this many pixels, so that
#: an object up to this size lies whole in one of them
SWEEP_OVERLAP = 128


def sweep_windows(
    width: int, height: int, view: tuple[float, float, float, float] | None = None
) -> list[tuple[int, int, int, int]]:
    """The windows (x0, y0, x1, y1) that cover a large image for the look-alikes sweep:
    :data:`DETECT_SIDE` px at full resolution, overlapping by :data:`SWEEP_OVERLAP`. Those
    meeting ``view`` (the part of the image on the person's screen) come first, then the
    rest by distance from its centre (the image's when no view is given)."""
    from fewclick.io.tiling import tile_grid

    grid = [(t.x0, t.y0, t.x1, t.y1) for t in tile_grid(width, height, DETECT_SIDE, SWEEP_OVERLAP)]
    vx0, vy0, vx1, vy1 = view if view is not None else (0, 0, width, height)
    cx, cy = (vx0 + vx1) / 2, (vy0 + vy1) / 2

    def order(w):
        meets = w[0] < vx1 and vx0 < w[2] and w[1] < vy1 and vy0 < w[3]
        return (not meets, math.hypot((w[0] + w[2]) / 2 - cx, (w[1] + w[3]) / 2 - cy))

    return sorted(grid, key=order)


def sweep_cores(
    width: int, height: int
) -> dict[tuple[int, int, int, int], tuple[float, float, float, float]]:
    """Each sweep window's core (x0, y0, x1, y1): what it owns of the image, up to the middle
    of its overlaps with its neighbours (:func:`fewclick.io.tiling.window_cores`)."""
    from fewclick.io.tiling import tile_grid, window_cores

    grid = tile_grid(width, height, DETECT_SIDE, SWEEP_OVERLAP)
    xs, ys = sorted({t.x0 for t in grid}), sorted({t.y0 for t in grid})
    x_cores = dict(zip(xs, window_cores(xs, width, DETECT_SIDE), strict=True))
    y_cores = dict(zip(ys, window_cores(ys, height, DETECT_SIDE), strict=True))
    return {
        (t.x0, t.y0, t.x1, t.y1): (x_cores[t.x0][0], y_cores[t.y0][0], x_cores[t.x0][1], y_cores[t.y0][1])
        for t in grid
    }


#: full-image mode on a large image: the most pixels a side of the window its prompts span
FULL_WINDOW = 2048
#: context around the prompts' extent in that window
FULL_MARGIN = 64


def fullimage_window(points, width: int, height: int) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) full-image mode segments on a large image: the extent of
    every region's extreme points and scribbles (``points`` ``[[x, y], ...]``) with
    :data:`FULL_MARGIN` px around it, clipped to the image. ValueError when it is over
    :data:`FULL_WINDOW` px a side (its label map would be the size of a large image)."""
    xy = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(xy):
        raise ValueError("full-image mode needs at least one region's points")
    lo, hi = xy.min(0) - FULL_MARGIN, xy.max(0) + FULL_MARGIN
    x0, y0 = max(0, math.floor(lo[0])), max(0, math.floor(lo[1]))
    x1, y1 = min(width, math.ceil(hi[0]) + 1), min(height, math.ceil(hi[1]) + 1)
    if max(x1 - x0, y1 - y0) > FULL_WINDOW:
        raise ValueError(
            f"on a large image, full-image mode segments a window of at most {FULL_WINDOW} px a side; "
            f"these regions span {x1 - x0} x {y1 - y0} px: zoom in and mark the regions of one part at a time"
        )
    return x0, y0, x1, y1


class WindowedMasks:
    """A mask backend run on windows of a large image (the :class:`SegmentPredictor`
    ``predict`` call). ``read(window)`` gives the window's ``uint8[h, w, 3]`` pixels at its
    scale; ``show(pixels, window, name)`` hands them to the backend (``name``: the image's, see
    :meth:`set_image`). ``level0`` says the backend
    takes prompts and gives masks in the window's level-0 pixels (SAM, whose window
    embedding is sized so); otherwise prompts are scaled to the pixels read and the mask
    scaled back. ``shown(window, name)``, when given, says whether the backend still holds
    that window (a backend shared with other work may have been given another image).
    ``min_side`` and ``grid``: the least window side and its grid (:func:`mask_window`)."""

    def __init__(
        self,
        backend,
        show,
        level0: bool = False,
        shown=None,
        min_side: int = MIN_SIDE,
        grid: int | None = GRID,
    ) -> None:
        self.backend, self._show, self._level0, self._shown = backend, show, level0, shown
        self.min_side, self.grid = min_side, grid
        self.image: str | None = None
        self.width = self.height = 0
        self._read = None
        self.window: Window | None = None

    def set_image(self, name: str, width: int, height: int, read) -> None:
        """Work on the image ``name`` (unique per image and file: SAM's window embeddings are
        kept under it) of ``width x height`` level-0 pixels, whose windows
        ``read(window)`` gives (a new image: no window is shown yet)."""
        if name != self.image:
            self.image, self.width, self.height, self._read = name, int(width), int(height), read
            self.window = None

    def predict(
        self, box: Any, clicks: Clicks | None = None, previous: Any = None, **options
    ) -> MaskPrediction:
        """The backend's mask for ``box`` and ``clicks`` (level-0 pixels) as the window's
        ``bool[h, w]`` with its ``offset``; the window follows the box (one box, one window,
        so ``previous`` stays the window's). A click outside the window is a ValueError."""
        window = mask_window(box, self.width, self.height, self.min_side, self.grid)
        if window != self.window or (self._shown is not None and not self._shown(window, self.image)):
            self._show(self._read(window), window, self.image)
            self.window = window
        x, y = window.offset
        moved = None
        if clicks is not None and len(clicks):
            xy = np.asarray(clicks.xy, np.float32)
            lo, hi = np.float32([window.x0, window.y0]), np.float32([window.x1, window.y1])
            outside = ((xy < lo) | (xy >= hi)).any(1)
            if outside.any():
                i = int(np.argmax(outside))
                raise ValueError(
                    f"click {i} at ({xy[i, 0]:.0f}, {xy[i, 1]:.0f}) is outside the window "
                    f"{[window.x0, window.y0, window.x1, window.y1]} read around the box: click on the object"
                )
            moved = replace(clicks, xy=xy - np.float32([x, y]))
        inside = np.asarray(box, np.float32) - np.float32([x, y, x, y])
        k = 1.0 if self._level0 else window.scale
        if k != 1.0:
            inside = inside * k
            moved = None if moved is None else replace(moved, xy=moved.xy * k)
        pred = self.backend.predict(inside, moved, previous, **options)
        return _placed(pred, window)


def _placed(pred: MaskPrediction, window: Window) -> MaskPrediction:
    """``pred`` (and its candidates) as masks of ``window``: its level-0 size, its offset."""

    def place(p: MaskPrediction) -> MaskPrediction:
        mask = p.mask
        h, w = window.size
        if mask.shape != (h, w):  # read coarser than level 0: nearest, back to the window's size
            import cv2

            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return replace(p, mask=mask, offset=window.offset, candidates=[])

    out = place(pred)
    if pred.candidates:
        out.candidates = [out, *(place(c) for c in pred.candidates[1:])]
    return out


def sam_window_embedding(encoder, pixels: np.ndarray, window: Window, image_key: str):
    """SAM's embedding of a window (encoded once, cached under :meth:`Window.key`), sized as
    the window's level-0 pixels so that prompts and masks are in them."""
    from fewclick.predict.encoder import INPUT_SIZE

    e = encoder.encode(pixels, key=window.key(image_key))
    h, w = window.size
    return replace(e, image_size=(h, w), scale=INPUT_SIZE / max(h, w))


__all__ = [
    "FULL_WINDOW",
    "fullimage_window",
    "CONTEXT",
    "DETECT_SIDE",
    "DETECT_STEP",
    "MAX_DETECT_WINDOWS",
    "detect_window",
    "SWEEP_OVERLAP",
    "sweep_cores",
    "sweep_windows",
    "MIN_SIDE",
    "MAX_BOX_SIDE",
    "WINDOW",
    "Window",
    "WindowedMasks",
    "mask_window",
    "sam_window_embedding",
]
