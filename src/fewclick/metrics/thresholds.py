"""Score thresholds read off a detector's scored detections on held-out images: the one of
the best F1 (:func:`best_f1_threshold`) and, per class, the one that leaves a person the least
work (:func:`least_work_thresholds`). Detections are matched as
:mod:`fewclick.metrics.detection` matches them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fewclick.metrics.detection import KEPT_IOU, check_inputs, match_image
from fewclick.types import Detections, Objects

__all__ = ["NONE_SHOWN", "best_f1_threshold", "least_work_thresholds"]


def best_f1_threshold(
    gts: Sequence[Objects],
    preds: Sequence[Detections],
    num_classes: int,
    iou_threshold: float = 0.5,
    oriented: bool = False,
) -> tuple[float | None, float]:
    """The score threshold whose detections (score >= it) have the best F1 against ``gts``,
    and that F1: greedy one-to-one matching per image and class at ``iou_threshold``;
    detections absorbed by ignored objects count neither way. ``(None, 0.0)`` when nothing
    is predicted or nothing is true: no threshold helps then."""
    per_class = _hits_per_class(gts, preds, num_classes, iou_threshold, oriented)
    total = sum(t for _, _, t in per_class)
    if total == 0 or not any(len(s) for s, _, _ in per_class):
        return None, 0.0
    scores = np.concatenate([s for s, _, _ in per_class])
    hits = np.concatenate([h for _, h, _ in per_class])
    if not hits.any():
        return None, 0.0
    scores, tp = _descending(scores, hits)
    f1 = 2 * tp / (np.arange(1, len(scores) + 1) + total)  # 2 TP / (TP + FP + TP + FN)
    best = int(np.flatnonzero(_cuts(scores))[np.argmax(f1[_cuts(scores)])])
    return float(scores[best]), float(f1[best])


#: a threshold above every score: show none of the class's proposals
NONE_SHOWN = 1.01


def least_work_thresholds(
    gts: Sequence[Objects],
    preds: Sequence[Detections],
    num_classes: int,
    iou_threshold: float = KEPT_IOU,
    oriented: bool = False,
    false_cost: float = 1.0,
    missed_cost: float = 1.0,
) -> list[float | None]:
    """Per class, the score threshold whose detections (score >= it) leave the fewest
    interactions to finish ``gts``: a false positive is a delete, a missed object a click or
    a box; matching as in :func:`best_f1_threshold`, at the IoU a person keeps a box at (a
    looser box is redrawn, so it saves nothing). :data:`NONE_SHOWN` when showing none
    is cheapest; None for a class ``gts`` never holds (nothing to calibrate on). Of equal
    costs the higher threshold wins: fewer boxes to look over. ``false_cost`` and
    ``missed_cost`` weigh the two kinds of work when they are not one interaction each
    (mask mode prices them in seconds)."""
    out: list[float | None] = []
    for scores, hits, total in _hits_per_class(gts, preds, num_classes, iou_threshold, oriented):
        if total == 0:
            out.append(None)
            continue
        if not len(scores):
            out.append(NONE_SHOWN)
            continue
        scores, tp = _descending(scores, hits)
        shown = np.arange(1, len(scores) + 1)
        cost = false_cost * (shown - tp) + missed_cost * (total - tp)  # deletes + what is still missing
        cuts = np.flatnonzero(_cuts(scores))
        best = cuts[np.argmin(cost[cuts])]  # the first of equal costs: the highest score
        out.append(float(scores[best]) if cost[best] < missed_cost * total else NONE_SHOWN)
    return out


def _hits_per_class(gts, preds, num_classes: int, iou_threshold: float, oriented: bool) -> list[tuple]:
    """Per class: the scores of its detections, whether each is a true positive (greedy
    one-to-one matching per image at ``iou_threshold``; those absorbed by ignored objects
    left out), and its number of objects not ignored."""
    check_inputs(gts, preds, num_classes, oriented)
    scores = [[] for _ in range(num_classes)]
    hits = [[] for _ in range(num_classes)]
    totals = [0] * num_classes
    for gt, pred in zip(gts, preds, strict=True):
        ignored = gt.ignore | (gt.difficult > 0)
        for c in range(num_classes):
            totals[c] += int((~ignored[gt.labels == c]).sum())
        for c in np.unique(pred.labels):
            of_class = gt.labels == c
            p = pred[pred.labels == c]
            p = p[np.argsort(-p.scores, kind="mergesort")]
            s, tp, absorbed = match_image(
                p, gt[of_class], ignored[of_class], (iou_threshold,), oriented, "greedy"
            )
            scores[c].append(s[~absorbed[0]])
            hits[c].append(tp[0][~absorbed[0]])
    return [
        (np.concatenate(s) if s else np.zeros(0), np.concatenate(h) if h else np.zeros(0, bool), t)
        for s, h, t in zip(scores, hits, totals)
    ]


def _descending(scores: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scores from the highest, and the true positives among the first i + 1 of them."""
    order = np.argsort(-scores, kind="mergesort")
    return scores[order], np.cumsum(hits[order])


def _cuts(scores: np.ndarray) -> np.ndarray:
    """Where a threshold can cut descending ``scores``: only after the last of a run of
    equal scores."""
    return np.r_[scores[1:] != scores[:-1], True]
