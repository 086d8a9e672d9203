"""Masks <-> COCO RLE and polygons, through pycocotools."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fewclick.extras import require
from fewclick.types import Objects


def mask_to_rle(mask: np.ndarray) -> dict:
    """``bool[H, W]`` -> compressed COCO RLE with ``counts`` as str (JSON-ready)."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"expected a mask of shape (H, W), got {m.shape}")
    rle = mask_utils.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}


def window_to_rle(window: np.ndarray, offset: tuple[int, int], height: int, width: int) -> dict:
    """The compressed COCO RLE of a ``height x width`` mask that is empty but for ``window``
    (``bool[h, w]``) with its top-left pixel at ``offset`` (x, y): the image-sized mask is
    never made. Its runs come from the window's on-intervals, column by column (COCO's
    order), moved to the image's pixel numbering. ValueError if the window does not fit."""
    m = np.asarray(window, bool)
    if m.ndim != 2:
        raise ValueError(f"expected a window mask of shape (h, w), got {m.shape}")
    x0, y0 = int(offset[0]), int(offset[1])
    h, w = m.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"a {w} x {h} window at ({x0}, {y0}) does not fit the {width} x {height} image")
    if height * width >= 2**32:  # pycocotools counts in 32 bits
        raise ValueError(f"a {width} x {height} image is over the 2^32 pixels a COCO RLE can number")
    cols = np.zeros((w, h + 2), np.int8)  # each window column padded by an off pixel either end
    cols[:, 1:-1] = m.T
    edges = np.diff(cols, axis=1)
    col_on, row_on = np.nonzero(edges == 1)  # column by column, top to bottom (C order of m.T)
    row_off = np.nonzero(edges == -1)[1]
    base = (x0 + col_on.astype(np.int64)) * height + y0
    starts, ends = base + row_on, base + row_off
    if len(starts) > 1:  # runs that touch across a column (a window as high as the image) are one
        joined = np.concatenate([[True], starts[1:] != ends[:-1]])
        starts, ends = starts[joined], ends[np.concatenate([joined[1:], [True]])]
    bounds = np.empty(2 * len(starts) + 2, np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    counts = np.diff(bounds).tolist()
    if len(counts) > 1 and counts[-1] == 0:  # a mask on to its last pixel ends there, as COCO's
        counts.pop()
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def rle_window(rle: dict, box: Any) -> np.ndarray:
    """The ``bool[h, w]`` window ``box`` (x0, y0, x1, y1, clipped to the mask) of a COCO RLE,
    decoded from its runs without making the whole mask (a large image's). ValueError for
    an RLE that is not one, or a box outside the mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = rle_counts(counts) if isinstance(counts, str) else list(counts)
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"window {list(box)} lies outside the {width} x {height} mask")
    out = np.zeros((x1 - x0, y1 - y0), bool)  # column by column, as the runs go
    first, last = x0 * height, x1 * height
    pos, on = 0, False
    for n in runs:
        if on and n and pos + n > first and pos < last:
            start, end = max(pos, first), min(pos + n, last)
            for col in range(start // height, (end - 1) // height + 1):
                r0, r1 = max(start - col * height, y0), min(end - col * height, y1)
                if r1 > r0:
                    out[col - x0, r0 - y0 : r1 - y0] = True
        pos += n
        on = not on
        if pos >= last:
            break
    return out.T


def rle_to_mask(rle: dict) -> np.ndarray:
    """COCO RLE (compressed, or uncompressed with a list of counts) -> ``bool[H, W]``."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"expected an RLE dict with 'size' and 'counts', got {type(rle).__name__}")
    h, w = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise ValueError("expected uncompressed RLE counts to be integers >= 0")
        if sum(counts) != h * w:
            raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h} x {w} = {h * w}")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode("ascii")}
    try:
        return mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(
            f"expected a valid RLE of size {h} x {w}, got one that fails to decode ({exc})"
        ) from None


def rle_counts(counts: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string.

    pycocotools' code: a number is 5-bit groups, low first, each a character offset by 48
    with 0x20 set while more groups follow and 0x10 of the last one its sign; from the third
    run on, a run is stored as its difference from the run two before. A character outside
    that code or a number cut off at the end is a ValueError.
    """
    runs: list[int] = []
    value = shift = 0
    for ch in counts:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise ValueError(f"expected RLE counts of the characters '0' to 'o', got {ch!r}")
        value |= (c & 0x1F) << shift
        shift += 5
        if c & 0x20:
            continue
        if c & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value = shift = 0
    if shift:
        raise ValueError("expected RLE counts to end with a whole number, got one cut off")
    return runs


def check_rle(rle: Any, height: int, width: int) -> dict:
    """``rle`` (a COCO RLE dict, counts compressed or a list) checked to be a mask of
    ``height x width``, as a compressed RLE ``{"size": [h, w], "counts": str}``.

    A ValueError names what is wrong: not an RLE, another size, or runs that are negative
    or do not add up to ``height * width`` pixels (pycocotools decodes those into memory
    it never wrote, or a box far outside the image).
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("expected a mask as a COCO RLE {'size': [h, w], 'counts': ...}")
    size, counts = rle["size"], rle["counts"]
    if size != [height, width] and size != (height, width):
        raise ValueError(f"mask size {size!r} is not the image's [{height}, {width}]")
    if isinstance(counts, str):
        runs = rle_counts(counts)
    elif isinstance(counts, list) and all(type(c) is int for c in counts):
        runs = counts
    else:
        raise ValueError(
            f"expected RLE counts as a string or a list of integers, got {type(counts).__name__}"
        )
    if any(r < 0 for r in runs) or sum(runs) != height * width:
        raise ValueError(
            f"expected RLE runs >= 0 that add up to {height} x {width} = {height * width} pixels, "
            f"got {len(runs)} runs adding up to {sum(runs)}"
        )
    if isinstance(counts, list):
        counts = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)["counts"]
        counts = counts.decode("ascii")
    return {"size": [height, width], "counts": counts}


def objects_masks(objects: Objects, height: int, width: int) -> np.ndarray:
    """Decode ``objects``' segmentations to ``bool[N, H, W]``; an object without one gets its
    box (rounded to whole pixels, clipped at 0)."""
    out = np.zeros((len(objects), height, width), bool)
    for i in range(len(objects)):
        seg = None if objects.segmentations is None else objects.segmentations[i]
        if seg is not None:
            out[i] = segmentation_to_mask(seg, height, width)
        elif not np.isnan(objects.boxes[i]).any():
            x0, y0, x1, y1 = np.round(objects.boxes[i]).astype(int)
            out[i, max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return out


def polygons_to_mask(polygons: list, height: int, width: int) -> np.ndarray:
    """Polygons (each ``float[K, 2]`` or a flat COCO list) -> ``bool[H, W]``."""
    flat = [np.asarray(p, dtype=np.float64).reshape(-1).tolist() for p in polygons]
    flat = [p for p in flat if len(p) >= 6]
    if not flat:
        return np.zeros((height, width), bool)
    rles = mask_utils.frPyObjects(flat, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def polygons_to_rle(polygons: list, height: int, width: int) -> dict:
    """The compressed RLE of :func:`polygons_to_mask`, each polygon filled over its own
    window (a polygon on a large image never makes the image-sized mask, nor do two parts
    far apart), to the same pixels."""
    parts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
    parts = [p for p in parts if len(p) >= 3]
    if not parts:
        return window_to_rle(np.zeros((1, 1), bool), (0, 0), height, width)
    rles = []
    for part in parts:
        x0, y0, x1, y1 = polygons_window([part], height, width)
        window = polygons_to_mask(moved_polygons([part], x0, y0), y1 - y0, x1 - x0)
        rles.append(window_to_rle(window, (x0, y0), height, width))
    return rles[0] if len(rles) == 1 else merge_rles(rles)


def moved_polygons(polygons: list, x0: int, y0: int) -> list[np.ndarray]:
    """Polygons (``float[K, 2]``) moved by ``(-x0, -y0)`` (whole pixels) so that
    pycocotools fills them to the same pixels as unmoved: it rounds each vertex to a fifth
    of a pixel first (``(int)(5 v + .5)``), and a vertex moved in floating point can round
    the other way (200.7 and 1.7 do), so the vertex is rounded first and moved on that grid."""
    out = []
    for p in polygons:
        p = np.asarray(p, np.float64).reshape(-1, 2)
        moved = p.copy()
        for axis, offset in ((0, x0), (1, y0)):
            if offset:  # a window from the image's edge keeps the vertices as they are
                moved[:, axis] = (np.trunc(5 * p[:, axis] + 0.5) - 5 * offset) / 5
        out.append(moved)
    return out


def polygons_window(polygons: list[np.ndarray], height: int, width: int) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) of a ``height x width`` image that holds every pixel the
    polygons (``float[K, 2]`` each) may fill, with a pixel to spare, and at least one pixel."""
    xy = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polygons])
    x0, y0 = (
        min(max(int(np.floor(xy[:, 0].min())) - 1, 0), width - 1),
        min(max(int(np.floor(xy[:, 1].min())) - 1, 0), height - 1),
    )
    x1, y1 = (
        max(min(int(np.ceil(xy[:, 0].max())) + 2, width), x0 + 1),
        max(min(int(np.ceil(xy[:, 1].max())) + 2, height), y0 + 1),
    )
    return x0, y0, x1, y1


def segmentation_to_rle(seg: Any, height: int, width: int) -> dict:
    """A segmentation (polygons or an RLE) as a compressed RLE ``{"size", "counts": str}``
    of a ``height x width`` image, never making the image-sized mask (a large image's is
    gigabytes); ValueError for an RLE of another size or runs that do not add up."""
    if isinstance(seg, dict):
        return check_rle(_plain(seg), height, width)
    return polygons_to_rle(seg, height, width)


def _plain(rle: dict) -> dict:
    """An RLE as pycocotools or numpy may hand it (counts as bytes, numbers as numpy's), in
    the plain types :func:`check_rle` takes; anything else is left for it to name."""
    size, counts = rle.get("size"), rle.get("counts")
    if isinstance(size, (list, tuple, np.ndarray)) and len(size) == 2:
        size = [int(v) for v in size]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    elif isinstance(counts, (list, np.ndarray)) and all(isinstance(c, (int, np.integer)) for c in counts):
        counts = [int(c) for c in counts]
    return {"size": size, "counts": counts}


def segmentation_window(seg: Any, height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A segmentation's pixels over its own box only: ``(bool[h, w], (x0, y0))``, the
    window's top-left pixel in the image (an empty one: a 0 x 0 window at the origin)."""
    rle = segmentation_to_rle(seg, height, width)
    box = rle_boxes([rle])[0]
    if not (box[2] > box[0] and box[3] > box[1]):
        return np.zeros((0, 0), bool), (0, 0)
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    return rle_window(rle, (x0, y0, x1, y1)), (x0, y0)


def merge_rles(rles: list[dict]) -> dict:
    """The union of RLEs of one size, from their runs (no mask is decoded)."""
    coded = [check_rle(_plain(r), *(int(v) for v in r["size"])) for r in rles]
    coded = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in coded]
    merged = mask_utils.merge(coded, intersect=False)
    return {"size": [int(v) for v in merged["size"]], "counts": merged["counts"].decode("ascii")}


def segmentation_to_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """A segmentation as fewclick stores it (polygons list or RLE dict) -> ``bool[H, W]``."""
    if isinstance(seg, dict):
        mask = rle_to_mask(seg)
        if mask.shape != (height, width):
            raise ValueError(f"RLE of size {mask.shape} does not match the image ({height}, {width})")
        return mask
    return polygons_to_mask(seg, height, width)


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> list[np.ndarray]:
    """``bool[H, W]`` -> outer contours as ``float32[K, 2]`` polygons (x, y), via OpenCV."""
    cv2 = require("cv2", "tracing mask outlines")

    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).astype(np.float32) for c in contours if len(c) >= min_points]


def mask_area(seg: Any, height: int, width: int) -> float:
    """The pixels of a segmentation (an RLE's counted from its runs: a large image's mask is
    never made)."""
    if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
        return float(mask_utils.area({"size": seg["size"], "counts": seg["counts"].encode("ascii")}))
    return float(segmentation_to_mask(seg, height, width).sum())


def segmentation_outlines(seg: Any, height: int, width: int) -> list[np.ndarray]:
    """:func:`mask_outlines` of a segmentation in image pixels, decoded only over its box
    (a large image's mask is never made)."""
    window, (x0, y0) = segmentation_window(seg, height, width)
    return [outline + [x0, y0] for outline in mask_outlines(window)] if window.size else []


def rle_boxes(rles: list[dict]) -> np.ndarray:
    """COCO RLEs -> the XYXY boxes ``float32[N, 4]`` that enclose their pixels.

    A pixel (x, y) covers [x, x + 1) x [y, y + 1), so a one-pixel mask at (3, 5) gives the box
    (3, 5, 4, 6), as COCO's ``toBbox``; an empty mask gives a zero box at the origin.
    """
    if not rles:
        return np.zeros((0, 4), np.float32)
    coded = [
        {"size": r["size"], "counts": r["counts"].encode("ascii")} if isinstance(r["counts"], str) else r
        for r in rles
    ]
    xywh = np.asarray(mask_utils.toBbox(coded), np.float32).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """``bool[H, W]`` -> its outer contours ``float64[K, 2]`` moved half a pixel out (a
    shapely mitred buffer), so they run along pixel edges instead of through pixel
    centres and fill back to nearly the same pixels; a contour too thin to buffer gives
    its bounding rectangle. Holes are not kept."""
    from shapely.geometry import Polygon

    out = []
    for contour in mask_to_polygons(mask, min_points=1):
        shape = Polygon(contour + 0.5) if len(contour) >= 3 else None
        grown = shape.buffer(0.5, join_style="mitre") if shape is not None and shape.is_valid else None
        if grown is None or grown.is_empty or grown.geom_type != "Polygon":
            x0, y0 = contour.min(0)
            x1, y1 = contour.max(0) + 1
            out.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64))
        else:
            out.append(np.asarray(grown.exterior.coords, np.float64)[:-1])
    return out
