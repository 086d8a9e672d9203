"""Which boxes and images an episode asks about."""

import numpy as np
import pytest

from fewclick.active import BoxPool, k_center_greedy, pick_boxes, pick_images
from fewclick.active.pool import one_box_per_object
from fewclick.types import Detections


def _pool(scores, units=None) -> BoxPool:
    n = len(scores)
    boxes = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(n)], np.float32)
    units = np.zeros(n, np.int64) if units is None else np.asarray(units, np.int64)
    return BoxPool(units, boxes, np.zeros(n, np.int64), np.asarray(scores, np.float32))


def test_uncertainty_asks_about_the_least_probable_boxes_first():
    pool = _pool([0.9, 0.35, 0.6, 0.31])
    assert pick_boxes("uncertainty", pool, 2, np.random.default_rng(0)).tolist() == [3, 1]


def test_random_picks_distinct_boxes_and_never_more_than_the_pool():
    pool = _pool([0.5] * 5)
    picked = pick_boxes("random", pool, 10, np.random.default_rng(0))
    assert sorted(picked.tolist()) == [0, 1, 2, 3, 4]
    assert len(pick_boxes("random", BoxPool.empty(), 3, np.random.default_rng(0))) == 0


def test_k_center_picks_the_point_farthest_from_what_is_labeled_then_from_its_picks():
    candidates = np.array([[0.0, 0.1], [5.0, 0.0], [10.0, 0.0], [9.5, 0.0]])
    labeled = np.array([[0.0, 0.0]])
    assert k_center_greedy(candidates, labeled, 2, np.random.default_rng(0)).tolist() == [2, 1]


def test_coreset_needs_a_feature_per_box():
    with pytest.raises(ValueError, match="one feature row per pooled box"):
        pick_boxes("coreset", _pool([0.5, 0.5]), 1, np.random.default_rng(0), np.zeros((1, 4)), None)


def test_image_uncertainty_ranks_by_the_mean_over_its_boxes_and_images_without_boxes_last():
    pool = _pool([0.9, 0.8, 0.35, 0.9], units=[1, 1, 2, 2])  # means of 1 - P: 0.15, 0.375
    order = pick_images("uncertainty", np.array([0, 1, 2]), 3, np.random.default_rng(0), pool)
    assert order.tolist() == [2, 1, 0]


@pytest.mark.parametrize("measure", ["entropy", "Random"])
def test_unknown_measures_name_the_known_ones(measure):
    with pytest.raises(ValueError, match="expected one of"):
        pick_boxes(measure, _pool([0.5]), 1, np.random.default_rng(0))


def test_detections_of_two_classes_on_one_object_are_one_pooled_box_of_the_likelier_class():
    det = Detections(
        np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32),
        np.array([0.4, 0.7, 0.5, 0.1], np.float32),
        np.array([0, 1, 0, 0]),
    )
    pool = BoxPool.from_detections({3: det}, threshold=0.3)
    assert pool.labels.tolist() == [1, 0] and pool.unit.tolist() == [3, 3]
    np.testing.assert_allclose(pool.uncertainty, [0.3, 0.5], rtol=1e-6)
    assert len(one_box_per_object(det, 0.95)) == 0
