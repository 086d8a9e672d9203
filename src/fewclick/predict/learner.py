"""A fast learner of the person's objects (issue 68, item 2): refit on every finished image in
about a second, on frozen features of the candidates SAM proposed there.

As TFA fits a classifier and a box regressor over a frozen detector, per class:

- a **scorer**: would the person keep this candidate as class c? A logistic regression over
  the candidate's features (:func:`candidate_features`); its positives are the candidates
  of the finished images that overlap one of the person's boxes of the class at IoU >=
  ``positive_iou``, its negatives every other candidate (other classes' objects, the
  background, parts and groups of objects).
- a **box regressor** from a positive candidate's box to the person's box, the person's
  convention: a ridge regression of the four deltas of Fast R-CNN (centre shift in box sides,
  log size ratio) over the same features.

Images weigh by their age (``half_life`` images): a person who changes how they draw boxes
is followed by the recent images. A class with fewer than ``min_positives`` positives, or
with no negative, has no model and proposes nothing.

On an image, each candidate goes to the class it scores best in, its box moved by that
class's regressor; the candidates of one class left overlapping a surer one at IoU >=
``nms_iou`` go (a part and its whole both scored as the object).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision

from fewclick.metrics.detection import box_iou
from fewclick.predict.proposals import Proposals
from fewclick.types import Detections, Objects

GEOMETRY = 6  # features after the vector: SAM's score, log w, log h, log aspect, fill, log area


@dataclass(frozen=True)
class LearnerConfig:
    positive_iou: float = 0.5
    min_positives: int = 2
    half_life: float = 8.0  # images: the weight of an image this many images old halves
    C: float = 1.0  # the scorer's inverse regularisation
    ridge: float = 10.0  # the regressor's penalty, on standardised features
    nms_iou: float = 0.5
    regress: bool = True
    vectors: bool = True  # the SAM feature vector among the features (else geometry alone)


@dataclass
class ClassModel:
    weights: np.ndarray  # [F + 1] the scorer's, bias last
    deltas: np.ndarray | None  # [F + 1, 4] the regressor's, bias last (None: boxes kept)
    positives: int
    negatives: int


@dataclass
class FastLearner:
    """Per-class scorers and box regressors (module docstring); :meth:`fit` then :meth:`predict`."""

    config: LearnerConfig = field(default_factory=LearnerConfig)
    models: dict[int, ClassModel] = field(default_factory=dict)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    fit_s: float = 0.0

    def fit(
        self, examples: Sequence[tuple[Proposals, Objects]], regress_on: Sequence[bool] | None = None
    ) -> FastLearner:
        """Refit on ``examples``, oldest first: each finished image's candidates and the
        person's objects there (ignored ones left out). ``regress_on`` (one per example,
        default all): whether an example's boxes are the person's own, for the regressor to
        learn their convention from (a clicked proposal's box is SAM's, not theirs)."""
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        cfg = self.config
        rows, targets, matched, weights = [], [], [], []
        own = list(regress_on) if regress_on is not None else [True] * len(examples)
        for age, ((found, gt), theirs) in enumerate(zip(reversed(list(examples)), reversed(own))):
            if not len(found):
                continue
            rows.append(candidate_features(found, cfg.vectors))
            label, box = _matches(found, gt, cfg.positive_iou)
            targets.append(label)
            deltas = _deltas(found.boxes, box)
            matched.append(deltas if theirs else np.full_like(deltas, np.nan))
            weights.append(np.full(len(found), 0.5 ** (age / cfg.half_life)))
        self.models = {}
        if not rows:
            self.fit_s = time.perf_counter() - started
            return self
        x, y, t, w = (
            np.concatenate(rows),
            np.concatenate(targets),
            np.concatenate(matched),
            np.concatenate(weights),
        )
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mean) / self.scale
        for c in np.unique(y[y >= 0]).astype(int):
            positive = y == c
            if positive.sum() < cfg.min_positives or positive.all():
                continue
            scorer = LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=500)
            scorer.fit(z, positive, sample_weight=w)
            weights_c = np.append(scorer.coef_[0], scorer.intercept_[0])
            boxed = positive & np.isfinite(t).all(1)  # the person's own boxes (regress_on)
            deltas = _ridge(z[boxed], t[boxed], w[boxed], cfg.ridge) if cfg.regress and boxed.any() else None
            self.models[c] = ClassModel(weights_c, deltas, int(positive.sum()), int((~positive).sum()))
        self.fit_s = time.perf_counter() - started
        return self

    def predict(self, found: Proposals) -> Detections:
        """The candidates of ``found`` as detections: per candidate its best class's score
        and box (module docstring), surest first."""
        if not self.models or not len(found):
            return Detections.empty()
        z = (candidate_features(found, self.config.vectors) - self.mean) / self.scale
        z1 = np.concatenate([z, np.ones((len(z), 1))], 1)
        classes = sorted(self.models)
        logits = np.stack([z1 @ self.models[c].weights for c in classes], 1)
        best = logits.argmax(1)
        scores = 1.0 / (1.0 + np.exp(-logits[np.arange(len(z)), best]))
        labels = np.asarray(classes, np.int64)[best]
        boxes = found.boxes.astype(np.float32).copy()
        for k, c in enumerate(classes):
            mine, deltas = best == k, self.models[c].deltas
            if deltas is not None and mine.any():
                boxes[mine] = _moved(found.boxes[mine], z1[mine] @ deltas)
        keep = torchvision.ops.batched_nms(
            torch.from_numpy(boxes), torch.from_numpy(scores.astype(np.float32)),
            torch.from_numpy(labels), self.config.nms_iou,
        ).numpy()  # fmt: skip
        return Detections(boxes[keep], scores[keep].astype(np.float32), labels[keep])

    def move(self, found: Proposals, labels: np.ndarray) -> np.ndarray:
        """``found``'s boxes moved to the person's convention by the regressor of each one's
        class ``labels`` (a class without one leaves its boxes as they are)."""
        boxes = found.boxes.astype(np.float32).copy()
        if not len(found) or self.mean is None:
            return boxes
        z = (candidate_features(found, self.config.vectors) - self.mean) / self.scale
        z1 = np.concatenate([z, np.ones((len(z), 1))], 1)
        for c in np.unique(labels):
            model = self.models.get(int(c))
            mine = np.asarray(labels) == c
            if model is not None and model.deltas is not None:
                boxes[mine] = _moved(found.boxes[mine], z1[mine] @ model.deltas)
        return boxes


def convention(
    examples: Sequence[tuple[Proposals, Objects]], positive_iou: float = 0.5, recent: int = 3
) -> dict[int, dict]:
    """Per class, how the person's boxes sit on SAM's candidates in ``examples`` (oldest
    first): the median ratio of their widths and heights to the matched candidates' (``wide``,
    ``tall``; 1.2: a fifth larger), over every example and over the ``recent`` newest
    (``recent_wide``, ``recent_tall``), with the objects matched (``objects``). What the box
    regressor learns, said in words a person can check (a change of convention shows as
    recent ratios apart from the others)."""
    per_class: dict[int, list] = {}
    for k, (found, gt) in enumerate(examples):
        if not len(found):
            continue
        label, box = _matches(found, gt, positive_iou)
        w, h = _sides(found.boxes)
        tw, th = _sides(np.where(np.isfinite(box), box, 0))
        for c in np.unique(label[label >= 0]).astype(int):
            mine = label == c
            per_class.setdefault(c, []).append((k, tw[mine] / w[mine], th[mine] / h[mine]))
    out = {}
    newest = len(examples) - recent

    def median(parts: list, i: int) -> float:
        return round(float(np.median(np.concatenate([p[i] for p in parts]))), 3)

    for c, parts in per_class.items():
        matched = sum(len(p[1]) for p in parts)
        out[c] = {"wide": median(parts, 1), "tall": median(parts, 2), "objects": matched}
        late = [p for p in parts if p[0] >= newest]
        if late:
            out[c]["recent_wide"], out[c]["recent_tall"] = median(late, 1), median(late, 2)
    return out


def candidate_features(found: Proposals, vectors: bool = True) -> np.ndarray:
    """``float64[N, F]``: each candidate's SAM feature vector (pooled in its mask; with
    ``vectors``), then :data:`GEOMETRY` numbers: SAM's score, log width, log height, log
    aspect, the share of its box its mask fills, log mask area."""
    b = found.boxes.astype(np.float64)
    w, h = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
    area = np.maximum(found.areas().astype(np.float64), 1.0)
    geometry = np.stack([found.scores, np.log(w), np.log(h), np.log(w / h), area / (w * h), np.log(area)], 1)
    if not vectors:
        return geometry
    return np.concatenate([found.vectors.astype(np.float64), geometry], 1)


def _matches(found: Proposals, gt: Objects, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate, the class of the object it overlaps most at IoU >= ``iou`` (-1: none)
    and that object's box (NaN: none)."""
    keep = ~np.asarray(gt.ignore, bool) & np.isfinite(gt.boxes).all(1)
    boxes, labels = np.asarray(gt.boxes, np.float32)[keep], np.asarray(gt.labels)[keep]
    label = np.full(len(found), -1, np.int64)
    box = np.full((len(found), 4), np.nan, np.float32)
    if not len(boxes):
        return label, box
    overlap = box_iou(found.boxes, boxes)
    nearest = overlap.argmax(1)
    hit = overlap[np.arange(len(found)), nearest] >= iou
    label[hit], box[hit] = labels[nearest[hit]], boxes[nearest[hit]]
    return label, box


def _deltas(boxes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fast R-CNN's deltas from ``boxes`` to ``targets`` (NaN rows stay NaN)."""
    w, h = _sides(boxes)
    tw, th = _sides(targets)
    return np.stack(
        [
            ((targets[:, 0] + targets[:, 2]) - (boxes[:, 0] + boxes[:, 2])) / (2 * w),
            ((targets[:, 1] + targets[:, 3]) - (boxes[:, 1] + boxes[:, 3])) / (2 * h),
            np.log(tw / w),
            np.log(th / h),
        ],
        1,
    )


def _moved(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    w, h = _sides(boxes)
    cx, cy = (
        (boxes[:, 0] + boxes[:, 2]) / 2 + deltas[:, 0] * w,
        (boxes[:, 1] + boxes[:, 3]) / 2 + deltas[:, 1] * h,
    )
    nw, nh = w * np.exp(np.clip(deltas[:, 2], -1, 1)), h * np.exp(np.clip(deltas[:, 3], -1, 1))
    return np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], 1).astype(np.float32)


def _sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(boxes, np.float64)
    return np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)


def _ridge(z: np.ndarray, t: np.ndarray, w: np.ndarray, penalty: float) -> np.ndarray:
    """``[F + 1, 4]``: weighted ridge regression of ``t`` on ``z`` (the bias not penalised)."""
    z1 = np.concatenate([z, np.ones((len(z), 1))], 1)
    reg = penalty * np.eye(z1.shape[1])
    reg[-1, -1] = 0.0
    a = z1.T @ (z1 * w[:, None]) + reg
    return np.linalg.solve(a, z1.T @ (t * w[:, None]))
