"""Point-to-box distance, point mAP_tau with greedy matching and ignore boxes, and RSV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fewclick.metrics import evaluate_points, point_box_distance, rsv
from fewclick.types import Detections, Objects

BOX = [0, 0, 10, 20]  # centre (5, 10), w 10, h 20


def points(xy, scores, labels) -> Detections:
    xy = np.array(xy, np.float32).reshape(-1, 2)
    return Detections(np.concatenate([xy, xy], axis=1), scores, labels, points=xy)


@pytest.mark.parametrize(
    ("point", "box", "expected"),
    [
        ((5, 10), BOX, 0.0),
        ((10, 10), BOX, 0.5),  # dx 5 / w 10
        ((15, 10), BOX, 1.0),
        ((5, 40), BOX, 1.5),  # dy 30 / h 20
        ((8, 18), BOX, 0.5),  # sqrt((3 / 10)^2 + (8 / 20)^2)
        ((5, 10), [5, 0, 5, 20], 0.0),  # zero width, on the centre line
        ((6, 10), [5, 0, 5, 20], math.inf),
    ],
)
def test_point_box_distance_table(point, box, expected):
    assert point_box_distance([point], [box])[0, 0] == pytest.approx(expected)


def test_point_box_distance_shapes():
    assert point_box_distance(np.zeros((0, 2)), [BOX]).shape == (0, 1)
    assert point_box_distance([[1, 2], [3, 4]], np.zeros((0, 4))).shape == (2, 0)


@pytest.mark.parametrize(
    ("xy", "tau", "expected"),
    [
        ((10, 10), 0.5, 1.0),  # d = 0.5 <= tau: a match
        ((15, 10), 0.5, 0.0),  # d = 1.0: missed, and a false positive
        ((15, 10), 1.0, 1.0),
        ((5, 40), 1.0, 0.0),  # d = 1.5
        ((5, 40), 2.0, 1.0),
    ],
)
def test_single_point_tau_rule(xy, tau, expected):
    gt = Objects([0], [BOX])
    result = evaluate_points([gt], [points([xy], [0.9], [0])], 1, tau=tau)
    assert result.map == pytest.approx(expected)


# Two 10x10 boxes side by side: A centre (5, 5), B centre (15, 5).
TWO = Objects([0, 0], [[0, 0, 10, 10], [10, 0, 20, 10]])


@pytest.mark.parametrize(
    ("tau", "expected"),
    [
        # p1 (0.9) at (9, 5): d_A 0.4, d_B 0.6 -> A (the nearest).
        # p2 (0.8) at (8, 5): d_A 0.3 (taken), d_B 0.7 -> B when tau >= 0.7: both TP, AP 1.
        (1.0, 1.0),
        (2.0, 1.0),
        # tau 0.5: p2 finds nothing free -> FP; recall 0.5 at precision 1: VOC07 6 / 11.
        (0.5, 6 / 11),
    ],
)
def test_greedy_one_to_one_by_score(tau, expected):
    pred = points([(9, 5), (8, 5)], [0.9, 0.8], [0, 0])
    assert evaluate_points([TWO], [pred], 1, tau=tau, ap_method="voc07").map == pytest.approx(expected)


def test_highest_score_wins_the_box():
    # Both points near A only; the lower-scored one is listed first but is matched second.
    one = Objects([0], [[0, 0, 10, 10]])
    pred = points([(5, 5), (6, 5)], [0.2, 0.9], [0, 0])
    # sorted: TP (0.9), FP (0.2) -> recall 1 at precision 1 first: AP 1.
    assert evaluate_points([one], [pred], 1, ap_method="voc07").map == 1.0
    # with the FP scored higher: FP, TP -> precision 1/2 at recall 1 -> 0.5.
    pred = points([(5, 5), (50, 50)], [0.2, 0.9], [0, 0])
    assert evaluate_points([one], [pred], 1, ap_method="voc07").map == pytest.approx(0.5)


def test_ignore_boxes_absorb_matches():
    # an ignore box C far away; two high-scored points in it are neither TP nor FP.
    gt = Objects([0, 0], [[0, 0, 10, 10], [100, 100, 140, 140]], ignore=[False, True])
    pred = points([(120, 120), (121, 121), (5, 5)], [0.9, 0.95, 0.5], [0, 0, 0])
    result = evaluate_points([gt], [pred], 1, ap_method="voc07")
    assert result.map == 1.0
    assert result.num_gt == {"0": 1}


def test_coco_integration_by_default():
    # FP then TP on one object: precision 0.5 at recall 1 for all 101 thresholds.
    pred = points([(50, 50), (5, 10)], [0.9, 0.5], [0, 0])
    result = evaluate_points([Objects([0], [BOX])], [pred], 1)
    assert result.ap_method == "coco"
    assert result.map == pytest.approx(0.5)


def test_point_empty_cases():
    gt = Objects([0], [BOX])
    assert evaluate_points([gt], [Detections.empty()], 2, class_names=["a", "b"]).per_class["a"] == 0.0
    no_gt = evaluate_points([Objects.empty()], [points([(1, 1)], [0.5], [0])], 1)
    assert math.isnan(no_gt.map)
    assert no_gt.to_dict()["mAP"] is None
    assert math.isnan(evaluate_points([], [], 1).map)
    # a class with predictions only is left out of the mean.
    both = evaluate_points([gt], [points([(5, 10), (1, 1)], [0.9, 0.9], [0, 1])], 2)
    assert both.map == 1.0
    assert math.isnan(both.per_class["1"])


@pytest.mark.parametrize(
    ("gts", "preds", "kwargs", "message"),
    [
        ([Objects([0], [BOX])], [], {}, "one prediction per image"),
        ([Objects([0], [BOX])], [Detections(np.zeros((1, 4)), [1], [0])], {}, "points"),
        ([Objects([0], [[np.nan] * 4])], [Detections.empty()], {}, "NaN"),
        ([Objects([5], [BOX])], [Detections.empty()], {}, "class ids"),
        ([Objects([0], [BOX])], [Detections.empty()], {"tau": 0}, "tau"),
    ],
)
def test_evaluate_points_rejects(gts, preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_points(gts, preds, 1, **kwargs)


# --------------------------------------------------------------------------- RSV
def test_rsv_at_centres_is_zero():
    boxes = np.array([[0, 0, 10, 20], [5, 5, 9, 7], [100, 0, 130, 40]], np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert rsv(centres, boxes) == 0.0


def test_rsv_of_gaussian_offsets(rng):
    # offsets sigma 0.25 w, 0.25 h: Var(x') = Var(y') = 0.0625, RSV = sqrt(0.0625^2) = 0.0625.
    n = 20000
    xy = rng.uniform(0, 1000, (n, 2))
    wh = rng.uniform(4, 100, (n, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    pts = xy + rng.normal(0, 0.25, (n, 2)) * wh
    assert rsv(pts, boxes) == pytest.approx(0.0625, rel=0.03)


def test_rsv_uses_population_variance():
    # x' = -0.5, 0.5 (Var 0.25), y' = 0, 0.5 (Var 0.0625): RSV = sqrt(0.25 * 0.0625) = 0.125.
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10]]
    assert rsv([(0, 5), (10, 10)], boxes) == pytest.approx(0.125)


def test_rsv_empty_and_mismatch():
    assert math.isnan(rsv(np.zeros((0, 2)), np.zeros((0, 4))))
    with pytest.raises(ValueError, match="one box per point"):
        rsv([(1, 1)], np.zeros((0, 4)))


@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50)), min_size=1, max_size=8))
@settings(max_examples=30, deadline=None)
def test_points_at_gt_centres_are_perfect(centres):
    # Property: a point at every box centre, any scores, finds every box at any tau.
    xy = np.array(centres, np.float32)
    gt = Objects(np.zeros(len(xy)), np.concatenate([xy - 2, xy + 2], axis=1))
    pred = points(xy, np.linspace(1, 0.1, len(xy)), np.zeros(len(xy)))
    assert evaluate_points([gt], [pred], 1, tau=0.5).map == pytest.approx(1.0)
