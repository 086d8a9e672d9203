"""Detection average precision on axis-aligned or oriented boxes.

AP integration (:func:`average_precision`): ``"voc07"`` 11-point (the VOC2007 and DOTA
devkits, used by C3Det), ``"voc12"`` all-point area under the precision envelope (VOC2010+),
``"coco"`` 101-point exactly as pycocotools' ``COCOeval.accumulate``.

Matching (:data:`MATCHING_RULES`), per image and class, detections in descending score order:

- ``"greedy"`` (pycocotools' ``evaluateImg``, the default for ``"coco"``): a detection takes
  the unmatched, non-ignored object of highest IoU with IoU >= threshold (ties go to the later
  object); failing that, an ignored object with IoU >= threshold absorbs the detection, which
  is then neither a true nor a false positive; otherwise it is a false positive.
- ``"devkit"`` (``voc_eval`` of the VOC devkit and of the DOTA devkit's
  ``dota_evaluation_task1.py``, which C3Det uses; the default for ``"voc07"`` / ``"voc12"``):
  a detection looks only at the object of highest IoU among all of them, matched or not
  (ties go to the first object). If that IoU > threshold (strictly): an ignored object
  absorbs it, an unmatched one makes it a true positive, a matched one a false positive
  (a duplicate, even when a second free object overlaps it above the threshold). If that
  IoU <= threshold, it is a false positive (so at threshold 1 nothing matches, whereas greedy
  caps the threshold at 1 - 1e-10 as pycocotools does).

Ignored objects are ``Objects.ignore`` (COCO crowd, DontCare) and, when ``ignore_difficult``,
``Objects.difficult`` ones; they are not positives and absorb any number of detections. The
IoU with an ``ignore`` object is intersection / detection area (COCO's crowd rule) under both
rules; with a difficult one it is the plain IoU.

Empty cases: a class without non-ignored ground truth has AP NaN and is left out of mAP,
whatever was predicted for it; a class with ground truth but no detection has AP 0; the mAP
of a dataset without any ground truth is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fewclick.types import Detections, Objects, as_boxes, rboxes_to_polygons

__all__ = [
    "AP_METHODS",
    "APResult",
    "DetectionResult",
    "box_iou",
    "paired_box_iou",
    "rbox_iou",
    "average_precision",
    "MATCHING_RULES",
    "match_detections",
    "match_greedy",
    "ap_from_matches",
    "evaluate_detections",
    "KEPT_IOU",
]

AP_METHODS = ("voc07", "voc12", "coco")
MATCHING_RULES = ("greedy", "devkit")
COCO_MAX_DETS = 100  # pycocotools' maxDets[-1], applied per image and class
#: a box of the object's class at least this close to it is the object: a person keeps it as
#: it is (manual quality; the simulated annotator's criterion, and the least work's)
KEPT_IOU = 0.7


# --------------------------------------------------------------------------- IoU
def box_iou(a: Any, b: Any, crowd: Any = None) -> np.ndarray:
    """IoU of XYXY boxes ``a float[N, 4]`` and ``b float[M, 4]`` -> ``float64[N, M]``.

    Boxes are continuous (no +1 pixel). Where ``crowd bool[M]`` is set, the entry is
    intersection / area of the ``a`` box (COCO's crowd rule). A zero union gives 0.
    """
    a = as_boxes(a).astype(np.float64)
    b = as_boxes(b).astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    return _iou_from_intersection(wh[..., 0] * wh[..., 1], _box_area(a), _box_area(b), crowd)


def paired_box_iou(a: Any, b: Any) -> np.ndarray:
    """IoU of ``a[i]`` with ``b[i]`` only (XYXY, ``float[N, 4]`` each) -> ``float64[N]``: the
    diagonal of :func:`box_iou` without the N x N matrix. A zero union gives 0."""
    a = as_boxes(a).astype(np.float64)
    b = as_boxes(b).astype(np.float64)
    if len(a) != len(b):
        raise ValueError(f"expected as many boxes in b as in a ({len(a)}), got {len(b)}")
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0.0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = _box_area(a) + _box_area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.where(union > 0, inter / union, 0.0), 0.0, 1.0)


def rbox_iou(a: Any, b: Any, crowd: Any = None) -> np.ndarray:
    """Polygon IoU of oriented boxes ``(cx, cy, w, h, angle)``: ``a float[N, 5]``, ``b float[M, 5]``
    -> ``float64[N, M]``; ``crowd bool[M]`` as in :func:`box_iou`. Uses shapely 2 (STRtree)."""
    import shapely

    ga = shapely.polygons(rboxes_to_polygons(a).astype(np.float64))
    gb = shapely.polygons(rboxes_to_polygons(b).astype(np.float64))
    inter = np.zeros((len(ga), len(gb)))
    if len(ga) and len(gb):
        ib, ia = shapely.STRtree(ga).query(gb, predicate="intersects")
        inter[ia, ib] = shapely.area(shapely.intersection(ga[ia], gb[ib]))
    # Polygon areas (not w * h) so that a box's IoU with itself is 1 to float precision.
    return _iou_from_intersection(inter, shapely.area(ga), shapely.area(gb), crowd)


def _box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _iou_from_intersection(
    inter: np.ndarray, area_a: np.ndarray, area_b: np.ndarray, crowd: Any
) -> np.ndarray:
    union = area_a[:, None] + area_b[None, :] - inter
    if crowd is not None:
        crowd = np.asarray(crowd, bool).reshape(-1)
        if len(crowd) != len(area_b):
            raise ValueError(f"expected one crowd flag per box ({len(area_b)}), got {len(crowd)}")
        union = np.where(crowd[None, :], area_a[:, None], union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.where(union > 0, inter / union, 0.0), 0.0, 1.0)


# --------------------------------------------------------------------------- AP
def average_precision(recall: Any, precision: Any, method: str = "voc07") -> float:
    """AP from ``recall`` and ``precision`` ``float[K]``, taken along the detections in
    descending score order (recall non-decreasing). No detection (K = 0) gives 0.

    ``"voc07"``: mean over t in 0, 0.1, ..., 1 of the best precision at recall >= t (0 if none);
    ``"voc12"``: area under the monotone precision envelope;
    ``"coco"``: mean over 101 recall thresholds of the envelope at the first recall >= t.
    """
    _check_method(method)
    rec = np.asarray(recall, np.float64).reshape(-1)
    prec = np.asarray(precision, np.float64).reshape(-1)
    if len(rec) != len(prec):
        raise ValueError(f"expected recall and precision of one length, got {len(rec)} and {len(prec)}")
    if len(rec) == 0:
        return 0.0
    if method == "voc07":
        # np.arange as in the devkits, so that recalls on the grid compare the same way.
        points = [prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in np.arange(0.0, 1.1, 0.1)]
        return float(np.mean(points))
    envelope = np.maximum.accumulate(prec[::-1])[::-1]
    if method == "voc12":
        mrec = np.concatenate([[0.0], rec])
        return float(np.sum((mrec[1:] - mrec[:-1]) * envelope))
    thresholds = np.linspace(0.0, 1.0, 101)
    index = np.searchsorted(rec, thresholds, side="left")
    found = index < len(rec)
    return float(np.where(found, envelope[np.minimum(index, len(rec) - 1)], 0.0).mean())


def _check_method(method: str) -> None:
    if method not in AP_METHODS:
        raise ValueError(f"expected ap_method in {AP_METHODS}, got {method!r}")


def match_detections(
    similarity: np.ndarray, gt_ignored: np.ndarray, threshold: float, rule: str = "greedy"
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching on one image and class by ``rule`` in :data:`MATCHING_RULES` (see
    the module docstring: ``"greedy"`` qualifies similarity >= ``threshold``, ``"devkit"`` >).

    ``similarity float[D, G]`` (IoU, or minus a distance) has its rows in descending score
    order; ``gt_ignored bool[G]``. Returns ``(true_positive bool[D], absorbed bool[D])``;
    the rest are false positives.
    """
    _check_rule(rule)
    pick = _pick_greedy if rule == "greedy" else _pick_devkit
    n_det, n_gt = similarity.shape
    tp = np.zeros(n_det, bool)
    absorbed = np.zeros(n_det, bool)
    taken = np.zeros(n_gt, bool)
    for i in range(n_det):
        j = pick(similarity[i], gt_ignored, taken, threshold)
        if j is None:
            continue
        if gt_ignored[j]:
            absorbed[i] = True
        elif not taken[j]:
            taken[j] = tp[i] = True
    return tp, absorbed


def match_greedy(
    similarity: np.ndarray, gt_ignored: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_detections` with ``rule="greedy"`` (pycocotools' rule)."""
    return match_detections(similarity, gt_ignored, threshold, "greedy")


def _pick_greedy(row: np.ndarray, ignored: np.ndarray, taken: np.ndarray, threshold: float) -> int | None:
    """The best free non-ignored object >= threshold, else an ignored one >= threshold."""
    ok = row >= threshold
    free = ok & ~ignored & ~taken
    if free.any():
        best = np.where(free, row, -np.inf)
        return len(row) - 1 - int(np.argmax(best[::-1]))  # the last of equal best, as pycocotools
    hits = np.flatnonzero(ok & ignored)
    return int(hits[0]) if len(hits) else None


def _pick_devkit(row: np.ndarray, ignored: np.ndarray, taken: np.ndarray, threshold: float) -> int | None:
    """The object of highest similarity, matched or not, if it is > threshold (voc_eval)."""
    if len(row) == 0:
        return None
    j = int(np.argmax(row))  # the first of equal best, as np.argmax in voc_eval
    return j if row[j] > threshold else None


def _check_rule(rule: str) -> None:
    if rule not in MATCHING_RULES:
        raise ValueError(f"expected matching in {MATCHING_RULES}, got {rule!r}")


def ap_from_matches(scores: Any, tp: Any, absorbed: Any, num_gt: int, method: str) -> float:
    """AP of one class from all its detections: ``scores float[D]``, ``tp bool[D]``,
    ``absorbed bool[D]`` (dropped) and ``num_gt`` positives; NaN when ``num_gt`` is 0."""
    if num_gt == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    keep = ~np.asarray(absorbed, bool)[order]
    hits = np.asarray(tp, bool)[order][keep]
    tps = np.cumsum(hits)
    fps = np.cumsum(~hits)
    return average_precision(tps / num_gt, tps / np.maximum(tps + fps, 1), method)


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class APResult:
    """What every AP evaluation (boxes here, points in :mod:`~fewclick.metrics.points`)
    reports first. ``map``: mean of ``per_class`` over classes with ground truth, NaN if no
    class has any; ``per_class``: class name -> AP, NaN for a class without non-ignored
    ground truth; ``num_gt``: class name -> non-ignored objects."""

    map: float
    per_class: dict[str, float]
    num_gt: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN becomes None."""
        return {
            "mAP": _json_float(self.map),
            "per_class": {k: _json_float(v) for k, v in self.per_class.items()},
            "num_gt": dict(self.num_gt),
        }


@dataclass(frozen=True)
class DetectionResult(APResult):
    """AP of a detection run (:class:`APResult`; ``map`` and ``per_class`` averaged over the
    IoU thresholds too). ``map_per_threshold``: IoU threshold -> mAP at that threshold;
    ``ap_method`` and ``matching``: the AP integration and matching rule used.
    """

    map_per_threshold: dict[float, float]
    iou_thresholds: tuple[float, ...]
    ap_method: str
    matching: str
    oriented: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN becomes None, threshold keys become strings."""
        return {
            **super().to_dict(),
            "map_per_threshold": {f"{k:g}": _json_float(v) for k, v in self.map_per_threshold.items()},
            "iou_thresholds": list(self.iou_thresholds),
            "ap_method": self.ap_method,
            "matching": self.matching,
            "oriented": self.oriented,
        }


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def evaluate_detections(
    gts: Sequence[Objects],
    preds: Sequence[Detections],
    num_classes: int,
    iou_threshold: float | Sequence[float] = 0.5,
    ap_method: str = "voc07",
    oriented: bool = False,
    class_names: Sequence[str] | None = None,
    max_dets: int | None = None,
    ignore_difficult: bool = True,
    matching: str | None = None,
) -> DetectionResult:
    """Per-class AP and mAP of ``preds`` against ``gts`` (one entry per image, same order).

    Boxes are ``Objects.boxes`` / ``Detections.boxes`` (XYXY), or with ``oriented`` the
    ``rboxes`` ``(cx, cy, w, h, angle)`` with polygon IoU. ``iou_threshold`` may be a list
    (e.g. ``np.linspace(0.5, 0.95, 10)``): AP is then averaged over it. ``max_dets`` keeps
    the best-scored detections per image and class; None means 100 for ``"coco"`` (as
    pycocotools) and no limit otherwise. ``class_names`` default to ``"0"``, ``"1"``, ...
    With ``ap_method="coco"`` on COCO data (``ignore`` = iscrowd) this reproduces
    pycocotools' bbox AP (areaRng all). ``matching`` is ``"greedy"`` or ``"devkit"``; None
    means ``"devkit"`` for ``"voc07"`` / ``"voc12"`` (the devkits' ``voc_eval``, so C3Det's
    numbers) and ``"greedy"`` for ``"coco"``. Matching rules and empty cases: see the module.
    """
    _check_method(ap_method)
    rule = matching if matching is not None else ("greedy" if ap_method == "coco" else "devkit")
    _check_rule(rule)
    thresholds = _thresholds(iou_threshold)
    names = _class_names(class_names, num_classes)
    check_inputs(gts, preds, num_classes, oriented)
    limit = max_dets if max_dets is not None else (COCO_MAX_DETS if ap_method == "coco" else None)
    records: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, np.int64)
    for gt, pred in zip(gts, preds, strict=True):
        for c in np.union1d(gt.labels, pred.labels):
            g, p = gt[gt.labels == c], pred[pred.labels == c]
            p = p[np.argsort(-p.scores, kind="mergesort")[:limit]]
            ignored = g.ignore | ((g.difficult > 0) & ignore_difficult)
            num_gt[c] += int((~ignored).sum())
            if len(p):
                records[c].append(match_image(p, g, ignored, thresholds, oriented, rule))
    ap = np.full((num_classes, len(thresholds)), math.nan)
    for c in range(num_classes):
        if num_gt[c] and records[c]:
            scores = np.concatenate([r[0] for r in records[c]])
            tp, absorbed = (np.concatenate([r[k] for r in records[c]], axis=1) for k in (1, 2))
            ap[c] = [
                ap_from_matches(scores, tp[t], absorbed[t], num_gt[c], ap_method)
                for t in range(len(thresholds))
            ]
        elif num_gt[c]:
            ap[c] = 0.0
    return _result(ap, num_gt, names, thresholds, ap_method, rule, oriented)


def match_image(
    p: Detections, g: Objects, ignored: np.ndarray, thresholds: tuple[float, ...], oriented: bool, rule: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores ``[D]``, true positives and absorbed ``bool[T, D]`` of one image and class."""
    iou = (
        rbox_iou(_rboxes(p), _rboxes(g), crowd=g.ignore)
        if oriented
        else box_iou(p.boxes, g.boxes, crowd=g.ignore)
    )
    # pycocotools caps the threshold below 1 so that IoU 1.0 in float error still matches;
    # voc_eval does not (with IoU > 1.0 nothing matches).
    cap = 1 - 1e-10 if rule == "greedy" else 1.0
    matches = [match_detections(iou, ignored, min(t, cap), rule) for t in thresholds]
    return p.scores, np.stack([m[0] for m in matches]), np.stack([m[1] for m in matches])


def _rboxes(item: Objects | Detections) -> np.ndarray:
    """``item.rboxes``; an empty item may have None (checked in ``check_inputs``)."""
    return item.rboxes if item.rboxes is not None else np.zeros((0, 5), np.float32)


def _result(
    ap: np.ndarray,
    num_gt: np.ndarray,
    names: list[str],
    thresholds: tuple[float, ...],
    method: str,
    rule: str,
    oriented: bool,
) -> DetectionResult:
    valid = num_gt > 0
    per_threshold = {
        t: float(ap[valid, i].mean()) if valid.any() else math.nan for i, t in enumerate(thresholds)
    }
    per_class = ap.mean(axis=1)
    return DetectionResult(
        map=float(per_class[valid].mean()) if valid.any() else math.nan,
        per_class={name: float(v) for name, v in zip(names, per_class, strict=True)},
        num_gt={name: int(n) for name, n in zip(names, num_gt, strict=True)},
        map_per_threshold=per_threshold,
        iou_thresholds=thresholds,
        ap_method=method,
        matching=rule,
        oriented=oriented,
    )


def _thresholds(iou_threshold: float | Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(t) for t in np.atleast_1d(np.asarray(iou_threshold, np.float64)))
    if not values or any(not 0.0 < t <= 1.0 for t in values):
        raise ValueError(f"expected IoU thresholds in (0, 1], got {iou_threshold!r}")
    return values


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if num_classes < 1:
        raise ValueError(f"expected num_classes >= 1, got {num_classes}")
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes or len(set(names)) != num_classes:
        raise ValueError(f"expected {num_classes} distinct class names, got {names}")
    return names


def check_inputs(gts: Sequence[Objects], preds: Sequence[Any], num_classes: int, oriented: bool) -> None:
    if len(gts) != len(preds):
        raise ValueError(f"expected one prediction per image ({len(gts)}), got {len(preds)}")
    for index, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        for what, item in (("ground truth", gt), ("predictions", pred)):
            bad = (item.labels < 0) | (item.labels >= num_classes)
            if bad.any():
                raise ValueError(
                    f"expected class ids in [0, {num_classes}), got {int(item.labels[bad][0])} "
                    f"in the {what} of image {index}"
                )
            if oriented and len(item) and item.rboxes is None:
                raise ValueError(
                    f"expected rboxes for oriented=True, got None in the {what} of image {index}"
                )
            _check_finite(item.rboxes if oriented else item.boxes, what, index)


def _check_finite(geometry: np.ndarray | None, what: str, index: int) -> None:
    """NaN boxes (point-only objects) never match, so AP would be silently 0: refuse them."""
    if geometry is None or not len(geometry):
        return
    bad = np.flatnonzero(~np.isfinite(geometry).all(axis=1))
    if len(bad):
        raise ValueError(
            f"expected finite boxes, got {geometry[bad[0]].tolist()} for object {int(bad[0])} in the {what} "
            f"of image {index} ({len(bad)} such object(s); point-only annotations have no box)"
        )
