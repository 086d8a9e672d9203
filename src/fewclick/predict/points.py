"""Points mode: moving rough clicks to their objects' semantic centres.

- :class:`PointRefiner` runs a trained CPRNet: ``set_image(image)`` scores every feature
  cell once (tiled for large images); ``refine(points, labels)`` applies Algorithm 2 of the
  CPR paper to all annotated points of the image; ``snap(x, y, label)`` is the same for
  one new click among the image's other points (so the app can show where it lands).
- :func:`refine_points` is the job over a whole project: every image's points, refined.
- :func:`self_refine` is the paper's self-refinement baseline: each annotated point becomes
  the score-weighted mean of a localizer's predictions around it.

Algorithm 2: the bag of annotated point a (circles of radius 1..R feature cells) keeps the
points p with, for a's class k, ``S_p,k > delta1``, ``S_p,k > delta2 * S_a,k``, k the
arg-max class at p, and a the annotated point nearest to p (among the image's points
of every class: constraint III); the refined point is the ``S_p,k``-weighted mean of a
and the kept points.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from fewclick.models.cpr import CPRNet, bag_offsets, load_cprnet, normalise
from fewclick.types import Detections

__all__ = ["RefineConfig", "PointRefiner", "refine_points", "self_refine"]


@dataclass(frozen=True)
class RefineConfig:
    """Algorithm 2's thresholds (the paper's defaults) and the bag: ``radius`` R in feature
    cells (None: the radius the model was trained with), ``u0`` points per unit of radius.
    Images larger than ``tile`` pixels a side are scored in overlapping tiles."""

    delta1: float = 0.1
    delta2: float = 0.5
    radius: int | None = None
    u0: int = 8
    tile: int = 1024
    overlap: int = 128


class PointRefiner:
    """CPR refinement with a trained CPRNet (``PointRefiner.load(path)``)."""

    def __init__(self, net: CPRNet, classes: Sequence[str], radius: int, config: RefineConfig | None = None):
        self.net = net.eval()
        self.classes = list(classes)
        self.config = config or RefineConfig()
        self.radius = self.config.radius or radius
        self.offsets = bag_offsets(self.radius, self.config.u0)
        self._scores: np.ndarray | None = None  # float32[K, h, w] sigmoid class scores
        self._size: tuple[int, int] | None = None

    @classmethod
    def load(cls, path: str | Path, config: RefineConfig | None = None) -> PointRefiner:
        net, ckpt = load_cprnet(path)
        return cls(net, ckpt["classes"], int(ckpt["train"]["radius"]), config)

    @property
    def stride(self) -> int:
        return self.net.stride

    def set_image(self, image: np.ndarray) -> None:
        """Score every feature cell of ``image`` (HWC uint8 RGB, or HW grayscale)."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        if h < 8 or w < 8:
            raise ValueError(f"expected an image of at least 8 x 8 pixels, got {w} x {h}")
        self._scores = self._score(image)
        self._size = (h, w)

    def get_state(self) -> dict:
        return {"scores": self._scores, "size": self._size}

    def set_state(self, state: dict) -> None:
        self._scores, self._size = state["scores"], state["size"]

    def refine(self, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """All annotated points of the image ``float[N, 2]`` (x, y) with their class ids
        ``int[N]`` -> refined points ``float32[N, 2]``. A point outside the image is an
        error; a point whose bag keeps nothing stays where it is."""
        if self._scores is None or self._size is None:
            raise RuntimeError("call set_image(image) before refine()")
        pts, labels = self._check(points, labels)
        if len(pts) == 0:
            return pts
        s = self.stride
        scores = self._scores
        _, h, w = scores.shape
        cells = pts / s - 0.5
        own = _bilinear(scores, cells)  # [N, K]
        out = pts.copy()
        for j, (a, k) in enumerate(zip(cells, labels, strict=True)):
            bag = a + self.offsets
            bag = bag[(bag[:, 0] >= 0) & (bag[:, 0] <= w - 1) & (bag[:, 1] >= 0) & (bag[:, 1] <= h - 1)]
            if len(bag) == 0:
                continue
            s_bag = _bilinear(scores, bag)  # [U, K]
            s_k = s_bag[:, k]
            keep = (s_k > self.config.delta1) & (s_k > self.config.delta2 * own[j, k])
            keep &= s_bag.argmax(1) == k
            nearest = np.argmin(((bag[:, None, :] - cells[None]) ** 2).sum(-1), axis=1)
            keep &= nearest == j
            weights = np.concatenate([[own[j, k]], s_k[keep]])
            xy = np.concatenate([a[None], bag[keep]])
            if weights.sum() <= 0:
                continue
            centre = (weights[:, None] * xy).sum(0) / weights.sum()
            out[j] = (centre + 0.5) * s
        return out.astype(np.float32)

    def snap(
        self,
        x: float,
        y: float,
        label: int,
        others: np.ndarray | None = None,
        other_labels: np.ndarray | None = None,
    ) -> tuple[float, float]:
        """Where one new click at (x, y) of class ``label`` lands, with the image's other
        annotated points (``others float[M, 2]``, ``other_labels int[M]``) kept apart."""
        others = (
            np.zeros((0, 2), np.float32) if others is None else np.asarray(others, np.float32).reshape(-1, 2)
        )
        other_labels = np.zeros(0, np.int64) if other_labels is None else np.asarray(other_labels, np.int64)
        pts = np.concatenate([[[x, y]], others]).astype(np.float32)
        labels = np.concatenate([[label], other_labels]).astype(np.int64)
        refined = self.refine(pts, labels)
        return float(refined[0, 0]), float(refined[0, 1])

    def _check(self, points, labels) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(pts):
            raise ValueError(f"expected one class id per point ({len(pts)}), got {len(labels)}")
        labels = labels.astype(np.int64)
        bad = (labels < 0) | (labels >= len(self.classes))
        if bad.any():
            raise ValueError(
                f"point {int(np.flatnonzero(bad)[0])} has class id {int(labels[bad][0])}; "
                f"expected 0..{len(self.classes) - 1} ({', '.join(self.classes)})"
            )
        h, w = self._size
        outside = (
            ~np.isfinite(pts).all(1) | (pts[:, 0] < 0) | (pts[:, 1] < 0) | (pts[:, 0] > w) | (pts[:, 1] > h)
        )
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"point {i} at ({pts[i, 0]:g}, {pts[i, 1]:g}) is outside the {w} x {h} image")
        return pts, labels

    @torch.no_grad()
    def _score(self, image: np.ndarray) -> np.ndarray:
        s, cfg = self.stride, self.config
        h, w = image.shape[:2]
        hc, wc = -(-h // s), -(-w // s)
        out = np.zeros((len(self.classes), hc, wc), np.float32)
        step = cfg.tile - cfg.overlap
        ys = [0] if h <= cfg.tile else list(range(0, h - cfg.overlap, step))
        xs = [0] if w <= cfg.tile else list(range(0, w - cfg.overlap, step))
        for y0 in ys:
            for x0 in xs:
                # tiles start on the feature grid; the last one reaches the image edge
                y0c = min(y0, max(h - cfg.tile, 0)) // s * s
                x0c = min(x0, max(w - cfg.tile, 0)) // s * s
                part = image[y0c : y0c + cfg.tile + s, x0c : x0c + cfg.tile + s]
                logits = self.net.class_logits(_pad16(part))[0]
                scores = torch.sigmoid(logits).numpy()
                # keep each tile's interior: half the overlap in from a shared edge
                ky0 = 0 if y0c == 0 else (y0c + cfg.overlap // 2) // s
                kx0 = 0 if x0c == 0 else (x0c + cfg.overlap // 2) // s
                ty, tx = y0c // s, x0c // s
                ph, pw = min(-(-part.shape[0] // s), hc - ty), min(-(-part.shape[1] // s), wc - tx)
                out[:, ky0 : ty + ph, kx0 : tx + pw] = scores[:, ky0 - ty : ph, kx0 - tx : pw]
        return out


def _pad16(pixels: np.ndarray) -> torch.Tensor:
    h, w = pixels.shape[:2]
    ph, pw = -h % 16, -w % 16
    if ph or pw:
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)))
    return torch.from_numpy(normalise(pixels)[None])


def _bilinear(maps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values ``[N, K]`` of ``maps [K, h, w]`` at cell coordinates ``xy [N, 2]`` (x, y)."""
    coords = np.stack([xy[:, 1], xy[:, 0]])
    return np.stack([ndimage.map_coordinates(m, coords, order=1, mode="nearest") for m in maps], 1)


def refine_points(
    refiner: PointRefiner,
    items: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    total: int | None = None,
) -> list[np.ndarray]:
    """The job over a project: ``(image, points float[N, 2], labels int[N])`` per image ->
    refined points per image, with a progress bar. An image without points gives ``[0, 2]``."""
    out = []
    for image, points, labels in tqdm(items, total=total, desc="refine points", unit="image"):
        if len(points) == 0:
            out.append(np.zeros((0, 2), np.float32))
            continue
        refiner.set_image(image)
        out.append(refiner.refine(points, labels))
    return out


def self_refine(points: np.ndarray, labels: np.ndarray, predictions: Detections, radius: float) -> np.ndarray:
    """Self-refinement: each annotated point ``float[N, 2]`` of class ``labels[i]`` becomes
    the score-weighted mean of the predicted points of its class within ``radius`` pixels
    that have it as their nearest annotated point (of that class); with none, it stays."""
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    labels = np.asarray(labels, np.int64).reshape(-1)
    out = pts.copy()
    if len(pts) == 0 or len(predictions) == 0:
        return out
    pred_xy = (
        predictions.points
        if predictions.points is not None
        else ((predictions.boxes[:, :2] + predictions.boxes[:, 2:]) / 2)
    )
    for k in np.unique(labels):
        mine = np.flatnonzero(labels == k)
        p = predictions.labels == k
        if not p.any():
            continue
        xy, score = pred_xy[p], predictions.scores[p]
        d = np.sqrt(((xy[:, None, :] - pts[mine][None]) ** 2).sum(-1))  # [P, N_k]
        nearest = d.argmin(1)
        for col, j in enumerate(mine):
            take = (nearest == col) & (d[:, col] <= radius)
            if take.any():
                wgt = score[take]
                out[j] = (wgt[:, None] * xy[take]).sum(0) / wgt.sum()
    return out
