"""Cut large images into overlapping tiles, and merge per-tile detections back.

This follows the public C3Det code: 1024 px tiles with 200 px overlap; an object cut by
a tile edge stays in the tile when at least 70% of it remains; detections of all tiles
are merged on the whole image with polygon NMS at IoU 0.1 (oriented boxes) after a score
threshold of 0.05. The grid is the DOTA devkit's ``ImgSplit`` grid: stride
``size - overlap``, with the last row and column shifted back to end at the border.

Coordinates are (x, y) pixels; a :class:`Tile` is the half-open window
``[x0, x1) x [y0, y1)`` of the full image. torch is imported only inside the function
that needs it, so ``import fewclick.io.tiling`` stays light.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from fewclick.extras import require
from fewclick.io import rle
from fewclick.types import Detections, Objects, polygons_to_rboxes, rboxes_to_polygons

__all__ = [
    "Tile",
    "tile_grid",
    "tile_image",
    "crop_image",
    "crop_objects",
    "merge_detections",
    "shift_detections",
    "polygon_nms",
]

#: DOTA's ``difficult`` value for an object cut below the keep threshold.
CUT_DIFFICULT = 2


@dataclass(frozen=True)
class Tile:
    """A pixel window ``[x0, x1) x [y0, y1)`` of the full image (x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1"):
            object.__setattr__(self, name, operator.index(getattr(self, name)))
        if self.x0 < 0 or self.y0 < 0 or self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"expected a tile with 0 <= x0 < x1 and 0 <= y0 < y1, got {self}")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, the shape of the tile's image crop."""
        return self.height, self.width

    @property
    def offset(self) -> tuple[int, int]:
        """``(x0, y0)``: add it to tile coordinates to get full-image coordinates."""
        return self.x0, self.y0

    @property
    def box(self) -> np.ndarray:
        """The window as an XYXY box ``float32[4]`` in full-image coordinates."""
        return np.array([self.x0, self.y0, self.x1, self.y1], np.float32)

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices that cut the tile out of an ``[H, W, ...]`` array."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


# --------------------------------------------------------------------------- grid
def _starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis; the last one ends at the border (DOTA ImgSplit)."""
    if length <= size:
        return [0]
    return [*range(0, length - size, stride), length - size]


def tile_grid(width: int, height: int, size: int = 1024, overlap: int = 200) -> list[Tile]:
    """Tiles that cover a ``width`` x ``height`` image, row by row (y, then x).

    Windows are ``size`` px squares placed every ``size - overlap`` px; the last row and
    column are shifted back to end at the image border, so every tile is full-size when
    the image is at least ``size`` px on that side. A side shorter than ``size`` gets one
    window as long as the side.
    """
    width, height, size, overlap = (operator.index(v) for v in (width, height, size, overlap))
    if width <= 0 or height <= 0:
        raise ValueError(f"expected a positive image size, got width={width}, height={height}")
    if size <= 0:
        raise ValueError(f"expected tile size > 0, got size={size}")
    if not 0 <= overlap < size:
        raise ValueError(f"expected 0 <= overlap < size, got overlap={overlap}, size={size}")
    xs = _starts(width, size, size - overlap)
    ys = _starts(height, size, size - overlap)
    return [Tile(x, y, min(x + size, width), min(y + size, height)) for y in ys for x in xs]


def window_cores(starts: Sequence[int], extent: int, side: int) -> list[tuple[float, float]]:
    """Along one side of ``extent`` px, the core of each window of ``side`` px starting at
    ``starts`` (sorted): from the middle of its overlap with the window before to the middle
    of its overlap with the window after (the side's ends where it has none). The cores of a
    grid's windows tile the image: each point is owned by one window (:func:`owned`)."""
    ends = [min(s + side, extent) for s in starts]
    cuts = [0.0, *((b + e) / 2 for b, e in zip(starts[1:], ends[:-1], strict=True)), float(extent)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def owned(det: Detections, tile: Tile, core: tuple[float, float, float, float]) -> Detections:
    """A window's detections (window pixels) moved into the image, those whose centre its
    ``core`` (x0, y0, x1, y1, image pixels) holds: an object found by two overlapping windows
    is kept once, with no NMS across tens of thousands of boxes, and an object up to half
    the overlap wide is whole in the window that keeps it."""
    det = shift_detections(tile, det)
    centres = det.rboxes[:, :2] if det.rboxes is not None else (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
    x0, y0, x1, y1 = core
    inside = (centres[:, 0] >= x0) & (centres[:, 0] < x1) & (centres[:, 1] >= y0) & (centres[:, 1] < y1)
    return det[inside]


def crop_image(image: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile's pixels of ``image`` (``[H, W]`` or ``[H, W, C]``), a view, not a copy."""
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {image.shape}")
    h, w = image.shape[:2]
    if tile.x1 > w or tile.y1 > h:
        raise ValueError(f"expected a tile inside the {w} x {h} image, got {tile}")
    return image[tile.slices]


def tile_image(image: np.ndarray, size: int = 1024, overlap: int = 200) -> list[tuple[Tile, np.ndarray]]:
    """``(tile, view)`` pairs of :func:`tile_grid` over an ``[H, W(, C)]`` image."""
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {image.shape}")
    tiles = tile_grid(image.shape[1], image.shape[0], size, overlap)
    return [(tile, crop_image(image, tile)) for tile in tiles]


# --------------------------------------------------------------------------- ground truth
def _box_visible(boxes: np.ndarray, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the tile, and the fraction of each box's area inside it.

    A zero-area box counts as fully visible when its centre is inside, else invisible.
    """
    clipped = np.concatenate(
        [np.maximum(boxes[:, :2], tile.box[:2]), np.minimum(boxes[:, 2:], tile.box[2:])], axis=1
    )
    inter = np.clip(clipped[:, 2] - clipped[:, 0], 0, None) * np.clip(clipped[:, 3] - clipped[:, 1], 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    centre_in = _inside(np.stack([boxes[:, [0, 2]].mean(1), boxes[:, [1, 3]].mean(1)], axis=1), tile)
    with np.errstate(invalid="ignore", divide="ignore"):
        visible = np.where(area > 0, inter / area, centre_in.astype(np.float64))
    return clipped, np.nan_to_num(visible, nan=0.0)


def _inside(points: np.ndarray, tile: Tile) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return (x >= tile.x0) & (x < tile.x1) & (y >= tile.y0) & (y < tile.y1)


def _visible_fraction(objects: Objects, tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per object: the visible fraction, the clipped box, and the clipped oriented polygons
    (shapely geometries, None for rows without an oriented box)."""
    boxes = objects.boxes.astype(np.float64)
    clipped, visible = _box_visible(np.nan_to_num(boxes), tile)
    no_box = np.isnan(boxes).any(axis=1)
    if objects.points is not None:
        visible[no_box] = _inside(objects.points[no_box], tile).astype(np.float64)
    else:
        visible[no_box] = 0.0
    pieces = np.full(len(objects), None, dtype=object)
    if objects.rboxes is not None:
        oriented = np.isfinite(objects.rboxes).all(axis=1)
        polys = shapely.make_valid(shapely.polygons(rboxes_to_polygons(objects.rboxes[oriented])))
        areas = shapely.area(polys)
        pieces[oriented] = shapely.intersection(polys, shapely.box(*tile.box.tolist()))
        inter = shapely.area(pieces[oriented])
        with np.errstate(invalid="ignore", divide="ignore"):
            visible[oriented] = np.where(areas > 0, inter / areas, visible[oriented])
    return visible, clipped, pieces


def _cut_rbox(piece: shapely.Geometry, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum-area rectangle of a clipped oriented box, and the box tightened to it."""
    coords = shapely.get_coordinates(piece)
    if len(coords) < 3:
        return np.full(5, np.nan, np.float32), box
    rbox = polygons_to_rboxes(coords[None].astype(np.float32))[0]
    x0, y0, x1, y1 = piece.bounds
    tight = np.array([max(box[0], x0), max(box[1], y0), min(box[2], x1), min(box[3], y1)], np.float32)
    return rbox, tight


def _crop_segmentation(seg, tile: Tile, dx: float, dy: float):
    if seg is None:
        return None
    if isinstance(seg, dict):
        mask = rle.rle_to_mask(seg)
        if tile.y1 > mask.shape[0] or tile.x1 > mask.shape[1]:
            raise ValueError(f"expected an RLE mask that contains {tile}, got one of size {mask.shape}")
        return rle.mask_to_rle(mask[tile.slices])
    return [np.asarray(p, np.float32).reshape(-1, 2) - np.array([dx, dy], np.float32) for p in seg]


def crop_objects(
    objects: Objects, tile: Tile, min_visible: float = 0.7, cut_as_difficult: bool = False
) -> Objects:
    """The objects of one tile, in tile coordinates (x, y relative to ``tile.offset``).

    An object stays when the fraction of it inside the tile is >= ``min_visible`` (and
    > 0, so ``min_visible=0`` keeps every object that overlaps the tile): the area
    fraction of its oriented box (a shapely polygon) when it has one, else of its XYXY
    box; an object known only by a point (NaN box) stays when the point is inside.
    Kept objects that are cut get their box clipped to the tile; their oriented box
    becomes the minimum-area rectangle of the clipped polygon, and their XYXY box is
    tightened to that polygon. Polygon segmentations are only translated (they are
    clipped when rasterised at the tile size); RLE masks are decoded, sliced and
    re-encoded, so they must have the full image's size. Points are translated.

    Kept objects keep their own ``difficult`` flag, as the DOTA devkit's ImgSplit does
    for objects above its threshold. ImgSplit also writes the objects cut below the
    threshold, with ``difficult = 2``; ``cut_as_difficult=True`` does the same here and
    marks them ``ignore`` too (DOTA's evaluator ignores every non-zero ``difficult``).
    The default drops them, as C3Det's training patches do.
    """
    if not 0.0 <= min_visible <= 1.0:
        raise ValueError(f"expected 0 <= min_visible <= 1, got {min_visible}")
    if len(objects) == 0:
        return objects[np.zeros(0, np.int64)]
    visible, clipped, pieces = _visible_fraction(objects, tile)
    keep = (visible > 0) & (visible >= min_visible)
    weak = (visible > 0) & ~keep if cut_as_difficult else np.zeros(len(objects), bool)
    index = np.flatnonzero(keep | weak)
    out = objects[index]
    dx, dy = tile.offset
    shift = np.array([dx, dy, dx, dy], np.float32)
    out.boxes = np.where(np.isnan(out.boxes), np.nan, clipped[index]).astype(np.float32)
    if out.rboxes is not None:
        out.rboxes = out.rboxes.copy()
        for row, i in enumerate(index):
            if visible[i] < 1 - 1e-6 and pieces[i] is not None:
                out.rboxes[row], out.boxes[row] = _cut_rbox(pieces[i], out.boxes[row])
        out.rboxes[:, :2] -= np.array([dx, dy], np.float32)
    out.boxes = out.boxes - shift
    if out.points is not None:
        out.points = out.points - np.array([dx, dy], np.float32)
    if out.segmentations is not None:
        out.segmentations = [_crop_segmentation(s, tile, dx, dy) for s in out.segmentations]
    cut = weak[index]
    out.difficult = np.where(cut, CUT_DIFFICULT, out.difficult).astype(np.uint8)
    out.ignore = out.ignore | cut
    return out


# --------------------------------------------------------------------------- detections
def polygon_nms(polygons: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on polygons ``float[N, K, 2]`` (x, y) with ``scores float[N]``.

    Returns the kept indices ``int64[M]`` in decreasing score order (ties: lower index
    first). A polygon is suppressed when its IoU with a kept, higher-scoring one is
    ``> iou_threshold`` (torchvision's rule). IoU comes from shapely: an STRtree finds
    the pairs whose polygons intersect, and only those pairs' areas are computed.
    """
    polys = np.asarray(polygons, np.float64)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    if polys.ndim != 3 or polys.shape[2] != 2 or len(polys) != len(scores):
        raise ValueError(f"expected polygons (N, K, 2) with N = {len(scores)} scores, got {polys.shape}")
    geoms = shapely.make_valid(shapely.polygons(polys))
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = i < j
    i, j = i[pair], j[pair]
    inter = shapely.area(shapely.intersection(geoms[i], geoms[j]))
    areas = shapely.area(geoms)
    union = areas[i] + areas[j] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    over = iou > iou_threshold
    neighbours = _neighbours(
        np.concatenate([i[over], j[over]]), np.concatenate([j[over], i[over]]), len(geoms)
    )
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(scores), bool)
    kept = []
    for k in order:
        if not suppressed[k]:
            kept.append(k)
            suppressed[neighbours[k]] = True
    return np.asarray(kept, np.int64)


def _neighbours(src: np.ndarray, dst: np.ndarray, n: int) -> list[np.ndarray]:
    """Adjacency lists of a graph given as edge arrays."""
    order = np.argsort(src, kind="stable")
    bounds = np.searchsorted(src[order], np.arange(n + 1))
    return [dst[order[bounds[k] : bounds[k + 1]]] for k in range(n)]


def shift_detections(tile: Tile, det: Detections) -> Detections:
    """Detections of one tile moved to full-image coordinates (masks left as they are)."""
    if det.masks is not None and det.masks.shape[1:] != tile.shape:
        raise ValueError(
            f"expected masks of the tile's shape {tile.shape}, got {det.masks.shape[1:]} for {tile}"
        )
    dx, dy = tile.offset
    rboxes = None
    if det.rboxes is not None:
        rboxes = det.rboxes.copy()
        rboxes[:, :2] += np.array([dx, dy], np.float32)
    return Detections(
        det.boxes + np.array([dx, dy, dx, dy], np.float32),
        det.scores,
        det.labels,
        rboxes=rboxes,
        points=None if det.points is None else det.points + np.array([dx, dy], np.float32),
    )


def _nms(dets: Detections, oriented: bool, iou_threshold: float, class_agnostic: bool) -> np.ndarray:
    """Kept indices, in decreasing score order, of per-class (or class-agnostic) NMS."""
    groups = np.zeros(len(dets), np.int64) if class_agnostic else dets.labels
    if not oriented:  # OpenCV's NMS: torchvision's rule and result, without its 160 MB in a worker
        cv2 = require("cv2", "merging tile detections")
        xywh = np.concatenate([dets.boxes[:, :2], dets.boxes[:, 2:] - dets.boxes[:, :2]], 1)
        floor = float(dets.scores.min()) - 1.0  # OpenCV keeps scores above this: every one
        keep = np.asarray(
            cv2.dnn.NMSBoxesBatched(
                xywh.astype(np.float64).tolist(), dets.scores.tolist(), groups.tolist(), floor, iou_threshold
            ),
            np.int64,
        ).reshape(-1)
        return keep[np.lexsort((keep, -dets.scores[keep]))]
    polygons = rboxes_to_polygons(dets.rboxes)
    kept = [
        np.flatnonzero(groups == g)[
            polygon_nms(polygons[groups == g], dets.scores[groups == g], iou_threshold)
        ]
        for g in np.unique(groups)
    ]
    keep = np.concatenate(kept)
    return keep[np.argsort(-dets.scores[keep], kind="stable")]


def _paste_masks(
    per_tile: list[tuple[Tile, Detections]], keep: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """Full-image masks ``bool[len(keep), H, W]`` of the kept detections only."""
    tile_masks = [(tile, det.masks) for tile, det in per_tile]
    owners = np.concatenate([np.full(len(m), t) for t, (_, m) in enumerate(tile_masks)])
    rows = np.concatenate([np.arange(len(m)) for _, m in tile_masks])
    out = np.zeros((len(keep), *image_size), bool)
    for n, k in enumerate(keep):
        tile, masks = tile_masks[owners[k]]
        out[n][tile.slices] = masks[rows[k]]
    return out


def merge_detections(
    per_tile: Sequence[tuple[Tile, Detections]],
    oriented: bool = False,
    iou_threshold: float | None = None,
    score_threshold: float = 0.05,
    class_agnostic: bool = False,
    image_size: tuple[int, int] | None = None,
) -> Detections:
    """Merge the detections of overlapping tiles into detections of the whole image.

    Each tile's detections (tile coordinates) are shifted by ``tile.offset``; those with
    a score below ``score_threshold`` are dropped; then NMS runs per class (or over all
    classes with ``class_agnostic``): OpenCV's ``NMSBoxesBatched`` on the XYXY boxes (torchvision's
    ``batched_nms`` rule: a box goes when its IoU with a kept one is above the threshold),
    default IoU 0.5, or with ``oriented`` :func:`polygon_nms` on the oriented boxes,
    default IoU 0.1 (C3Det). The result is sorted by decreasing score.

    Masks ``bool[N, h, w]`` of the tile's shape, when every tile has them, are pasted
    into full-image masks ``bool[M, H, W]`` for the kept detections only (that is still
    M x H x W bytes); ``image_size`` ``(H, W)`` defaults to the tiles' extent.
    """
    if iou_threshold is None:
        iou_threshold = 0.1 if oriented else 0.5
    parts = [(tile, det[det.scores >= score_threshold]) for tile, det in per_tile]
    parts = [(tile, det) for tile, det in parts if len(det)]
    if not parts:
        return Detections.empty(oriented=oriented)
    if oriented and any(det.rboxes is None for _, det in parts):
        raise ValueError("expected oriented boxes (rboxes) in every tile's detections for oriented=True")
    merged = Detections.concatenate([shift_detections(tile, det) for tile, det in parts])
    keep = _nms(merged, oriented, iou_threshold, class_agnostic)
    result = merged[keep]
    with_masks = [det.masks is not None for _, det in parts]
    if any(with_masks) and not all(with_masks):
        raise ValueError("expected masks in every tile's detections or in none, got a mix")
    if all(with_masks):
        if image_size is None:
            image_size = (max(t.y1 for t, _ in per_tile), max(t.x1 for t, _ in per_tile))
        masks = _paste_masks(parts, keep, image_size)
        result = dataclasses.replace(result, masks=masks)
    return result
