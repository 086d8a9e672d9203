"""Point localisation metrics of the CPR paper: point-to-box distance matching, mAP_tau, RSV.

A predicted point matches a ground-truth box when ``sqrt((dx / w)^2 + (dy / h)^2) <= tau``,
``dx, dy`` measured from the box centre and ``w, h`` the full box size (tau = 1 accepts the
ellipse inscribed in the box, ~the box itself). Matching is greedy by score, one point per
box: a point takes the unmatched, non-ignored box nearest to it; failing that, an ignored box
within tau absorbs it (neither true nor false positive, any number per box); else it is a
false positive. This is :func:`fewclick.metrics.detection.match_greedy` on minus the distance.

AP integration: the paper does not say; its public evaluator is built on the COCO / TinyPerson
evaluation, so the default is COCO's 101-point interpolation, without a per-image limit on
points. Empty cases as for boxes: a class without ground truth has AP NaN and is left out
of mAP; a class with ground truth and no prediction has AP 0; no ground truth gives mAP NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fewclick.metrics.detection import APResult, _check_method, _class_names, ap_from_matches, match_greedy
from fewclick.types import Detections, Objects, as_boxes

__all__ = ["PointResult", "point_box_distance", "evaluate_points", "rsv"]


def point_box_distance(points: Any, boxes: Any) -> np.ndarray:
    """Distances ``float64[N, M]`` from points ``float[N, 2]`` (x, y) to XYXY boxes ``float[M, 4]``:
    ``sqrt((dx / w)^2 + (dy / h)^2)`` from the box centre. A box with zero width or height
    is at distance inf from every point off its centre line (0 / 0 counts as 0)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    b = as_boxes(boxes).astype(np.float64)
    size = b[:, 2:] - b[:, :2]
    offset = pts[:, None, :] - (b[None, :, :2] + b[None, :, 2:]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(offset == 0, 0.0, np.abs(offset) / size[None])
    return np.sqrt((rel**2).sum(axis=-1))


@dataclass(frozen=True)
class PointResult(APResult):
    """Point AP at one ``tau`` (:class:`~fewclick.metrics.detection.APResult`)."""

    tau: float
    ap_method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN becomes None."""
        return {**super().to_dict(), "tau": self.tau, "ap_method": self.ap_method}


def evaluate_points(
    gts: Sequence[Objects],
    preds: Sequence[Detections],
    num_classes: int,
    tau: float = 1.0,
    class_names: Sequence[str] | None = None,
    ap_method: str = "coco",
) -> PointResult:
    """mAP_tau of predicted points (``Detections.points`` ``float[N, 2]`` (x, y), scores, labels)
    against ground-truth boxes (``Objects.boxes`` XYXY; ``Objects.ignore`` boxes absorb
    matches), one entry per image in the same order. The paper reports tau 0.5, 1 and 2."""
    _check_method(ap_method)
    if not tau > 0:
        raise ValueError(f"expected tau > 0, got {tau}")
    names = _class_names(class_names, num_classes)
    _check_inputs(gts, preds, num_classes)
    scores: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    hits: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    absorbed: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, np.int64)
    for gt, pred in zip(gts, preds, strict=True):
        for c in np.union1d(gt.labels, pred.labels):
            g, p = gt[gt.labels == c], pred[pred.labels == c]
            p = p[np.argsort(-p.scores, kind="mergesort")]
            num_gt[c] += int((~g.ignore).sum())
            xy = p.points if p.points is not None else np.zeros((0, 2))  # empty predictions
            distance = point_box_distance(xy, g.boxes)
            tp, ab = match_greedy(-distance, g.ignore, -tau)
            scores[c].append(p.scores)
            hits[c].append(tp)
            absorbed[c].append(ab)
    ap = np.full(num_classes, math.nan)
    for c in np.flatnonzero(num_gt):
        ap[c] = ap_from_matches(
            np.concatenate(scores[c] or [[]]),
            np.concatenate(hits[c] or [[]]),
            np.concatenate(absorbed[c] or [[]]),
            int(num_gt[c]),
            ap_method,
        )
    valid = num_gt > 0
    return PointResult(
        map=float(ap[valid].mean()) if valid.any() else math.nan,
        per_class={name: float(v) for name, v in zip(names, ap, strict=True)},
        num_gt={name: int(n) for name, n in zip(names, num_gt, strict=True)},
        tau=float(tau),
        ap_method=ap_method,
    )


def _check_inputs(gts: Sequence[Objects], preds: Sequence[Detections], num_classes: int) -> None:
    if len(gts) != len(preds):
        raise ValueError(f"expected one prediction per image ({len(gts)}), got {len(preds)}")
    for index, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        if len(pred) and pred.points is None:
            raise ValueError(f"expected Detections.points, got None in the predictions of image {index}")
        if np.isnan(gt.boxes).any():
            raise ValueError(f"expected a box for every ground-truth object, got NaN boxes in image {index}")
        for what, labels in (("ground truth", gt.labels), ("predictions", pred.labels)):
            bad = (labels < 0) | (labels >= num_classes)
            if bad.any():
                raise ValueError(
                    f"expected class ids in [0, {num_classes}), got {int(labels[bad][0])} "
                    f"in the {what} of image {index}"
                )


def rsv(points: Any, boxes: Any) -> float:
    """Relative semantic variance, Eq. 13 of the CPR paper, of points ``float[N, 2]`` (x, y),
    one per XYXY box ``float[N, 4]``: with ``x' = (x - xc) / w``, ``y' = (y - yc) / h``,
    ``RSV = sqrt(Var(x') * Var(y'))`` (population variance). NaN for no points."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    b = as_boxes(boxes).astype(np.float64)
    if len(pts) != len(b):
        raise ValueError(f"expected one box per point ({len(pts)}), got {len(b)}")
    if len(pts) == 0:
        return math.nan
    rel = (pts - (b[:, :2] + b[:, 2:]) / 2) / (b[:, 2:] - b[:, :2])
    return float(np.sqrt(rel[:, 0].var() * rel[:, 1].var()))
