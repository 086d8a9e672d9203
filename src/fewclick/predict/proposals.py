"""Class-agnostic object proposals: SAM prompted all over an image, before any click (issue 52).

A click should find every object like the clicked one, each with its own box. SAM already
segments objects from single points; what it needs is the points. Per window of the image:

1. **Prompt points** (:func:`prompt_points`): the local extrema of a multi-scale Laplacian
   of Gaussian of the window's grey levels, bright and dark blobs of 6 to 110 px of SAM's
   input, and a coarse grid for what has no blob. The blobs at scales within a factor of 2
   of the image's objects (:func:`object_size`) come first, strongest first; the other
   scales after, taking turns (finest first). Small objects are what the person clicks in
   these images, and a blob detector puts a point on each of them where a uniform grid of
   the same cost misses them between its points. On the dsb2018 train images, spending the
   prompts on the objects' scales first (rather than letting the finest scales' grain take
   its turns) raised the share of nuclei some proposal boxes at IoU 0.7 from 0.38 to 0.75
   and from 0.54 to 0.83 on the two densest of five, at the same 320 prompts.
2. **SAM's decoder in batches, near each click** (:class:`LocalDecoder`): SAM's decoder in
   torch answers :data:`BATCH` points at once with three candidate masks each (low-resolution
   logits over the padded input) and their predicted IoUs, each point attending only to the
   embedding around it. A point inside the smallest kept candidate of an earlier point is not
   asked again (several blobs of one object ask SAM once), and costs nothing: a window asks
   at most ``limit`` points that nothing covered yet. It stops sooner once its latest
   prompts keep nothing (:data:`IDLE_PROMPTS` in a row, or :data:`IDLE_SHARE` of those
   asked before them, whichever is more): the prompts go strongest blob first, and in the
   21 windows of dsb2018's first 6 train images half of the objects some candidate boxed
   at IoU 0.7 were found by the 16th prompt and 90 % by the 50th, of 320 (an exploratory
   probe, session 70). On the test images of ``benchmarks/lookalikes.py`` the windows asked
   126 prompts (median) instead of 320 on dsb2018, 232 on bccd; the first click's recall
   at IoU 0.7 went from 0.600 to 0.587 on dsb2018 and from 0.146 to 0.157 on bccd
   (``docs/benchmarks/proposals_stages.md``).
3. **Kept** when SAM predicts IoU >= :data:`MIN_IOU`, the mask is stable (the logits' area
   above +1 over the area above -1, >= :data:`MIN_STABILITY`, as SAM's automatic mask
   generator measures it) and covers less than :data:`MAX_AREA` of the window; then
   duplicates go by box NMS at :data:`NMS_IOU`, surest first.
4. Each proposal keeps its box (image pixels, from its mask brought to the image's
   resolution), its mask (a crop at that box), SAM's score and a feature vector: the
   encoder's unit features at stride 8 (:func:`~fewclick.predict.similar.similarity_features`)
   averaged over the mask, normalised. :mod:`fewclick.predict.lookalike` matches them to
   the clicked objects.

**Windows.** An image goes in windows of ``window`` pixels (overlapping by a quarter), each
enlarged to SAM's 1024 px input, so that an object of 20 px in a 400 px window spans 51 px of
SAM's input instead of 18 px of a whole 1111 px image. A proposal cut by a window's inner
edge gives way to the same object seen whole by the next window (NMS over all windows).
With ``window`` None the side is the image's own (:func:`~fewclick.predict.prompts.auto_window`):
its objects' size is read from the Laplacian's strongest scale
(:func:`~fewclick.predict.prompts.object_size`), and the window is the one in which they span
64 px of SAM's input (at SAM's 1x scale, dense 20 px nuclei come back as one mask of the
whole tissue; at 3x, one mask each).

**Groups.** A candidate holding two or more smaller proposals (each mostly inside it) is a
group of objects, not one: it goes (:func:`~fewclick.predict.proposal_groups.without_groups`).
SAM answers a point on one of two touching nuclei with both as often as with one.
"""

from __future__ import annotations

import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision

from fewclick.io.images import to_rgb8
from fewclick.io.tiling import tile_grid
from fewclick.predict.encoder import Embedding, ImageEncoder
from fewclick.predict.features import TileFeatures, each_tile_features, nearest_tile_features
from fewclick.predict.local_decoder import BATCH, LocalDecoder
from fewclick.predict.prompts import CELL, LOW_RES, MAX_POINTS, auto_window, object_size, prompt_points
from fewclick.predict.proposal_groups import without_groups
from fewclick.predict.similar import STRIDE, similarity_features
from fewclick.predict.stage_clock import StageClock, timed

MIN_IOU = 0.7
MIN_STABILITY = 0.85
STABILITY_OFFSET = 1.0
MAX_AREA = 0.25
NMS_IOU = 0.7
IDLE_PROMPTS = 32  # a window stops asking after this many prompts in a row kept nothing ...
IDLE_SHARE = 0.5  # ... or this share of the prompts asked before them, if more (module docstring)
EDGE = 2.0  # image pixels: a box this close to a window's inner edge is cut by it


@dataclass
class Proposals:
    """An image's proposals, columnar: ``boxes float32[N, 4]`` XYXY image pixels, ``scores
    float32[N]`` (SAM's predicted IoU times stability), ``vectors float32[N, D]`` unit feature
    vectors, ``masks`` N crops ``(x0, y0, bool[h, w])`` at their boxes; ``background
    float32[D]`` the unit mean of the features no proposal covers (what a look-alike must
    be less like than it is like the clicked object); ``image_size`` (H, W); ``prompts`` the
    points SAM was asked."""

    boxes: np.ndarray
    scores: np.ndarray
    vectors: np.ndarray
    masks: list
    background: np.ndarray
    image_size: tuple[int, int]
    prompts: int = 0

    @classmethod
    def empty(cls, dim: int, image_size: tuple[int, int]) -> Proposals:
        """No proposals, for vectors of ``dim`` features."""
        vectors, background = np.zeros((0, dim), np.float32), np.zeros(dim, np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), vectors, [], background, image_size)

    def __len__(self) -> int:
        return len(self.boxes)

    def areas(self) -> np.ndarray:
        """``float32[N]``: each proposal's mask area in image pixels."""
        return np.array([float(m.sum()) for _, _, m in self.masks], np.float32).reshape(-1)

    def take(self, index: np.ndarray) -> Proposals:
        index = np.asarray(index, np.int64).reshape(-1)
        return Proposals(
            self.boxes[index],
            self.scores[index],
            self.vectors[index],
            [self.masks[i] for i in index],
            self.background,
            self.image_size,
            self.prompts,
        )

    def save(self, path: str | Path) -> None:
        """One ``.npz`` (masks packed as bits), written whole or not at all: under a name of
        this process and thread first, so that two writers of one image never share a file
        (the last to finish wins whole)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        origins = np.array([[x, y, *m.shape] for x, y, m in self.masks], np.int64).reshape(-1, 4)
        bits = (
            np.packbits(np.concatenate([m.reshape(-1) for _, _, m in self.masks]))
            if self.masks
            else np.zeros(0, np.uint8)
        )
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    boxes=self.boxes,
                    scores=self.scores,
                    vectors=self.vectors,
                    origins=origins,
                    bits=bits,
                    background=self.background,
                    image_size=np.array(self.image_size),
                    prompts=np.array(self.prompts),
                )
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path) -> Proposals:
        """The proposals :meth:`save` wrote to ``path``; FileNotFoundError when there are none,
        ValueError naming the file when it is not whole (torn, or another kind of file)."""
        try:
            return cls._read(path)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a whole proposals file ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _read(cls, path: str | Path) -> Proposals:
        with np.load(path) as z:
            origins, flat = z["origins"], np.unpackbits(z["bits"]).astype(bool)
            masks, at = [], 0
            for x, y, h, w in origins:
                masks.append((int(x), int(y), flat[at : at + h * w].reshape(h, w)))
                at += h * w
            return cls(
                z["boxes"],
                z["scores"],
                z["vectors"],
                masks,
                z["background"],
                tuple(int(v) for v in z["image_size"]),
                int(z["prompts"]),
            )


class ProposalMaker:
    """Proposals of whole images (module docstring). ``encoder`` the shared
    :class:`ImageEncoder`; ``decoder`` a :class:`LocalDecoder` (made on first use);
    ``window`` the side, in image pixels, of the windows an image is cut into; ``limit`` the
    prompts a window at most."""

    def __init__(
        self,
        encoder: ImageEncoder,
        decoder: LocalDecoder | None = None,
        window: int | None = 1024,
        limit: int = MAX_POINTS,
    ) -> None:
        if window is not None and window < 64:
            raise ValueError(f"expected a window of 64 px or more, got {window}")
        if limit < 1:
            raise ValueError(f"expected a limit of 1 prompt or more, got {limit}")
        self.encoder, self._decoder, self.limit = encoder, decoder, int(limit)
        self.window = None if window is None else int(window)

    @property
    def decoder(self) -> LocalDecoder:
        if self._decoder is None:
            self._decoder = LocalDecoder()
        return self._decoder

    def window_for(self, image: np.ndarray) -> int:
        """The side of ``image``'s windows: the maker's, else :func:`auto_window`'s."""
        return self.window if self.window is not None else auto_window(image)

    def __call__(
        self,
        image: np.ndarray,
        key: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        clock: StageClock | None = None,
        each_window: Callable[[Proposals], None] | None = None,
    ) -> Proposals:
        """The proposals of ``image`` (``uint8[H, W, 3]`` or what :func:`to_rgb8` takes),
        its windows encoded under ``key``; ``progress(done, windows)`` is called once the
        windows are counted (0 done) and after each window is encoded and asked;
        ``each_window(proposals)`` after each window but the last, with the proposals of the
        windows done so far (a page shows them as they come); ``clock`` (when given) is
        charged the seconds of each stage, per window."""
        image = to_rgb8(np.asarray(image), name="image")
        h, w = image.shape[:2]
        with timed(clock, "prompts"):
            side = object_size(image)
        window = self.window if self.window is not None else auto_window(image, side)
        windows = len(tile_grid(w, h, window, window // 4))
        tiles = each_tile_features(self.encoder, image, key, tile=window, overlap=window // 4)
        parts, uncovered, prompts = [], [], 0
        if progress is not None:
            progress(0, windows)
        for tile in _encoded(tiles, clock):
            with timed(clock, "prompts"):
                pixels = cv2.resize(
                    image[tile.tile.y0 : tile.tile.y1, tile.tile.x0 : tile.tile.x1],
                    tile.embedding.input_size[::-1],
                    interpolation=cv2.INTER_AREA,
                )
                points = prompt_points(pixels, None, side * tile.scale)
            found = self._window(tile, points, (h, w), side * tile.scale, clock)
            parts.append(found[:4])
            uncovered.append(found[4])
            prompts += found[5]
            if each_window is not None and len(parts) < windows:
                with timed(clock, "nms"):
                    so_far = _assembled(parts, uncovered, prompts, (h, w))
                each_window(so_far)
            if progress is not None:
                progress(len(parts), windows)
        with timed(clock, "nms"):
            return _assembled(parts, uncovered, prompts, (h, w))

    def click(self, image: np.ndarray, x: float, y: float, key: str | None = None) -> Proposals:
        """The clicked object as one proposal, for a click no proposal holds: SAM's surest
        candidate at (x, y) in the window whose centre is nearest, whatever its score; none
        when SAM finds nothing there or only most of the window."""
        image = to_rgb8(np.asarray(image), name="image")
        h, w = image.shape[:2]
        window = self.window_for(image)
        # that window alone is encoded: a click while the image's proposals are being made
        # does not wait for the windows not searched yet
        tile = nearest_tile_features(self.encoder, image, x, y, key, tile=window, overlap=window // 4)
        if tile is None:
            raise ValueError(f"click ({x:.1f}, {y:.1f}) is outside the {w} x {h} image")
        e = tile.embedding
        rows, cols = (-(-s // CELL) for s in e.input_size)
        point = np.array([[(x - tile.tile.x0) * tile.scale, (y - tile.tile.y0) * tile.scale]], np.float32)
        logits, iou = self.decoder(e.embedding, point)
        logits = logits[0, :, :rows, :cols]
        area = (logits > 0).sum((1, 2))
        usable = (area > 0) & (area < MAX_AREA * rows * cols)
        unit = similarity_features(tile).numpy()
        k = int(np.argmax(np.where(usable, iou[0], -np.inf)))
        made = _in_image(logits[k], tile) if usable.any() else None
        if made is None:
            return Proposals.empty(unit.shape[0], (h, w))
        box, mask = made
        vector = _pooled(unit, logits[k] > 0)
        origin = (int(box[0]), int(box[1]), mask)
        return Proposals(
            box[None], iou[0, k : k + 1], vector[None], [origin], np.zeros_like(vector), (h, w), 1
        )

    def _window(
        self,
        tile: TileFeatures,
        points: np.ndarray,
        size: tuple[int, int],
        side: float,
        clock: StageClock | None = None,
    ):
        """One window's kept proposals ``(boxes, scores, vectors, masks)`` in image pixels, the
        features no proposal covers, ``float32[K, D]``, and the prompts asked: the first
        ``limit`` of ``points`` that no earlier answer covers (a covered point costs nothing);
        ``side`` the objects' side in SAM-input pixels; ``clock`` charged per stage."""
        started = time.perf_counter()
        decoding = 0.0
        e: Embedding = tile.embedding
        rows, cols = (-(-s // CELL) for s in e.input_size)
        covered = np.zeros((rows, cols), bool)
        kept_logits, kept_scores, asked, idle = [], [], 0, 0
        for start in range(0, len(points), BATCH):
            if asked >= self.limit or idle >= max(IDLE_PROMPTS, IDLE_SHARE * (asked - idle)):
                break
            batch = points[start : start + BATCH]
            cells = np.floor(batch / CELL).astype(np.int64)
            batch = batch[~covered[cells[:, 1].clip(0, rows - 1), cells[:, 0].clip(0, cols - 1)]]
            batch = batch[: self.limit - asked]
            if not len(batch):
                continue
            asked += len(batch)
            called = time.perf_counter()
            logits, iou = self.decoder(e.embedding, batch, side)
            decoding += time.perf_counter() - called
            logits = logits.reshape(-1, LOW_RES, LOW_RES)[:, :rows, :cols]
            iou = iou.reshape(-1)
            inner = (logits > STABILITY_OFFSET).sum((1, 2))
            outer = (logits > -STABILITY_OFFSET).sum((1, 2))
            stability = inner / np.maximum(outer, 1)
            area = (logits > 0).sum((1, 2))
            keep = (
                (iou >= MIN_IOU) & (stability >= MIN_STABILITY) & (area > 0) & (area < MAX_AREA * rows * cols)
            )
            for k in np.nonzero(keep)[0]:
                kept_logits.append(logits[k])
                kept_scores.append(float(iou[k] * stability[k]))
            # a point inside what a prompt found is not asked again; only its smallest kept
            # candidate counts, the object, not a group of objects around it
            for prompt in range(len(batch)):
                mine = [c for c in range(3) if keep[3 * prompt + c]]
                if mine:
                    covered |= logits[3 * prompt + min(mine, key=lambda c: area[3 * prompt + c])] > 0
            idle = 0 if keep.any() else idle + len(batch)
        if clock is not None:
            clock.asked(asked)
            clock.charge("decode", decoding)
            clock.charge("select", time.perf_counter() - started - decoding)
        with timed(clock, "features"):
            return self._kept(tile, size, covered, kept_logits, kept_scores, asked)

    @staticmethod
    def _kept(tile: TileFeatures, size: tuple[int, int], covered, kept_logits, kept_scores, asked: int):
        """:meth:`_window`'s answer from the candidates it kept: their boxes, masks and
        features, and the features of the cells nothing covered."""
        e: Embedding = tile.embedding
        rows, cols = (-(-s // CELL) for s in e.input_size)
        unit = similarity_features(tile).numpy()  # [D, h8, w8]
        # the logits' grid of the whole padded input, brought to the features' (both start at
        # the input's top left corner): only the window's own part is stretched otherwise
        canvas = np.zeros((LOW_RES, LOW_RES), np.uint8)
        canvas[:rows, :cols] = covered
        free = cv2.resize(canvas, unit.shape[:0:-1], interpolation=cv2.INTER_NEAREST) == 0
        free[-(-e.input_size[0] // STRIDE) :] = False
        free[:, -(-e.input_size[1] // STRIDE) :] = False
        uncovered = unit[:, free].T if free.any() else np.zeros((0, unit.shape[0]), np.float32)
        boxes, scores, vectors, masks = [], [], [], []
        for logits, score in zip(kept_logits, kept_scores):
            made = _in_image(logits, tile)
            if made is None:
                continue
            box, mask = made
            if _cut(box, tile, size):
                continue
            boxes.append(box)
            scores.append(score)
            vectors.append(_pooled(unit, logits > 0))
            masks.append((int(box[0]), int(box[1]), mask))
        return (
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(scores, np.float32),
            np.asarray(vectors, np.float32).reshape(len(boxes), unit.shape[0]),
            masks,
            uncovered,
            asked,
        )


def _assembled(parts: list, uncovered: list, prompts: int, size: tuple[int, int]) -> Proposals:
    """The image's proposals from its windows' (``parts``: boxes, scores, vectors, masks of
    each), duplicates across windows gone (NMS), then the groups of objects."""
    boxes = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
    scores = np.concatenate([p[1] for p in parts])
    vectors = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, 1), np.float32)
    masks = [m for p in parts for m in p[3]]
    keep = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), NMS_IOU).numpy()
    background = _unit(np.concatenate(uncovered).sum(0))
    found = Proposals(
        boxes[keep], scores[keep], vectors[keep], [masks[i] for i in keep], background, size, prompts
    )
    return without_groups(found)


def _encoded(tiles: Iterable[TileFeatures], clock: StageClock | None) -> Iterator[TileFeatures]:
    """``tiles`` (encoded as each is asked for), each a window of ``clock``'s (when given)
    whose encoding is charged to it."""
    it = iter(tiles)
    while True:
        started = time.perf_counter()
        tile = next(it, None)
        if tile is None:
            return
        if clock is not None:
            clock.start_window()
            clock.charge("encode", time.perf_counter() - started)
        yield tile
        if clock is not None:
            clock.end_window()


def _in_image(logits: np.ndarray, tile: TileFeatures) -> tuple[np.ndarray, np.ndarray] | None:
    """A candidate's box (image pixels, integers) and its mask at that box, from its
    low-resolution logits brought to the image's resolution around it; None when nothing of
    it is left at that resolution."""
    ys, xs = np.nonzero(logits > 0)
    r0, r1 = max(ys.min() - 2, 0), min(ys.max() + 3, logits.shape[0])
    c0, c1 = max(xs.min() - 2, 0), min(xs.max() + 3, logits.shape[1])
    per_cell = CELL / tile.scale  # image pixels a logit cell
    width = max(int(round((c1 - c0) * per_cell)), 1)
    height = max(int(round((r1 - r0) * per_cell)), 1)
    patch = cv2.resize(logits[r0:r1, c0:c1], (width, height), interpolation=cv2.INTER_LINEAR) > 0
    py, px = np.nonzero(patch)
    if not len(px):
        return None
    x0 = tile.tile.x0 + c0 * per_cell
    y0 = tile.tile.y0 + r0 * per_cell
    box = np.array([px.min(), py.min(), px.max() + 1, py.max() + 1], np.float32) + [x0, y0, x0, y0]
    box = np.round(np.clip(box, 0, [tile.tile.x1, tile.tile.y1] * 2))
    # the mask at the box as clipped: a candidate's edge cell may reach past the window
    left, top = int(round(box[0] - x0)), int(round(box[1] - y0))
    mask = patch[top : top + int(box[3] - box[1]), left : left + int(box[2] - box[0])]
    if not mask.any():
        return None
    return box.astype(np.float32), mask


def _cut(box: np.ndarray, tile: TileFeatures, size: tuple[int, int]) -> bool:
    """Whether ``box`` touches an edge of the window that is not the image's (``size`` (H, W))."""
    t = tile.tile
    inner = [t.x0 > 0, t.y0 > 0, t.x1 < size[1], t.y1 < size[0]]
    return bool(
        (inner[0] and box[0] <= t.x0 + EDGE)
        or (inner[1] and box[1] <= t.y0 + EDGE)
        or (inner[2] and box[2] >= t.x1 - EDGE)
        or (inner[3] and box[3] >= t.y1 - EDGE)
    )


def _pooled(unit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The unit mean of ``unit`` ``[D, h, w]`` over ``mask`` (logit cells), by area."""
    weights = cv2.resize(
        mask.astype(np.float32), None, fx=CELL / STRIDE, fy=CELL / STRIDE, interpolation=cv2.INTER_AREA
    )
    h, w = min(weights.shape[0], unit.shape[1]), min(weights.shape[1], unit.shape[2])
    weights = weights[:h, :w]
    if weights.sum() <= 0:
        cy, cx = np.argwhere(mask).mean(0) * CELL / STRIDE
        weights = np.zeros((h, w), np.float32)
        weights[min(int(cy), h - 1), min(int(cx), w - 1)] = 1.0
    return _unit(np.einsum("dhw,hw->d", unit[:, :h, :w], weights))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-8)).astype(np.float32)
