"""Training-free click-to-detect: correlate the clicked examples with the whole image.

Before a project has a trained detector, a click on an object still finds the others
that look like it: each click cuts a square example of ``size`` pixels around itself, the
example is correlated with the image (OpenCV's normalised cross-correlation), and the
peaks above ``threshold`` of each class's best correlation become boxes of that size.
Every click yields a detection of its class at the click (score 1). Images above
``max_pixels`` are correlated at a reduced scale. Same interface as ``ClickDetector``:
``set_image`` then ``predict(clicks)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from fewclick.io.images import to_rgb8
from fewclick.types import Clicks, Detections


class TemplateDetector:
    def __init__(
        self, num_classes: int, size: float = 32.0, threshold: float = 0.6, max_pixels: int = 2_000_000
    ):
        if num_classes < 1 or size < 4 or not 0 < threshold < 1:
            raise ValueError(
                f"expected num_classes >= 1, size >= 4 and 0 < threshold < 1, got {num_classes}, "
                f"{size}, {threshold}"
            )
        self.num_classes, self.size, self.threshold, self.max_pixels = (
            num_classes,
            size,
            threshold,
            max_pixels,
        )
        self._gray: np.ndarray | None = None
        self._scale = 1.0
        self._shape: tuple[int, int] = (0, 0)

    def set_image(self, image: np.ndarray) -> None:
        rgb = to_rgb8(np.asarray(image), name="image")
        h, w = rgb.shape[:2]
        self._shape = (h, w)
        self._scale = min(1.0, float(np.sqrt(self.max_pixels / (h * w))))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self._scale < 1:
            gray = cv2.resize(
                gray,
                (max(int(w * self._scale), 1), max(int(h * self._scale), 1)),
                interpolation=cv2.INTER_AREA,
            )
        self._gray = gray.astype(np.float32)

    def predict(self, clicks: Clicks | None = None, sizes: dict[int, float] | None = None) -> Detections:
        """Boxes of every object like a clicked one; ``sizes``: box side per class id."""
        if self._gray is None:
            raise RuntimeError("call set_image(image) before predict()")
        h, w = self._shape
        if clicks is None or len(clicks) == 0:
            return Detections.empty()
        for i, ((x, y), label) in enumerate(zip(clicks.xy, clicks.labels, strict=True)):
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"click {i} at ({x:g}, {y:g}) is outside the {w} x {h} image")
            if not 0 <= label < self.num_classes:
                raise ValueError(f"click {i} has class id {int(label)}; expected 0..{self.num_classes - 1}")
        found_xy, found_score, found_label, found_side = [], [], [], []
        for label in np.unique(clicks.labels):
            side = float((sizes or {}).get(int(label), self.size))
            mine = clicks.xy[clicks.labels == label]
            peaks, scores = self._peaks(mine, side)
            found_xy += [mine, peaks]
            found_score += [np.ones(len(mine)), scores]
            found_label += [np.full(len(mine) + len(peaks), label)]
            found_side += [np.full(len(mine) + len(peaks), side)]
        xy = np.concatenate(found_xy).astype(np.float32)
        scores = np.concatenate(found_score).astype(np.float32)
        labels = np.concatenate(found_label)
        side = np.concatenate(found_side)
        keep = _spread_out(xy, scores, side / 2)
        xy, scores, labels, side = xy[keep], scores[keep], labels[keep], side[keep]
        boxes = np.concatenate([xy - side[:, None] / 2, xy + side[:, None] / 2], 1)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        return Detections(boxes, scores, labels, points=xy)

    def _peaks(self, centres: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
        gray, s = self._gray, self._scale
        half = max(int(round(side * s / 2)), 2)
        best = None
        for x, y in centres * s:
            x0, y0 = int(round(x)) - half, int(round(y)) - half
            if x0 < 0 or y0 < 0 or x0 + 2 * half > gray.shape[1] or y0 + 2 * half > gray.shape[0]:
                continue  # an example cut by the image edge is not used
            example = gray[y0 : y0 + 2 * half, x0 : x0 + 2 * half]
            if example.std() < 1e-3:
                continue
            score = cv2.matchTemplate(gray, example, cv2.TM_CCOEFF_NORMED)
            best = score if best is None else np.maximum(best, score)
        if best is None:
            return np.zeros((0, 2)), np.zeros(0)
        window = max(2 * half - 1, 3)
        local_max = cv2.dilate(best, np.ones((window, window), np.uint8))
        ys, xs = np.nonzero((best >= local_max) & (best >= self.threshold))
        xy = (np.stack([xs, ys], 1) + half) / s
        return xy, best[ys, xs]


def _spread_out(xy: np.ndarray, scores: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Greedy by score: a point within ``radius`` of a kept one is dropped."""
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    dropped = np.zeros(len(xy), bool)
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if dropped[i]:
            continue
        kept.append(int(i))
        dropped[tree.query_ball_point(xy[i], float(radius[i]) - 1e-6)] = True
    return np.asarray(sorted(kept), np.int64)
