"""The score threshold of the best F1: what the app suggests for showing proposals."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.metrics.thresholds import NONE_SHOWN, best_f1_threshold, least_work_thresholds
from fewclick.types import Detections, Objects

GT = Objects(np.array([0, 0]), np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32))
ON_FIRST, ON_SECOND, NOWHERE, ELSEWHERE = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [70, 70, 80, 80]


def _det(boxes, scores, labels=None) -> Detections:
    labels = np.zeros(len(scores), np.int64) if labels is None else np.asarray(labels)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), labels)


@pytest.mark.parametrize(
    ("boxes", "scores", "expected"),
    [
        # TP 0.9, FP 0.8, TP 0.6, FP 0.3: best at 0.6 (2 TP, 1 FP: F1 4/5)
        ([ON_FIRST, NOWHERE, ON_SECOND, ELSEWHERE], [0.9, 0.8, 0.6, 0.3], (0.6, 0.8)),
        # both true ones first: every false one below only lowers F1
        ([ON_FIRST, ON_SECOND, NOWHERE], [0.9, 0.7, 0.5], (0.7, 1.0)),
        # one true one above many false ones: stop after it (F1 2/3)
        ([ON_FIRST, NOWHERE, ELSEWHERE, [90, 90, 99, 99]], [0.9, 0.4, 0.3, 0.2], (0.9, 2 / 3)),
        # a duplicate of a matched object is false
        ([ON_FIRST, ON_FIRST, ON_SECOND], [0.9, 0.8, 0.7], (0.7, 0.8)),
    ],
)
def test_the_best_f1_cut(boxes, scores, expected):
    threshold, f1 = best_f1_threshold([GT], [_det(boxes, scores)], 1)
    assert threshold == pytest.approx(expected[0]) and f1 == pytest.approx(expected[1])


def test_equal_scores_are_cut_together():
    # a true and three false detections at 0.5: no threshold keeps the true one alone
    # (that cut would have F1 1); all four together have F1 4/7, below the 0.9 cut's 2/3
    boxes = [ON_FIRST, ON_SECOND, NOWHERE, ELSEWHERE, [90, 90, 99, 99]]
    threshold, f1 = best_f1_threshold([GT], [_det(boxes, [0.9, 0.5, 0.5, 0.5, 0.5])], 1)
    assert (threshold, f1) == (pytest.approx(0.9), pytest.approx(2 / 3))


def test_a_wrong_class_is_false_and_an_ignored_object_absorbs():
    ignored = Objects(np.array([0, 0]), GT.boxes, ignore=np.array([False, True]))
    threshold, f1 = best_f1_threshold(
        [ignored], [_det([ON_FIRST, ON_SECOND, ON_FIRST], [0.9, 0.8, 0.7], labels=[0, 0, 1])], 2
    )
    # the second box lands on the ignored object (neither way); the class-1 box is false
    assert threshold == pytest.approx(0.9) and f1 == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("gts", "preds"),
    [
        ([GT], [Detections.empty()]),  # nothing predicted
        ([GT], [_det([NOWHERE], [0.9])]),  # nothing true
        ([Objects.empty()], [_det([NOWHERE], [0.9])]),  # no ground truth
        ([], []),
    ],
)
def test_no_threshold_helps_when_nothing_is_true(gts, preds):
    assert best_f1_threshold(gts, preds, 1) == (None, 0.0)


def test_images_and_predictions_must_pair():
    with pytest.raises(ValueError):
        best_f1_threshold([GT, GT], [Detections.empty()], 1)


@pytest.mark.parametrize(
    ("boxes", "scores", "labels", "expected"),
    [
        # TP 0.9, FP 0.8, TP 0.6, FP 0.3: at 0.6 one delete and nothing missing (1); at 0.9 one missing (1):
        # equal work, the higher threshold (fewer boxes to look over)
        ([ON_FIRST, NOWHERE, ON_SECOND, ELSEWHERE], [0.9, 0.8, 0.6, 0.3], None, [0.9]),
        # two false ones above both true ones: showing them costs 2 deletes, hiding them 2 draws
        # (equal: hidden); a third false one tips it
        ([NOWHERE, ELSEWHERE, ON_FIRST, ON_SECOND], [0.9, 0.8, 0.7, 0.6], None, [NONE_SHOWN]),
        ([NOWHERE, ON_FIRST, ON_SECOND], [0.9, 0.8, 0.7], None, [0.7]),
        # per class: class 1 has no object in the image, so nothing to calibrate it on
        ([ON_FIRST, ON_SECOND, NOWHERE], [0.9, 0.4, 0.8], [0, 0, 1], [0.4, None]),
    ],
)
def test_the_thresholds_of_least_work_per_class(boxes, scores, labels, expected):
    num_classes = 1 if labels is None else max(labels) + 1
    assert least_work_thresholds([GT], [_det(boxes, scores, labels)], num_classes) == pytest.approx(expected)


def test_a_class_with_objects_and_no_detections_shows_none():
    assert least_work_thresholds([GT], [_det([], [])], 1) == [NONE_SHOWN]


def test_a_loose_box_saves_no_work():
    # IoU 0.6 with the first object: a match at 0.5, but a person redraws it (KEPT_IOU 0.7),
    # so showing it costs a delete and hides nothing missing
    loose = _det([[0, 0, 10, 6]], [0.9])
    assert least_work_thresholds([GT], [loose], 1, iou_threshold=0.5) == pytest.approx([0.9])
    assert least_work_thresholds([GT], [loose], 1) == [NONE_SHOWN]


def test_weighed_work_shows_more_when_a_missed_object_costs_more_than_a_wrong_box():
    # TP 0.9, FP 0.8, FP 0.7, TP 0.6: one interaction each, the second true box is not worth
    # two deletes; in mask mode's seconds (a wrong mask looked at 1.6 s, a missed one 3.85 s)
    # it is
    boxes, scores = [ON_FIRST, NOWHERE, ELSEWHERE, ON_SECOND], [0.9, 0.8, 0.7, 0.6]
    assert least_work_thresholds([GT], [_det(boxes, scores)], 1) == pytest.approx([0.9])
    weighed = least_work_thresholds([GT], [_det(boxes, scores)], 1, false_cost=1.6, missed_cost=3.85)
    assert weighed == pytest.approx([0.6])
