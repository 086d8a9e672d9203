"""Partial labels teach what full labels teach: every box asked and every missed one drawn
gives the image-level path's training data, target for target."""

from dataclasses import replace

import numpy as np
import pytest

from fewclick.active.consistency import ask_everything, same_targets, training_data
from fewclick.active.labels import LabelState
from fewclick.active.loop import ActiveConfig
from fewclick.simulate.oracle import oracle
from fewclick.types import Detections, Objects

# two images of 96 x 96: the second holds an ignore region (a crowd) and an object no
# prediction finds
GT = [
    Objects([0, 1], [[4, 4, 24, 24], [40, 40, 64, 60]]),
    Objects(
        [1, 0, 0, 1],
        [[0, 0, 20, 20], [50, 50, 70, 70], [70, 0, 90, 20], [30, 70, 50, 90]],
        ignore=[False, False, True, False],
    ),
]
SHAPES = {0: (96, 96), 1: (96, 96)}
# on image 1: object 0 twice (one box per object keeps one), object 1 with the wrong class,
# a false positive far from everything, one overlapping object 3 at IoU < 0.5 (answered
# background over a real object), the crowd; object 3 itself is missed
PREDICTIONS = {
    1: Detections(
        np.array(
            [
                [1, 1, 21, 21],
                [0, 0, 19, 21],
                [50, 51, 70, 71],
                [80, 60, 95, 75],
                [30, 70, 38, 78],
                [70, 0, 89, 20],
            ],
            np.float32,
        ),
        np.array([0.9, 0.85, 0.7, 0.6, 0.5, 0.4], np.float32),
        np.array([1, 1, 1, 0, 1, 0]),
    )
}
CONFIG = ActiveConfig(score_threshold=0.2)


def _states() -> tuple[LabelState, LabelState]:
    box, image = LabelState(GT), LabelState(GT)
    box.label_unit(0)
    image.label_unit(0)
    image.label_unit(1)
    return box, image


def test_every_box_asked_and_every_missed_one_drawn_gives_the_image_level_training_data():
    box, image = _states()
    counts = ask_everything(box, 1, PREDICTIONS[1], CONFIG.score_threshold)
    assert counts == {"asked": 5, "background": 2, "drawn": 1}
    assert box.complete == {1} and box.partial_units == []
    data = training_data(box, PREDICTIONS, CONFIG)
    assert same_targets(data, training_data(image, PREDICTIONS, CONFIG), SHAPES, 2)
    np.testing.assert_array_equal(data[1].boxes, GT[1].boxes)
    np.testing.assert_array_equal(data[1].ignore, GT[1].ignore)
    lambda0 = replace(CONFIG, noisy_weight=0.0)
    assert same_targets(
        training_data(box, PREDICTIONS, lambda0), training_data(image, PREDICTIONS, lambda0), SHAPES, 2
    )


def test_the_boxes_obtained_are_the_same_on_both_paths_and_every_answer_is_a_question():
    box, image = _states()
    ask_everything(box, 1, PREDICTIONS[1], CONFIG.score_threshold)
    # image 0's two; then image 1's three objects: two named by answers, one drawn (the
    # crowd was answered, a box looked at, but it is no box obtained)
    assert box.boxes_labeled == image.boxes_labeled == 2 + 3
    assert box.questions == 5 and image.questions == 0


@pytest.mark.parametrize("noisy_weight", [0.5, 0.0])
def test_before_the_missed_objects_are_drawn_the_two_paths_differ(noisy_weight):
    box, image = _states()
    det = PREDICTIONS[1]
    for i in range(len(det)):
        box.answer(1, oracle(det.boxes[i : i + 1], det.labels[i : i + 1], GT[1]))
    config = replace(CONFIG, noisy_weight=noisy_weight)
    assert box.partial_units == [1]
    assert not same_targets(
        training_data(box, PREDICTIONS, config), training_data(image, PREDICTIONS, config), SHAPES, 2
    )


def test_a_missing_unit_or_a_moved_box_is_not_the_same_training_data():
    box, image = _states()
    ask_everything(box, 1, PREDICTIONS[1], CONFIG.score_threshold)
    data, truth = training_data(box, PREDICTIONS, CONFIG), training_data(image, PREDICTIONS, CONFIG)
    assert not same_targets({0: data[0]}, truth, SHAPES, 2)
    moved = Objects(data[1].labels, data[1].boxes + np.float32(8), ignore=data[1].ignore)
    assert not same_targets({0: data[0], 1: moved}, truth, SHAPES, 2)
