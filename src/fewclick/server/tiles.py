"""Image tiles for large images: a pyramid of 512 px JPEG tiles, cached on disk.

Level 0 is full resolution, level L is downscaled by 2^L, and the top level fits the whole
image in one tile. Tiles are written under ``<cache>/<image id>/<level>/<col>_<row>.jpg``.

- A TIFF read by regions (:mod:`fewclick.io.regions`: tiled TIFF, GeoTIFF, OME-TIFF, SVS)
  is never decoded whole: each tile is read from the file's own pyramid level nearest above
  it, when it is first asked for; ``prepare`` writes only the coarse levels ahead (those of
  at most :data:`AHEAD_TILES` tiles), so the overview is a file read.
- Any other image (a large PNG or JPEG) is converted once, streaming, into a tiled
  pyramidal TIFF in the cache (:func:`fewclick.io.regions.convert_to_pyramid`), and read by
  regions from there; a large JPEG's coarse levels come first from a reduced decode.

The app queues ``prepare`` when a large image is added, and one background thread makes the
queued pyramids one at a time. A file that changes on disk after its tiles were made (its
size or modification time) has its tiles dropped at the next request, and made again.

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
from fewclick.io.regions import cached_regions, convert_to_pyramid

logger = logging.getLogger(__name__)

TILE = 512
LARGE = 2048  # images with a side above this are served as tiles
MAX_ASPECT_RATIO = 100  # the long side at most this many times the short one
MAX_TILES = 8192  # tiles in a whole pyramid (a 20,000 x 20,000 image has 2,139)
AHEAD_TILES = 16  # read by regions: levels of at most this many tiles are made ahead
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
    """Make the image readable by regions and write its coarse levels (the overview); skipped
    when done already. A file that is not a TIFF read by regions is converted once, streaming,
    into ``<cache>/<image id>/pyramid.tif`` (a large JPEG's overview comes first, from a
    reduced decode, so a viewer has it while the conversion runs)."""
    _drop_if_changed(cache, image_id, path)
    if _done(cache, image_id).is_file():
        return
    with _lock(image_id):
        if _done(cache, image_id).is_file():
            return
        regions = cached_regions(path)
        if regions is None:
            _overview(cache, image_id, path, levels(width, height))
            said = _Progress(image_id)
            regions = cached_regions(convert_to_pyramid(path, _pyramid(cache, image_id), said))
        _coarse_levels(cache, image_id, regions)
        _done(cache, image_id).write_text("done")


class _Progress:
    """Logs a conversion's progress every 10%."""

    def __init__(self, image_id: int) -> None:
        self.image_id, self.said = image_id, -10

    def __call__(self, percent: int) -> None:
        if percent >= self.said + 10:
            self.said = percent - percent % 10
            logger.info("image %s: tiled pyramid %d%% written", self.image_id, percent)


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


def _drop_if_changed(cache: Path, image_id: int, path: str) -> None:
    """Drop the image's tiles when its file changed since they were made (its size or its
    modification time), and stamp the folder with the file as it is now."""
    import shutil

    stat = Path(path).stat()
    now = f"{stat.st_size} {stat.st_mtime_ns}"
    stamp = cache / str(image_id) / "file"
    if stamp.is_file() and stamp.read_text() == now:
        return
    with _lock(image_id):
        if stamp.is_file() and stamp.read_text() != now:
            logger.warning(
                "image %s changed on disk since its tiles were made: they are made again", image_id
            )
            shutil.rmtree(cache / str(image_id), ignore_errors=True)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(now)


def _coarse_levels(cache: Path, image_id: int, regions) -> None:
    """Every tile of the levels of at most :data:`AHEAD_TILES` tiles: the finest of them read
    by regions once (from the file's own coarser level when it stores one, else from every
    block of level 0, decoded on every core), the coarser ones halved from it in memory (at
    most 2048 x 2048 pixels), so that a file without overviews is decoded once, not once a level."""
    ahead = _ahead_levels(regions.width, regions.height)
    if not ahead:
        return
    finest = ahead[0]
    if all(_level_done(cache, image_id, regions, level) for level in ahead):
        return
    pixels = regions.read((0, 0, regions.width, regions.height), 1 / 2**finest)
    for level in ahead:
        if level > finest:
            pixels = _half(pixels)
        _write_level(cache, image_id, level, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))


def _ahead_levels(width: int, height: int) -> list[int]:
    """The levels of at most :data:`AHEAD_TILES` tiles, finest first."""
    sizes = info(width, height)["sizes"]
    return [
        level
        for level in range(len(sizes))
        if math.ceil(sizes[level][0] / TILE) * math.ceil(sizes[level][1] / TILE) <= AHEAD_TILES
    ]


def _level_done(cache: Path, image_id: int, regions, level: int) -> bool:
    w, h = math.ceil(regions.width / 2**level), math.ceil(regions.height / 2**level)
    return all(
        tile_path(cache, image_id, level, col, row).is_file()
        for row in range(math.ceil(h / TILE))
        for col in range(math.ceil(w / TILE))
    )


def _region_tile(cache: Path, image_id: int, regions, level: int, col: int, row: int) -> Path:
    """One tile read from the file by regions and written to the cache."""
    span = TILE * 2**level
    box = (col * span, row * span, (col + 1) * span, (row + 1) * span)
    pixels = regions.read(box, 1 / 2**level)
    target = tile_path(cache, image_id, level, col, row)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_tile(target, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), f"{level}/{col}/{row} of image {image_id}")
    return target


def _write_level(cache: Path, image_id: int, level: int, pixels: np.ndarray) -> None:
    folder = cache / str(image_id) / str(level)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = pixels.shape[:2]
    for row in range(math.ceil(h / TILE)):
        for col in range(math.ceil(w / TILE)):
            part = pixels[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE]
            _write_tile(folder / f"{col}_{row}.jpg", part, f"{level}/{col}/{row} of image {image_id}")


def _write_tile(target: Path, pixels: np.ndarray, name: str) -> None:
    """``pixels`` (BGR) as a JPEG at ``target``, written whole or not at all."""
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise ValueError(f"cannot encode tile {name}")
    tmp = target.with_name(f"{target.stem}.{threading.get_ident()}.tmp")
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
    _drop_if_changed(cache, image_id, path)
    target = tile_path(cache, image_id, level, col, row)
    if target.is_file():
        return target
    regions = _readable(cache, image_id, path)
    coarse = level in _ahead_levels(width, height)
    if regions is None or coarse:  # being converted, or a coarse level: wait for the preparation
        lock = _lock(image_id)
        deadline = time.monotonic() + 120
        while lock.locked() and not target.is_file() and time.monotonic() < deadline:
            time.sleep(0.02)
        if target.is_file():
            return target
        prepare(cache, image_id, path, width, height)
        regions = _readable(cache, image_id, path)
    return target if target.is_file() else _region_tile(cache, image_id, regions, level, col, row)


def _pyramid(cache: Path, image_id: int) -> Path:
    return cache / str(image_id) / "pyramid.tif"


def _readable(cache: Path, image_id: int, path: str):
    """The image read by regions: its own file, or the pyramid it was converted into (None
    while there is none)."""
    regions = cached_regions(path)
    if regions is None and _pyramid(cache, image_id).is_file():
        regions = cached_regions(_pyramid(cache, image_id))
    return regions


def region_file(cache: Path, image_id: int, path: str) -> str | None:
    """The file a large image is read by regions from: its own, or the pyramid it was
    converted into; None while the conversion has not finished."""
    regions = _readable(cache, image_id, path)
    return None if regions is None else str(regions.path)


def browser_copy(cache: Path, image_id: int, path: str) -> Path:
    """A PNG of an image in a format browsers do not show (TIFF, 16-bit, ...), made once."""
    target = cache / str(image_id) / "full.png"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.png")
        cv2.imwrite(str(tmp), cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR))
        tmp.replace(target)
    return target
