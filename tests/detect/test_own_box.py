"""The clicked object's own box: a click a trained detector leaves without a box of its
class around it gets the box given for it, at score 1, and the detector's boxes of that
class on top of it go; a click already boxed (at the bar or above) is left as it is."""

import numpy as np
import pytest

from fewclick.predict.own_box import OWN_MIN_SCORE, unboxed_clicks, with_own_boxes
from fewclick.types import Clicks, Detections


def _det(boxes, scores, labels, rboxes=None) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(labels), rboxes
    )


def _clicks(xy, labels, positive=None) -> Clicks:
    positive = [True] * len(xy) if positive is None else positive
    return Clicks(np.array(xy, np.float32), np.array(labels), np.array(positive))


DET = _det([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0.9, OWN_MIN_SCORE / 2, 0.8], [0, 0, 1])


def test_a_click_is_boxed_by_a_box_of_its_class_around_it_at_the_bar_or_above():
    clicks = _clicks([[5, 5], [25, 25], [45, 45], [45, 45], [70, 70]], [0, 0, 1, 0, 1], [True] * 4 + [False])
    # boxed; under the bar; boxed; the wrong class around it; a negative click asks for nothing
    assert unboxed_clicks(DET, clicks) == [1, 3]
    assert unboxed_clicks(Detections.empty(), _clicks([[1, 1]], [0])) == [0]


def test_an_own_box_comes_at_score_1_and_the_boxes_of_its_class_on_it_go():
    clicks = _clicks([[5, 5], [25, 25]], [0, 0])
    out = with_own_boxes(DET, clicks, {1: np.array([21, 21, 31, 31], np.float32)})
    assert out.boxes.tolist() == [[0, 0, 10, 10], [40, 40, 50, 50], [21, 21, 31, 31]]
    assert out.scores.tolist() == pytest.approx([0.9, 0.8, 1.0]) and out.labels.tolist() == [0, 1, 0]
    assert with_own_boxes(DET, clicks, {}) is DET


def test_an_oriented_detection_set_gets_own_boxes_unrotated():
    det = _det([[0, 0, 10, 10]], [0.9], [0], rboxes=np.array([[5, 5, 10, 10, 0.3]], np.float32))
    out = with_own_boxes(det, _clicks([[30, 30]], [0]), {0: np.array([20, 24, 40, 36], np.float32)})
    np.testing.assert_allclose(out.rboxes, [[5, 5, 10, 10, 0.3], [30, 30, 20, 12, 0]])
