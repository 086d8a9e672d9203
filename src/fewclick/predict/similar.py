"""Training-free click-to-detect on the pretrained encoder: find what looks like the clicked object.

Before a project has a detector, a click still finds the clicked object's look-alikes:

1. SAM segments the clicked object from the click; the object's feature vector is the
   mean of the encoder's features over that mask (the features at the click when SAM's
   mask is empty or implausibly large).
2. Its cosine similarity with every location of the image gives a map; the clicks of one
   class pool their evidence by taking, per location, the best of their maps, and a
   location goes to the class whose clicks it resembles most.
3. The map is read relative to the clicked objects themselves: each click's similarity is
   divided by the clicked object's own peak (its vector against its own cells), so 1.0 is
   "as like the click as the clicked object is to itself". The local maxima of a class's
   map at or above ``relative`` (0.9) become boxes the size of the class's clicked objects
   (the median of their SAM boxes), scored by that relative similarity, at most ``limit``
   of them (the app passes a few times the objects a finished image of the project holds).

Why relative: an absolute threshold (0.5 before) flooded. On the first 10 test images of
hit_uav one click gave 19-104 times as many proposals as the image has objects, nearly all
on texture; texture peaks reach 0.77 while other objects score 0.57-0.83, so no absolute
value separates them across images. Relative to the clicked object's own peak, on the
first 30 training images of hit_uav and of bccd, 0.9 kept every image at most 2.5 and 2.0
times its objects after one click, 3.0 and 2.9 after three (``benchmarks/training_free.py
--sweep``; ``docs/benchmarks/training_free.md``). Another clicked object of the class, in
place of the object itself, flooded hit_uav (its cars and persons are less alike than
texture is to them), so that calibration is not used. When nothing clears the bar only the
clicked objects come back: the panel says so rather than offering texture.

Every click returns its own object, with its class and its SAM box, at score 1; a peak
on a clicked object is dropped. The features are the encoder's stride 8 and 16 maps and
SAM's embedding, each L2-normalised, brought to stride 8 and concatenated
(:func:`similarity_features`). Same interface as :class:`ClickDetector`: ``set_image``
then ``predict(clicks)``; large images are tiled as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from fewclick.io.images import to_rgb8
from fewclick.io.tiling import merge_detections
from fewclick.models.backbone import unit_similarity_features
from fewclick.predict.features import TileFeatures, image_features
from fewclick.types import Clicks, Detections

STRIDE = 8  # encoder-input pixels per similarity cell
PLATEAU = 0.03  # a peak's position is the centroid of the cells this close to its similarity


@dataclass(frozen=True)
class ClickedObject:
    """A clicked object: its class, SAM's ``box`` from the click (image pixels) and its
    feature ``vector`` (None: SAM found no object there, so nothing is looked for)."""

    label: int
    box: np.ndarray
    vector: torch.Tensor | None


@dataclass(frozen=True)
class SimilarityConfig:
    relative: float = 0.9  # a peak's similarity over the clicked object's own peak (module docstring)
    max_side: float = 0.5  # a SAM mask wider or taller than this share of the tile is not the object
    default_side: float = 32.0  # image pixels: a box side when no clicked object of the class has a mask
    max_detections: int = 500


def similarity_features(tile: TileFeatures) -> torch.Tensor:
    """``float32[D, h, w]`` unit vectors at stride 8 of the encoder's input (module docstring)."""
    # from stride 8: the stride 4 map (16 MB a 1024 px tile in float32) is never made
    return unit_similarity_features(tile.maps(skip=1), stride_index=0)[0]


class SimilarityDetector:
    """The training-free start (module docstring). ``encoder``: the shared
    :class:`~fewclick.predict.encoder.ImageEncoder`; ``sam``: a
    :class:`~fewclick.predict.sam.SamPredictor` on the same encoder (made on first use)."""

    method = "training-free"

    def __init__(self, num_classes: int, encoder=None, sam=None, config: SimilarityConfig | None = None):
        if num_classes < 1:
            raise ValueError(f"expected num_classes >= 1, got {num_classes}")
        if encoder is None:
            from fewclick.predict.encoder import ImageEncoder

            encoder = ImageEncoder()
        self.num_classes, self.encoder, self._sam = num_classes, encoder, sam
        self.config = config or SimilarityConfig()
        self._tiles: list[tuple[TileFeatures, torch.Tensor]] | None = None
        self._shape = (0, 0)
        self._objects: dict[tuple[int, float, float], tuple[np.ndarray, torch.Tensor | None]] = {}

    @property
    def sam(self):
        if self._sam is None:
            from fewclick.predict.sam import SamPredictor

            self._sam = SamPredictor(self.encoder)
        return self._sam

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        image = to_rgb8(np.asarray(image), name="image")
        self._shape = image.shape[:2]
        self._tiles = [(t, similarity_features(t)) for t in image_features(self.encoder, image, key)]
        self._objects = {}

    def predict(
        self, clicks: Clicks | None = None, sizes: dict[int, float] | None = None, limit: int | None = None
    ) -> Detections:
        """Boxes of every object like a clicked one. ``sizes``: a box side per class id
        (image pixels) used when a clicked object's SAM mask is unusable; ``limit``: the
        most look-alikes returned (the best ones), besides the clicked objects."""
        if limit is not None and limit < 0:
            raise ValueError(f"expected limit >= 0, got {limit}")
        if self._tiles is None:
            raise RuntimeError("call set_image(image) before predict()")
        if clicks is None or len(clicks) == 0:
            return Detections.empty()
        h, w = self._shape
        for i, ((x, y), label) in enumerate(zip(clicks.xy, clicks.labels, strict=True)):
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"click {i} at ({x:g}, {y:g}) is outside the {w} x {h} image")
            if not 0 <= label < self.num_classes:
                raise ValueError(f"click {i} has class id {int(label)}; expected 0..{self.num_classes - 1}")
        objects = self.clicked_objects(clicks, sizes or {})
        boxes = np.stack([o.box for o in objects]).astype(np.float32)
        found = Detections(boxes, np.ones(len(clicks), np.float32), clicks.labels.copy())
        return Detections.concatenate([self.look_alikes(objects, limit), found])

    def clicked_objects(self, clicks: Clicks, sizes: dict) -> list[ClickedObject]:
        """Each click's object (its class, SAM's box in image pixels, its feature vector):
        what :meth:`look_alikes` looks for, here or on another image (a large image's
        other windows: :mod:`fewclick.server.worker_sweep`)."""
        return [
            ClickedObject(int(c), *self._clicked(x, y, int(c), sizes))
            for (x, y), c in zip(clicks.xy, clicks.labels)
        ]

    def look_alikes(self, objects: list[ClickedObject], limit: int | None = None) -> Detections:
        """The look-alikes of ``objects`` (:meth:`clicked_objects`, of this image or another
        encoded alike) on this image, best first, at most ``limit``; none centred on one of
        the objects' boxes (which are in this image's pixels: pass those of another image's
        objects moved here, or outside it)."""
        if self._tiles is None:
            raise RuntimeError("call set_image(image) before look_alikes()")
        groups = _groups(objects)
        per_tile = [(t.tile, self._peaks(t, unit, groups)) for t, unit in self._tiles]
        merged = merge_detections(per_tile, score_threshold=0.0, iou_threshold=0.5)
        boxes = np.stack([o.box for o in objects]).astype(np.float32).reshape(-1, 4)
        merged = _not_on(Detections(merged.boxes, merged.scores, merged.labels), boxes)
        keep = self.config.max_detections if limit is None else min(limit, self.config.max_detections)
        return merged[:keep]

    def clicked_box(self, x: float, y: float, label: int, sizes: dict) -> np.ndarray:
        """The clicked object's box in image pixels (x0, y0, x1, y1): SAM's from the click,
        as this detector returns it for every click (``sizes``: a box side per class id)."""
        return self._clicked(float(x), float(y), int(label), sizes)[0]

    def clicked_boxes(self, clicks: Clicks, sizes: dict) -> Detections:
        """Each click's object's own box (:meth:`clicked_box`) at score 1, in the clicks'
        order, and no look-alikes: what a click gets while the image's proposals are made."""
        boxes = [self.clicked_box(*xy, label, sizes) for xy, label in zip(clicks.xy, clicks.labels)]
        return Detections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.ones(len(boxes), np.float32),
            np.asarray(clicks.labels, np.int64).reshape(-1),
        )

    def tight_box(self, box) -> np.ndarray:
        """A proposal's ``box`` (image pixels) made tight by SAM: the box around SAM's mask
        for it as a box prompt, on the tile holding its centre
        (:func:`fewclick.predict.own_box.tight_box`)."""
        from fewclick.predict.own_box import tight_box

        if self._tiles is None:
            raise RuntimeError("call set_image(image) before tight_box()")
        box = np.asarray(box, np.float32).reshape(4)
        h, w = self._shape
        x = float(np.clip((box[0] + box[2]) / 2, 0, w - 1))
        y = float(np.clip((box[1] + box[3]) / 2, 0, h - 1))
        tile, _ = self._tile_of(x, y)
        self.sam.set_embedding(tile.embedding)
        return tight_box(self.sam, box, (tile.tile.x0, tile.tile.y0))

    def _clicked(self, x: float, y: float, label: int, sizes: dict) -> tuple[np.ndarray, torch.Tensor | None]:
        """The clicked object's box (image pixels) and its feature vector, cached per click.
        The vector is None when SAM finds no object there (an empty mask, or one over
        ``max_side`` of the tile: a click on background): such a click returns its own box
        and looks for nothing else."""
        key = (label, round(float(x), 1), round(float(y), 1))
        if key in self._objects:
            return self._objects[key]
        tile, unit = self._tile_of(x, y)
        lx, ly = x - tile.tile.x0, y - tile.tile.y0
        self.sam.set_embedding(tile.embedding)
        one = Clicks(np.array([[lx, ly]], np.float32), np.zeros(1, np.int64), np.ones(1, bool))
        limit = self.config.max_side * max(tile.tile.width, tile.tile.height)
        mask = self.sam.predict(clicks=one).mask
        ys, xs = np.nonzero(mask)
        usable = len(xs) and xs.max() - xs.min() < limit and ys.max() - ys.min() < limit
        if not usable and label in sizes:
            # a click on a pale centre (a red blood cell's) makes SAM take the background: ask
            # again within a box of the class's known size (from the user's boxes). Without a
            # known size no guess is made: boxes of a few sizes around such a click gave SAM's
            # surest answer on the pale centre itself, and hundreds of look-alikes of background
            half = 0.6 * float(sizes[label])
            again = self.sam.predict(box=[lx - half, ly - half, lx + half, ly + half], clicks=one)
            # an object, not the box filled with background: SAM sure of it, the box not full
            if again.score >= 0.8 and 0 < int(again.mask.sum()) < 0.9 * (2 * half) ** 2:
                mask = again.mask
                ys, xs = np.nonzero(mask)
                usable = True
        if usable:
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            cells = _cells(mask, tile.scale, unit.shape[-2:])
        else:
            half = float(sizes.get(label, self.config.default_side)) / 2
            box = np.array([lx - half, ly - half, lx + half, ly + half], np.float32)
            cells = None
        vector = None
        if cells is not None:
            if not cells.any():  # an object smaller than a cell: the cell under the click
                r, c = _cell(ly, tile.scale, unit.shape[1]), _cell(lx, tile.scale, unit.shape[2])
                cells[r, c] = True
            vector = F.normalize(unit[:, cells].mean(1), dim=0)
            # divided by its own peak, the click's map reads 1.0 where a cell is as like the
            # object as the object's most typical cell is (module docstring)
            vector = vector / (vector @ unit[:, cells]).max().clamp_min(1e-3)
        box = box + np.array([tile.tile.x0, tile.tile.y0] * 2, np.float32)
        box = np.clip(box, 0, [self._shape[1], self._shape[0]] * 2)
        self._objects[key] = (box, vector)
        return box, vector

    def _tile_of(self, x: float, y: float) -> tuple[TileFeatures, torch.Tensor]:
        """The tile whose centre is nearest the click among those holding it."""
        best = None
        for t, unit in self._tiles:
            tl = t.tile
            if tl.x0 <= x < tl.x1 and tl.y0 <= y < tl.y1:
                d = abs(x - (tl.x0 + tl.x1) / 2) + abs(y - (tl.y0 + tl.y1) / 2)
                if best is None or d < best[0]:
                    best = (d, t, unit)
        return best[1], best[2]

    def _peaks(self, tile: TileFeatures, unit: torch.Tensor, groups: dict) -> Detections:
        """Peaks of every clicked class's similarity map in one tile, in tile pixels
        (``groups``: :func:`_groups`)."""
        labels = sorted(groups)
        if not labels:
            return Detections.empty()
        rows, cols = tile.valid_cells(STRIDE)
        unit = unit[:, :rows, :cols]
        sim = torch.stack([torch.einsum("kd,dhw->khw", groups[label][0], unit).amax(0) for label in labels])
        best = sim.argmax(0)  # [h, w]: the class whose clicks a location resembles most
        boxes, scores, found = [], [], []
        for j, label in enumerate(labels):
            bw, bh = groups[label][1]
            radius = max(int(min(bw, bh) * tile.scale / STRIDE / 2), 1)
            m = torch.where(best == j, sim[j], torch.full_like(sim[j], -1.0))
            peak = m == F.max_pool2d(m[None, None], 2 * radius + 1, 1, radius)[0, 0]
            ok = peak & (m >= self.config.relative)
            r, c = torch.nonzero(ok, as_tuple=True)
            if not len(r):
                continue
            if len(r) > self.config.max_detections:  # the best ones only: the rest are never shown
                top = torch.topk(m[r, c], self.config.max_detections).indices
                r, c = r[top], c[top]
            xy = (_centres(m, r, c, radius) + 0.5) * STRIDE / tile.scale
            boxes.append(np.concatenate([xy - [bw / 2, bh / 2], xy + [bw / 2, bh / 2]], 1))
            scores.append(m[r, c].clamp_max(0.999).numpy())  # 1.0 is a clicked object
            found.append(np.full(len(r), label))
        if not boxes:
            return Detections.empty()
        b = np.clip(np.concatenate(boxes), 0, [tile.tile.width, tile.tile.height] * 2).astype(np.float32)
        return Detections(b, np.concatenate(scores).astype(np.float32), np.concatenate(found))


def _centres(sim: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, radius: int) -> np.ndarray:
    """Each peak's position (x, y) in cells, refined to the centroid of the cells around it
    within ``PLATEAU`` of its similarity: a uniform object gives a plateau, not a point."""
    h, w = sim.shape
    offsets = torch.arange(-radius, radius + 1)
    rr = (rows[:, None, None] + offsets[None, :, None]).expand(-1, -1, len(offsets))  # [P, K, K]
    cc = (cols[:, None, None] + offsets[None, None, :]).expand(-1, len(offsets), -1)
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    values = sim[rr.clamp(0, h - 1), cc.clamp(0, w - 1)]
    weight = (values - (sim[rows, cols] - PLATEAU)[:, None, None]).clamp_min(0) * inside
    total = weight.sum((1, 2))
    x = (weight * cc).sum((1, 2)) / total
    y = (weight * rr).sum((1, 2)) / total
    return torch.stack([x, y], 1).numpy().astype(np.float32)


def _groups(objects: list[ClickedObject]) -> dict[int, tuple[torch.Tensor, tuple[float, float]]]:
    """Per class with an object to look for: its objects' vectors ``[k, D]`` and the box
    size its look-alikes get (the median width and height of all its clicked objects')."""
    out = {}
    for label in sorted({o.label for o in objects if o.vector is not None}):
        vectors = torch.stack([o.vector for o in objects if o.label == label and o.vector is not None])
        sides = np.stack([o.box[2:] - o.box[:2] for o in objects if o.label == label])
        out[label] = (vectors, tuple(np.median(sides, 0)))
    return out


def _cell(v: float, scale: float, n: int) -> int:
    return int(np.clip(v * scale // STRIDE, 0, n - 1))


def _cells(mask: np.ndarray, scale: float, size: tuple[int, int]) -> torch.Tensor | None:
    """The stride-8 cells (of the encoder's input) whose centre lies in ``mask``."""
    h, w = mask.shape
    rows = ((np.arange(size[0]) + 0.5) * STRIDE / scale).astype(int)
    cols = ((np.arange(size[1]) + 0.5) * STRIDE / scale).astype(int)
    inside_r, inside_c = rows < h, cols < w
    out = np.zeros(size, bool)
    out[np.ix_(inside_r, inside_c)] = mask[np.ix_(rows[inside_r], cols[inside_c])]
    return torch.from_numpy(out)


def _not_on(found: Detections, clicked: np.ndarray) -> Detections:
    """``found`` without the detections centred inside the central half of a clicked box."""
    if not len(found):
        return found
    c = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    centre, half = (clicked[:, :2] + clicked[:, 2:]) / 2, (clicked[:, 2:] - clicked[:, :2]) / 4
    inside = (np.abs(c[:, None, :] - centre[None]) <= np.maximum(half[None], 1.0)).all(-1).any(1)
    return found[~inside]
