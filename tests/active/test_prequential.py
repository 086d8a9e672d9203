"""Test, then train (issue 68): what a source's proposals save on an image by the campaign's
cost rule, the threshold the images before choose, and the paired test that lets a source
serve a class."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.active.prequential import (
    NONE,
    NONE_SHOWN,
    Record,
    at_threshold,
    beats,
    best_threshold,
    savings,
)
from fewclick.simulate.annotator import COST_SECONDS
from fewclick.types import Detections, Objects


def _objects(boxes, labels) -> Objects:
    return Objects(np.asarray(labels, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4))


def _found(boxes, scores, labels) -> Detections:
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


GT = _objects([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 0, 1])


def test_a_right_proposal_saves_a_draw_less_its_look_and_a_wrong_one_costs_a_reject_and_a_look():
    draw, look, reject = COST_SECONDS["draw"], COST_SECONDS["verify"], COST_SECONDS["reject"]
    assert savings(GT, Detections.empty(), 0).seconds == 0.0, "nothing shown saves nothing"
    right = savings(GT, _found([[0, 0, 10, 10]], [0.9], [0]), 0)
    assert right.seconds == pytest.approx(draw - look) and right.interactions == 1 and right.shown == 1
    wrong = savings(GT, _found([[100, 100, 110, 110]], [0.9], [0]), 0)
    assert wrong.seconds == pytest.approx(-(reject + look)) and wrong.interactions == -1
    other_class = savings(GT, _found([[40, 0, 50, 10]], [0.9], [1]), 0)
    assert other_class.seconds == 0.0, "class 1's proposal is not scored for class 0"


def test_the_threshold_is_the_score_that_saved_most_on_the_images_before():
    # the surest two right, the third wrong: showing from 0.8 saves most
    found = _found([[0, 0, 10, 10], [20, 0, 30, 10], [60, 60, 70, 70]], [0.9, 0.8, 0.7], [0, 0, 0])
    assert best_threshold([(GT, found)], 0) == pytest.approx(0.8)
    assert best_threshold([], 0) == NONE_SHOWN, "no image before: nothing shown"
    only_wrong = _found([[60, 60, 70, 70]], [0.9], [0])
    assert best_threshold([(GT, only_wrong)], 0) == NONE_SHOWN, "nothing saves: nothing shown"
    assert len(at_threshold(found, 0, 0.8)) == 2


def test_a_source_beats_another_only_beyond_the_noise_of_at_least_two_paired_images():
    assert not beats([5.0], [0.0]), "one image is no evidence"
    assert beats([5.0, 6.0], [0.0, 0.0])
    assert not beats([5.0, -6.0], [0.0, 0.0]), "a mean under the noise"
    assert not beats([1.0, 1.0], [1.0, 1.0]), "a tie never wins"
    assert beats([5.0, -6.0, 7.0, 6.0, 5.0], [0.0] * 5, z=0.5) and not beats(
        [5.0, -6.0, 7.0], [0.0] * 3, z=1.5
    )


def test_a_source_must_save_more_than_the_margin_an_image_to_win():
    steady = ([1.2, 1.0, 1.1, 1.0], [0.0] * 4)  # a small, steady gain: no noise to speak of
    assert beats(*steady, z=1.0, margin=0.0)
    assert not beats(*steady, z=1.0, margin=1.5), "a gain under the margin is not worth a change"
    assert beats([9.0, 8.0, 10.0], [0.0] * 3, z=1.0, margin=1.5)
    record = Record(("a",), z=1.0, margin=1.5)
    for image in range(6):
        record.add(image, 0, {"a": 1.0 + 0.01 * image})
    assert record.serves(0) == NONE, "a source that saves under a second and a half an image does not serve"


def test_the_record_serves_a_class_by_the_source_that_saved_most_on_images_it_never_saw():
    record = Record(("look-alikes", "trainer"), z=1.0)
    assert record.serves(0) == NONE
    assert record.add(1, 0, {"look-alikes": 4.0, "trainer": -3.0}) is None, "one image: nothing serves yet"
    assert "nothing has saved" in record.why[0]
    assert record.add(2, 0, {"look-alikes": 5.0, "trainer": -2.0}) == "look-alikes"
    assert record.serves(0) == "look-alikes" and "more than showing nothing" in record.why[0]
    # the trainer learns: it must beat the look-alikes on the images both were scored on
    assert record.add(3, 0, {"look-alikes": 4.0, "trainer": 9.0}) is None
    for image in (4, 5, 6, 7):
        record.add(image, 0, {"look-alikes": 4.0, "trainer": 12.0})
    assert record.serves(0) == "trainer"
    assert record.promotions[-1] == {
        "image": record.promotions[-1]["image"],
        "class": 0,
        "from": "look-alikes",
        "to": "trainer",
    }
    assert record.serves(1) == NONE, "a class never scored serves nothing"


def test_a_class_every_source_loses_on_shows_nothing():
    record = Record(("look-alikes",), z=1.0)
    for image in range(6):
        record.add(image, 0, {"look-alikes": -4.0 - image})
    assert record.serves(0) == NONE and not record.promotions


def test_a_class_with_one_finished_object_is_scored_and_serves_nothing_until_it_has_shown_savings():
    """Bad input (issue 68): one object of a class finished. Its image is scored (the record
    keeps what each source saved there), and one image is no evidence: nothing serves it."""
    one = _objects([[0, 0, 10, 10]], [2])
    record = Record(("learner", "look-alikes"))
    saved = {"learner": savings(one, _found([[0, 0, 10, 10]], [0.9], [2]), 2).seconds, "look-alikes": 0.0}
    assert saved["learner"] > 0, "its one right box saved a draw"
    assert record.add(0, 2, saved) is None and record.serves(2) == NONE
    assert record.scored[2]["learner"] == {0: saved["learner"]}, "scored all the same"
    record.add(1, 2, {"learner": -2.0, "look-alikes": 0.0})
    assert record.serves(2) == NONE, "a second image where it cost work: no savings shown"
    for image in (2, 3, 4):
        record.add(image, 2, saved)
    assert record.serves(2) == "learner", "savings shown beyond the noise: it serves"


def test_a_source_not_scored_on_an_image_is_paired_only_where_it_was():
    record = Record(("a", "b"))
    record.add(1, 0, {"a": 1.0})
    record.add(2, 0, {"a": 2.0, "b": 5.0})
    record.add(3, 0, {"a": 3.0, "b": 6.0})
    assert record.paired(0, "b", "a") == ([5.0, 6.0], [2.0, 3.0])
    assert record.paired(0, "a", NONE) == ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])


def test_the_reason_a_source_serves_is_said_as_it_stands_now_not_as_at_its_promotion():
    record = Record(("trainer", "look-alikes"))
    for image in range(3):
        record.add(image, 0, {"trainer": 20.0 + image, "look-alikes": 1.0})
    assert record.serves(0) == "trainer"
    for image in range(3, 8):
        record.add(image, 0, {"trainer": 10.0, "look-alikes": 4.0})
    said = record.why[0]
    assert said.startswith("saved 14.1 s an image on the last 8 images it had not seen"), said  # 113 / 8
    assert said.endswith("11.2 s more than look-alikes"), said  # (113 - 23) / 8
