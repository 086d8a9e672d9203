"""Image tiles for large images: a pyramid of 512 px JPEG tiles, cached on disk.

Level 0 is full resolution, level L is downscaled by 2^L, and the top level fits the whole
image in one tile. Tiles are made a level at a time from the level below (OpenCV's area
interpolation), written under ``<cache>/<image id>/<level>/<col>_<row>.jpg``; ``prepare``
makes the whole pyramid ahead (the app queues it when a large image is added, and one
background thread makes the queued pyramids one at a time), so the first tile a viewer asks
for is a file read.

An image is served only within the limits :func:`check_size` states: no side over
``MAX_ASPECT_RATIO`` times the other, no more than ``MAX_TILES`` tiles in its pyramid.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from fewclick.io.images import load_image

logger = logging.getLogger(__name__)

TILE = 512
LARGE = 2048  # images with a side above this are served as tiles
MAX_ASPECT_RATIO = 100  # the long side at most this many times the short one
MAX_TILES = 8192  # tiles in a whole pyramid (a 20,000 x 20,000 image has 2,139)
_LOCKS: dict[int, threading.Lock] = {}
_GUARD = threading.Lock()
_QUEUE: queue.Queue = queue.Queue()
_MAKER: list[threading.Thread] = []  # the one thread that makes queued pyramids, once started


def is_large(width: int, height: int) -> bool:
    return max(width, height) > LARGE


def check_size(width: int, height: int) -> None:
    """A ValueError naming the size and the limit when an image of ``width x height`` is too
    elongated or would make too many tiles to serve."""
    if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
        raise ValueError(
            f"a {width} x {height} image is more elongated than the limit of {MAX_ASPECT_RATIO}:1"
        )
    n = tile_count(width, height)
    if is_large(width, height) and n > MAX_TILES:
        raise ValueError(f"a {width} x {height} image makes {n:,} tiles, over the limit of {MAX_TILES:,}")


def tile_count(width: int, height: int) -> int:
    """How many tiles the whole pyramid of a ``width x height`` image has."""
    sizes = info(width, height)["sizes"]
    return sum(math.ceil(w / TILE) * math.ceil(h / TILE) for w, h in sizes)


def levels(width: int, height: int) -> int:
    """Number of pyramid levels: the top one holds the whole image in one tile."""
    return max(1, math.ceil(math.log2(max(width, height, 1) / TILE)) + 1)


def info(width: int, height: int) -> dict:
    n = levels(width, height)
    return {
        "tile": TILE,
        "levels": n,
        "sizes": [[math.ceil(width / 2**lv), math.ceil(height / 2**lv)] for lv in range(n)],
    }


def _lock(image_id: int) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(image_id, threading.Lock())


def tile_path(cache: Path, image_id: int, level: int, col: int, row: int) -> Path:
    return cache / str(image_id) / str(level) / f"{col}_{row}.jpg"


def prepare(cache: Path, image_id: int, path: str, width: int, height: int) -> None:
    """Write every tile of every level, the coarsest level first (so a viewer gets its
    overview while the finer levels are still being written). Skipped when done already."""
    levels_n = levels(width, height)
    if _done(cache, image_id).is_file():
        return
    with _lock(image_id):
        if _done(cache, image_id).is_file():
            return
        written = _overview(cache, image_id, path, levels_n)
        pyramid = [cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR)]
        for _ in range(1, levels_n - written):
            pyramid.append(_half(pyramid[-1]))
        for level in reversed(range(len(pyramid))):
            _write_level(cache, image_id, level, pyramid[level])
        _done(cache, image_id).write_text("done")


def prepare_later(cache: Path, image_id: int, path: str, width: int, height: int) -> None:
    """Queue :func:`prepare` for the background thread, which makes one pyramid at a time
    (so that many large images added at once do not decode all at once)."""
    _QUEUE.put((cache, image_id, path, width, height))
    with _GUARD:
        if not _MAKER:
            _MAKER.append(threading.Thread(target=_make_queued, name="tiles", daemon=True))
            _MAKER[0].start()


def _make_queued() -> None:
    while True:
        args = _QUEUE.get()
        try:
            prepare(*args)
        except Exception:  # the thread serves every later image: a file gone or unreadable
            logger.exception("tiles of image %s not made", args[1])  # fails again on request
        finally:
            _QUEUE.task_done()


def _half(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    return cv2.resize(
        pixels, (max(1, math.ceil(w / 2)), max(1, math.ceil(h / 2))), interpolation=cv2.INTER_AREA
    )


def _overview(cache: Path, image_id: int, path: str, levels_n: int) -> int:
    """Write the coarse levels of a large JPEG from a reduced decode (libjpeg's 1/8 scale,
    a fraction of a full decode), so the first tiles come fast; returns how many levels
    (from the top) were written, 0 for other files."""
    from PIL import Image as PILImage

    if levels_n <= 4:
        return 0
    with PILImage.open(path) as img:
        if img.format != "JPEG":
            return 0
        width, height = img.size
        img.draft("RGB", (width // 8, height // 8))
        pixels = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)
    size = (math.ceil(width / 8), math.ceil(height / 8))  # level 3
    if pixels.shape[1::-1] != size:
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    levels = {3: pixels}
    for level in range(4, levels_n):
        levels[level] = _half(levels[level - 1])
    for level in reversed(range(3, levels_n)):
        _write_level(cache, image_id, level, levels[level])
    return levels_n - 3


def _done(cache: Path, image_id: int) -> Path:
    return cache / str(image_id) / "complete"


def _write_level(cache: Path, image_id: int, level: int, pixels: np.ndarray) -> None:
    folder = cache / str(image_id) / str(level)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = pixels.shape[:2]
    for row in range(math.ceil(h / TILE)):
        for col in range(math.ceil(w / TILE)):
            part = pixels[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE]
            target = folder / f"{col}_{row}.jpg"
            tmp = target.with_suffix(".tmp")
            ok, data = cv2.imencode(".jpg", part, [cv2.IMWRITE_JPEG_QUALITY, 88])
            if not ok:
                raise ValueError(f"cannot encode tile {level}/{col}/{row} of image {image_id}")
            tmp.write_bytes(data.tobytes())
            tmp.replace(target)


def get_tile(
    cache: Path, image_id: int, path: str, width: int, height: int, level: int, col: int, row: int
) -> Path:
    """The tile file, made first when the pyramid is not ready; ValueError for a tile
    outside the pyramid."""
    n = levels(width, height)
    if not 0 <= level < n:
        raise ValueError(f"tile level {level} is outside 0..{n - 1}")
    w, h = math.ceil(width / 2**level), math.ceil(height / 2**level)
    cols, rows = math.ceil(w / TILE), math.ceil(h / TILE)
    if not (0 <= col < cols and 0 <= row < rows):
        raise ValueError(f"tile ({col}, {row}) is outside level {level} ({cols} x {rows} tiles)")
    target = tile_path(cache, image_id, level, col, row)
    if target.is_file():
        return target
    lock = _lock(image_id)
    if lock.locked():  # being written: wait for this tile rather than for the whole pyramid
        deadline = time.monotonic() + 120
        while lock.locked() and not target.is_file() and time.monotonic() < deadline:
            time.sleep(0.02)
        if target.is_file():
            return target
    prepare(cache, image_id, path, width, height)
    return target


def browser_copy(cache: Path, image_id: int, path: str) -> Path:
    """A PNG of an image in a format browsers do not show (TIFF, 16-bit, ...), made once."""
    target = cache / str(image_id) / "full.png"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.png")
        cv2.imwrite(str(tmp), cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR))
        tmp.replace(target)
    return target
