"""Large images read by regions, never whole: tiled TIFF, GeoTIFF, OME-TIFF and SVS through
tifffile's zarr store, using the file's own pyramid levels.

``open_regions(path)`` gives a :class:`RegionImage` for a TIFF whose pages can be read a
part at a time (tiled, or in strips of at most :data:`MAX_STRIP_ROWS` rows), or None for
any other file (those are decoded whole, within the pixel limit of
:mod:`fewclick.io.images`). ``RegionImage.read(box, scale)`` returns ``uint8[h, w, 3]`` RGB
of a box given in level-0 pixels, at ``scale`` (1: full resolution; 1/8: an eighth): it
reads the stored level closest above that scale, a block at a time, so that memory follows
the answer's size and not the box's.

Checked when opened, with an :class:`~fewclick.io.images.ImageError` naming the file:
a file cut short (a tile or strip whose bytes run past the end), and pyramid levels that
disagree with level 0 (not smaller, or of another aspect ratio).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewclick.io.images import ImageError, image_size, to_rgb8

#: a page in strips of more rows than this is not read by regions (a region would decode
#: most of the image): it is decoded whole, within the pixel limit
MAX_STRIP_ROWS = 1024
#: a read decodes at most this many stored pixels at a time (a block is resized into place)
BLOCK = 2048
#: at most this many files are kept open
OPEN_FILES = 8
#: threads a large read decodes its blocks on
READ_THREADS = max(1, min(4, os.cpu_count() or 1))
#: the layouts read by regions: grey, samples last, samples or channels first
AXES = ("YX", "YXS", "SYX", "CYX")
#: a level's side may differ from level 0's divided by its downsample by this many pixels
LEVEL_SLACK = 2
_OPEN: OrderedDict[tuple[str, int], tuple] = OrderedDict()  # (path, level) -> (stamp, file, array)
_REGIONS: OrderedDict[str, tuple] = OrderedDict()  # path -> (stamp, RegionImage | None)
_OPEN_LOCK = threading.Lock()


@dataclass
class RegionImage:
    """A TIFF read by regions. ``sizes`` are each stored level's ``(width, height)``, level 0
    first; ``planar`` says the samples come first; ``value_range`` is ``(lo, hi)`` that
    non-8-bit samples are stretched from (taken from the coarsest level, the same for every
    read, so that tiles agree)."""

    path: Path
    sizes: list[tuple[int, int]]
    value_range: tuple[float, float] | None = None
    planar: bool = False  # samples first (SYX, CYX): read as [c, y, x]

    @property
    def width(self) -> int:
        return self.sizes[0][0]

    @property
    def height(self) -> int:
        return self.sizes[0][1]

    def downsample(self, level: int) -> float:
        """How many level-0 pixels one pixel of stored ``level`` spans (along x)."""
        return self.width / self.sizes[level][0]

    def level_for(self, scale: float) -> int:
        """The coarsest stored level still at least as fine as ``scale`` (answer pixels per
        level-0 pixel)."""
        best = 0
        for level in range(len(self.sizes)):
            if self.downsample(level) <= 1 / scale + 1e-6:
                best = level
        return best

    def read(self, box: tuple[int, int, int, int], scale: float = 1.0) -> np.ndarray:
        """``uint8[h, w, 3]`` RGB of ``box`` (x0, y0, x1, y1 in level-0 pixels, clipped to the
        image) at ``scale``; h, w = ceil of the clipped box's sides times ``scale``."""
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(self.width, int(box[2])), min(self.height, int(box[3]))
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"region {tuple(box)} lies outside the {self.width} x {self.height} image")
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        out_w, out_h = max(1, math.ceil((x1 - x0) * scale)), max(1, math.ceil((y1 - y0) * scale))
        level = self.level_for(scale)
        array = _array(self.path, level)
        lw, lh = self.sizes[level]
        fx, fy = lw / self.width, lh / self.height
        # the box in the stored level's pixels
        sx0, sy0 = math.floor(x0 * fx), math.floor(y0 * fy)
        sx1, sy1 = min(lw, math.ceil(x1 * fx)), min(lh, math.ceil(y1 * fy))
        if (sx1 - sx0) * (sy1 - sy0) <= BLOCK * BLOCK:
            return self._resized(self._stored(array, sx0, sy0, sx1, sy1), out_w, out_h)
        out = np.zeros((out_h, out_w, 3), np.uint8)
        kx, ky = out_w / (sx1 - sx0), out_h / (sy1 - sy0)

        def block(bx: int, by: int) -> None:
            ex, ey = min(bx + BLOCK, sx1), min(by + BLOCK, sy1)
            ox0, oy0 = round((bx - sx0) * kx), round((by - sy0) * ky)
            ox1, oy1 = round((ex - sx0) * kx), round((ey - sy0) * ky)
            if ox1 > ox0 and oy1 > oy0:
                out[oy0:oy1, ox0:ox1] = self._resized(
                    self._stored(array, bx, by, ex, ey), ox1 - ox0, oy1 - oy0
                )

        blocks = [(bx, by) for by in range(sy0, sy1, BLOCK) for bx in range(sx0, sx1, BLOCK)]
        # blocks in parallel: their resizing on every core (tifffile's zarr store decodes in its
        # own I/O thread below 6 cores); memory: a block per thread
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(blocks))) as pool:
            for done in [pool.submit(block, bx, by) for bx, by in blocks]:
                done.result()
        return out

    def _stored(self, array, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        try:
            if self.planar:
                part = np.moveaxis(np.asarray(array[:, y0:y1, x0:x1]), 0, -1)
            else:
                part = np.asarray(array[y0:y1, x0:x1])
        except Exception as exc:  # tifffile and imagecodecs raise their own types
            raise ImageError(
                f"{self.path}: cannot decode the region ({x0}, {y0}, {x1}, {y1}): {exc}"
            ) from None
        if part.dtype != np.uint8 and self.value_range is not None:
            lo, hi = self.value_range
            part = np.clip((part.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-9)), 0, 255).astype(
                np.uint8
            )
        return to_rgb8(part, name=str(self.path))

    @staticmethod
    def _resized(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
        if pixels.shape[1] == width and pixels.shape[0] == height:
            return np.ascontiguousarray(pixels)
        import cv2

        return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


def open_regions(path: str | Path) -> RegionImage | None:
    """The file as a :class:`RegionImage` when it is a TIFF that can be read by regions,
    else None; an :class:`ImageError` for a TIFF cut short or with levels that disagree."""
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff", ".svs", ".ome.tif", ".btf"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if not series.shape or 0 in series.shape:
                raise ImageError(f"{path}: the TIFF holds no image data (an empty or unfinished file)")
            pages = [level.keyframe for level in series.levels]
            if series.axes not in AXES or not all(_by_regions(p) for p in pages):
                return None
            size = path.stat().st_size
            for i, page in enumerate(pages):
                _check_bytes(path, page, i, size)
            sizes = [_size(level) for level in series.levels]
            sizes += _dropped_levels(tif, len(sizes))
            series_axes = series.axes
            coarsest = series.levels[-1].asarray() if pages[0].dtype != np.uint8 else None
    except ImageError:
        raise
    except Exception as exc:  # tifffile's own errors for a broken header
        raise ImageError(f"{path}: not a readable TIFF ({exc})") from None
    _check_levels(path, sizes)
    planar = series_axes[0] in "SC"
    value_range = None
    if coarsest is not None:
        finite = coarsest[np.isfinite(coarsest)] if coarsest.dtype.kind == "f" else coarsest
        value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return RegionImage(path, sizes, value_range, planar)


def image_extent(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file: a TIFF read by regions is never decoded whole,
    so the pixel limit does not apply to it; any other file is checked against the limit
    (:func:`fewclick.io.images.image_size`, from the header)."""
    image = cached_regions(path)
    if image is not None:
        return image.width, image.height
    return image_size(path)


def cached_regions(path: str | Path) -> RegionImage | None:
    """:func:`open_regions`, kept for the file as long as it is unchanged on disk."""
    path = Path(path)
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _OPEN_LOCK:
        held = _REGIONS.get(str(path))
        if held is not None and held[0] == stamp:
            _REGIONS.move_to_end(str(path))
            return held[1]
    image = open_regions(path)
    with _OPEN_LOCK:
        _REGIONS[str(path)] = (stamp, image)
        while len(_REGIONS) > 64:
            _REGIONS.popitem(last=False)
    return image


def _by_regions(page) -> bool:
    if page.is_tiled:
        return True
    return 0 < page.rowsperstrip <= MAX_STRIP_ROWS and len(page.dataoffsets) > 1


def _size(level) -> tuple[int, int]:
    axes, shape = level.axes, level.shape
    return int(shape[axes.index("X")]), int(shape[axes.index("Y")])


def _dropped_levels(tif, kept: int) -> list[tuple[int, int]]:
    """The sizes of the reduced levels in page 0's SubIFDs that tifffile left out of the
    series (it leaves out a level of another shape): they are checked, and refused."""
    import tifffile

    offsets = tif.pages[0].subifds or ()
    out = []
    for i in range(kept - 1, len(offsets)):
        tif.filehandle.seek(offsets[i])
        page = tifffile.TiffPage(tif, index=(0, i))
        out.append((int(page.imagewidth), int(page.imagelength)))
    return out


def _check_bytes(path: Path, page, index: int, size: int) -> None:
    ends = np.asarray(page.dataoffsets, np.int64) + np.asarray(page.databytecounts, np.int64)
    if len(ends) and int(ends.max()) > size:
        raise ImageError(
            f"{path}: the file is cut short: level {index}'s data run to byte {int(ends.max()):,} "
            f"of a {size:,}-byte file"
        )


def _check_levels(path: Path, sizes: list[tuple[int, int]]) -> None:
    w0, h0 = sizes[0]
    for i, (w, h) in enumerate(sizes[1:], 1):
        if not (w < sizes[i - 1][0] and h < sizes[i - 1][1]):
            raise ImageError(f"{path}: pyramid level {i} ({w} x {h}) is not smaller than level {i - 1}")
        d = w0 / w
        if abs(h0 / d - h) > LEVEL_SLACK:
            raise ImageError(
                f"{path}: pyramid level {i} ({w} x {h}) disagrees with level 0 ({w0} x {h0}): "
                f"at 1/{d:.3g} it would be {w} x {round(h0 / d)}"
            )


def _array(path: Path, level: int):
    """The zarr array of ``level`` of ``path``'s first series, the file kept open (at most
    :data:`OPEN_FILES` files; a file changed on disk is opened again)."""
    import tifffile
    import zarr

    stat = path.stat()
    key = (str(path), level)
    with _OPEN_LOCK:
        held = _OPEN.get(key)
        if held is not None and held[0] == (stat.st_mtime_ns, stat.st_size):
            _OPEN.move_to_end(key)
            return held[2]
        if held is not None:  # changed on disk since
            del _OPEN[key]
            held[1].close()
        tif = tifffile.TiffFile(path)
        # tiles decoded on READ_THREADS threads: zarr runs the store on one event loop, where
        # tifffile decodes in the loop's own thread unless it is given workers (its default
        # below 3 cores), so a GeoTIFF without overviews decoded on one core for its overview
        store = tif.series[0].aszarr(level=level, maxworkers=READ_THREADS)
        array = zarr.open_array(store, mode="r")
        _OPEN[key] = ((stat.st_mtime_ns, stat.st_size), tif, array)
        while len(_OPEN) > OPEN_FILES:
            _, (_, old, _) = _OPEN.popitem(last=False)
            old.close()
        return array


#: what separates a large image's file from the window of it a window path names
WINDOW_MARK = "#window="


def window_path(source: str | Path, box: tuple[int, int, int, int]) -> str:
    """A path naming the window ``box`` (x0, y0, x1, y1, level-0 pixels) of the file
    ``source`` read by regions: what the worker's predictors take as an image's path, so
    that a window is read, cached and encoded as a small image is (:func:`load_pixels`)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return f"{source}{WINDOW_MARK}{x0},{y0},{x1},{y1}"


def load_pixels(path: str | Path) -> np.ndarray:
    """``uint8[H, W, 3]``: the image at ``path``, or, for a :func:`window_path`, the window
    read at full resolution (ImageError when its file cannot be read by regions)."""
    text = str(path)
    if WINDOW_MARK not in text:
        from fewclick.io.images import load_image

        return load_image(path)
    source, box = text.rsplit(WINDOW_MARK, 1)
    regions = cached_regions(source)
    if regions is None:
        raise ImageError(f"{source}: not a file read by regions, so no window of it can be read")
    return regions.read(tuple(int(v) for v in box.split(",")))


def convert_to_pyramid(
    source: str | Path, target: str | Path, progress: Callable[[int], None] | None = None
) -> Path:
    """Write ``source`` (any image libvips reads: PNG, JPEG, ...) as a tiled pyramidal TIFF
    at ``target`` (512 px JPEG tiles, reduced levels in SubIFDs, BigTIFF), streaming: the
    image is read top to bottom once and never held whole. ``progress`` gets the percentage
    done as it grows. The file appears at ``target`` only when complete."""
    import pyvips

    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.part")
    try:
        image = pyvips.Image.new_from_file(str(source), access="sequential")
    except pyvips.Error as exc:
        raise ImageError(f"{source}: cannot open image ({str(exc).strip()})") from None
    if image.bands in (2, 4):  # drop alpha
        image = image.extract_band(0, n=image.bands - 1)
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar":  # stretched from its own min..max, as load_image does
        stats = pyvips.Image.new_from_file(str(source), access="sequential").stats()  # one pass
        lo, hi = stats.getpoint(0, 0)[0], stats.getpoint(1, 0)[0]  # min, max over every band
        image = image.linear(255.0 / max(hi - lo, 1e-9), -lo * 255.0 / max(hi - lo, 1e-9)).cast("uchar")
    image = image.copy(interpretation="srgb")  # 8-bit RGB now, whatever the file said
    if progress is not None:
        done = [-1]

        def said(_, state) -> None:
            if state.percent != done[0]:
                done[0] = state.percent
                progress(int(state.percent))

        image.set_progress(True)
        image.signal_connect("eval", said)
    try:
        image.tiffsave(
            str(partial), tile=True, tile_width=512, tile_height=512, pyramid=True, subifd=True,
            compression="jpeg", Q=90, bigtiff=True,
        )  # fmt: skip
    except pyvips.Error as exc:
        partial.unlink(missing_ok=True)
        raise ImageError(f"{source}: cannot convert to a tiled pyramid ({str(exc).strip()})") from None
    partial.replace(target)
    if progress is not None:
        progress(100)
    return target
