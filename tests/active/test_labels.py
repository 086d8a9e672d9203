"""The labeled pools and the training set with noisy labels."""

import numpy as np

from fewclick.active import LabelState
from fewclick.simulate.oracle import oracle
from fewclick.train.detect_data import BACKGROUND_WEIGHT, LOSS_WEIGHT, NEGATIVE
from fewclick.types import Detections, Objects

GT = [
    Objects([0, 1], [[0, 0, 10, 10], [20, 20, 30, 30]]),
    Objects([1, 0, 0], [[0, 0, 10, 10], [40, 40, 50, 50], [60, 0, 70, 10]], ignore=[False, False, True]),
]


def test_a_fully_labeled_image_counts_its_boxes_once_and_ignore_objects_not_at_all():
    state = LabelState(GT)
    crowd = oracle(np.array([[60, 0, 70, 10]], np.float32), np.array([0]), GT[1])
    assert not crowd.background[0] and crowd.ignore[0] and LabelState(GT).answer(1, crowd) == 0
    assert state.label_unit(1) == 2 and state.label_unit(1) == 0
    assert state.boxes_labeled == 2 and state.labeled_units == [1]


def test_an_answer_obtains_a_box_when_it_names_an_object_and_an_answered_box_leaves_the_pool():
    state = LabelState(GT)
    asked = np.array([[1, 1, 11, 11], [100, 100, 110, 110]], np.float32)
    assert state.answer(0, oracle(asked, np.array([1, 0]), GT[0])) == 1, "the background answer obtains none"
    assert state.boxes_labeled == 1 and state.questions == 2 and state.partial_units == [0]
    det = Detections(
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [100, 100, 110, 110]], np.float32),
        np.array([0.9, 0.8, 0.4], np.float32),
        np.array([0, 1, 0]),
    )
    assert state.unanswered(0, det).tolist() == [False, True, False]


def test_a_partly_labeled_image_trains_on_its_answers_and_dampened_predictions():
    state = LabelState(GT)
    asked = np.array([[1, 1, 11, 11], [100, 100, 110, 110]], np.float32)
    state.answer(0, oracle(asked, np.array([1, 0]), GT[0]))  # snapped to class 0; background
    det = Detections(
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [100, 100, 110, 110], [50, 0, 60, 9]], np.float32),
        np.array([0.9, 0.8, 0.4, 0.1], np.float32),
        np.array([0, 1, 0, 1]),
    )
    objects = state.training_objects(0, det, threshold=0.3, noisy_weight=0.5)
    # the answer, the box answered background (a labeled negative), the noisy prediction
    np.testing.assert_allclose(objects.boxes, [[0, 0, 10, 10], [100, 100, 110, 110], [20, 20, 30, 30]])
    assert objects.labels[[0, 2]].tolist() == [0, 1]
    assert objects.ignore.tolist() == [False, True, False]
    assert objects.extra[NEGATIVE].tolist() == [False, True, False]
    assert objects.extra[LOSS_WEIGHT].tolist() == [1.0, 1.0, 0.5]
    assert objects.extra[BACKGROUND_WEIGHT] == 0.0, "no box there: no loss (the paper's anchors)"
    assert state.training_objects(0, det, 0.3, 0.5, background_weight=0.5).extra[BACKGROUND_WEIGHT] == 0.5


def test_an_object_answered_twice_is_one_object_and_a_full_image_has_no_noisy_labels():
    state = LabelState(GT)
    asked = np.array([[0, 0, 10, 10], [1, 0, 10, 10]], np.float32)
    state.answer(0, oracle(asked, np.array([0, 1]), GT[0]))
    assert len(state.labeled_boxes(0)) == 1 and state.boxes_labeled == 1 and state.questions == 2
    assert state.answer(0, oracle(asked[:1], np.array([0]), GT[0])) == 0, "named before"
    state.label_unit(1)
    det = Detections(np.array([[80, 80, 90, 90]], np.float32), np.array([0.9], np.float32), np.array([0]))
    objects = state.training_objects(1, det, threshold=0.3, noisy_weight=0.5)
    assert len(objects) == 3 and objects.ignore.tolist() == [False, False, True]
    assert BACKGROUND_WEIGHT not in objects.extra and LOSS_WEIGHT not in objects.extra, "weight 1 everywhere"
