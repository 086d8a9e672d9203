"""A click in Detect mode adds and never takes away (issue 67): what an image opened with
stays in the answer to its clicks, and a click lands on the object of its class's size,
not on a pale centre or an inclusion inside it. No SAM runs: the proposals are made here."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.predict.lookalike import clicked_proposal, proposals_file
from fewclick.predict.proposals import Proposals
from fewclick.predict.shown import after_clicks, page_floors, slider_value
from fewclick.types import Clicks

DIM = 4


def _unit(*v: float) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def _proposals(boxes, vectors, masks=None, scores=None, size=(100, 400)) -> Proposals:
    """Proposals of ``boxes`` (filled masks unless ``masks``), background along the last axis."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if masks is None:
        masks = [(int(b[0]), int(b[1]), np.ones((int(b[3] - b[1]), int(b[2] - b[0])), bool)) for b in boxes]
    scores = np.full(len(boxes), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Proposals(boxes, scores, np.stack(vectors).astype(np.float32), masks, _unit(0, 0, 0, 1), size)


def _ring(side: int, hole: int) -> np.ndarray:
    """A cell seen from above: a disc of diameter ``side`` whose pale centre (``hole``
    across) SAM left out of its mask."""
    ys, xs = np.mgrid[:side, :side] - (side - 1) / 2
    r = np.hypot(xs, ys)
    return (r < side / 2) & (r >= hole / 2)


def test_a_click_at_a_cells_pale_centre_lands_on_the_cell_once_its_class_s_size_is_known():
    cell = [10, 10, 50, 50]
    inclusion = [26, 26, 34, 34]  # surer than the cell, and its mask holds the click
    found = _proposals(
        [cell, inclusion],
        [_unit(1, 0, 0, 0), _unit(0, 1, 0, 0)],
        masks=[(10, 10, _ring(40, 12)), (26, 26, np.ones((8, 8), bool))],
        scores=[0.85, 0.97],
    )
    assert clicked_proposal(found, 30, 30) == 1, "without a size: the surest mask holding the click"
    assert clicked_proposal(found, 30, 30, side=38.0) == 0, "at the class's side: the cell"
    assert clicked_proposal(found, 30, 30, side=9.0) == 1, "a class of small things: the inclusion"
    assert clicked_proposal(found, 12, 12, side=38.0) is None, "a corner of the cell's box is not the cell"


def test_a_click_with_no_proposal_of_its_class_s_size_there_falls_back_to_the_mask_under_it():
    found = _proposals([[0, 0, 10, 10]], [_unit(1, 0, 0, 0)])
    assert clicked_proposal(found, 5, 5, side=60.0) == 0


def test_the_page_s_floors_take_each_class_s_own_score_and_rescue_an_image_they_would_empty():
    scores, labels = np.array([0.6, 0.4, 0.35]), np.array([0, 1, 1])
    assert page_floors(scores, labels, {1: 0.3}, 0.5).tolist() == pytest.approx([0.5, 0.3, 0.3])
    assert page_floors(scores, labels, {1: 0.3}, 0.5, clicked=[1]).tolist() == pytest.approx([0.5] * 3)
    # no class reaches its own score: every box from the best less 0.2 (never below 0.3)
    assert page_floors(scores, labels, {0: 0.9, 1: 2.0}, 0.5).tolist() == pytest.approx([0.4] * 3)
    assert page_floors(np.array([0.2]), np.array([0]), {0: 0.9}, 0.5).tolist() == pytest.approx([0.9])
    assert page_floors(np.zeros(0), np.zeros(0), {}, 0.5).shape == (0,)


@pytest.mark.parametrize(("threshold", "step"), [(0.5, 0.5), (0.37, 0.35), (0.01, 0.05), (1.3, 0.95)])
def test_the_slider_starts_at_its_step_at_or_below_the_threshold(threshold, step):
    assert slider_value(threshold) == pytest.approx(step)


def _shown(answer, least, start, clicked=()) -> set[tuple[int, int]]:
    index, scores, labels = answer
    floors = page_floors(scores, labels, least, start, clicked)
    return {(int(i), int(c)) for i, s, c, f in zip(index, scores, labels, floors) if s >= f}


def test_what_an_image_opened_with_stays_in_its_class_after_a_click_and_the_click_adds():
    # on open: proposals 0-2 of class 0 (least-work score 0.3), 3 of class 1 (rescued? no: 0.6)
    opened = (np.array([0, 1, 2, 3, 4]), np.array([0.7, 0.45, 0.32, 0.6, 0.1]), np.array([0, 0, 0, 1, 0]))
    least = {0: 0.3, 1: 0.55}
    before = _shown(opened, least, 0.5)
    assert before == {(0, 0), (1, 0), (2, 0), (3, 1)}
    # a click of class 0 on another object: matched to it alone, 1 and 2 fall under 0.5,
    # proposal 3 now looks most like the clicked object, and 5 is new
    clicked = (np.array([0, 3, 5, 1, 2]), np.array([0.9, 0.8, 0.7, 0.2, 0.1]), np.array([0, 0, 0, 0, 0]))
    assert _shown(clicked, {1: 0.55}, 0.5, clicked=[0]) == {(0, 0), (3, 0), (5, 0)}, "before: 1, 2 gone"
    merged, per_class = after_clicks(opened, clicked, least, {0}, 0.5)
    after = _shown(merged, per_class, 0.5, clicked=[0])
    assert before <= after, "nothing shown on open disappears, nor changes class"
    assert (5, 0) in after, "the click adds its look-alike"
    assert per_class == {1: pytest.approx(0.55)}
    assert list(merged[1]) == sorted(merged[1], reverse=True), "best first"
    assert merged[1].max() < 1, "under the clicked object's 1"


def test_a_rescued_opening_stays_after_a_click_of_another_class():
    # nothing reached its class's own score on open: all showed from 0.45 - 0.2 = 0.3
    opened = (np.array([0, 1]), np.array([0.45, 0.35]), np.array([1, 1]))
    least = {1: 0.8}
    assert _shown(opened, least, 0.5) == {(0, 1), (1, 1)}
    clicked = (np.array([0, 1]), np.array([0.45, 0.35]), np.array([1, 1]))
    merged, per_class = after_clicks(opened, clicked, least, {0}, 0.5)
    assert _shown(merged, per_class, 0.5, clicked=[0]) == {(0, 1), (1, 1)}


def test_with_no_clicks_the_answer_is_what_the_image_opens_with():
    opened = (np.array([2, 0]), np.array([0.7, 0.4]), np.array([0, 1]))
    merged, per_class = after_clicks(opened, opened, {0: 0.3}, set(), 0.5)
    assert [m.tolist() for m in merged] == [[2, 0], pytest.approx([0.7, 0.4]), [0, 1]]
    assert _shown(merged, per_class, 0.5) == _shown(opened, {0: 0.3}, 0.5)


def _squares(vectors, size=(40, 400)) -> Proposals:
    """A row of 20 px squares, one a vector."""
    boxes = [[40 * i, 10, 40 * i + 20, 30] for i in range(len(vectors))]
    return _proposals(boxes, vectors, size=size)


def test_a_click_on_an_object_unlike_the_finished_ones_keeps_those_the_image_opened_with(tmp_path):
    from fewclick.server import worker_proposals

    like = [_unit(1, 0, 0, 0)] * 3
    for key in ("1-1-0", "1-2-0"):  # two finished images of two squares each: class 0
        _squares(like[:2]).save(proposals_file(tmp_path, key))
    two = [[0, 0, 10, 20, 30], [0, 40, 10, 60, 30]]
    finished = [[key, f"{key}.png", two, []] for key in ("1-1-0", "1-2-0")]
    # the open image: three squares like the finished ones, and an odd one the person clicks
    _squares([*like, _unit(0, 0, 1, 0.2)]).save(proposals_file(tmp_path, "1-3-0"))
    nothing = Clicks(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
    det, info = worker_proposals.look_alikes(str(tmp_path), "1-3-0", "open.png", nothing, finished)
    floors = page_floors(det.scores, det.labels, info["min_scores"], info["threshold"])
    opened = {tuple(b) for b in det.boxes[det.scores >= floors].tolist()}
    assert len(opened) == 3, f"the image opens with the three like the finished squares: {opened}"

    click = Clicks(np.array([[130, 20]], np.float32), np.array([0]), np.ones(1, bool))
    det, info = worker_proposals.look_alikes(str(tmp_path), "1-3-0", "open.png", click, finished)
    floors = page_floors(det.scores, det.labels, info["min_scores"], info["threshold"], clicked=[0])
    shown = {tuple(b) for b in det.boxes[det.scores >= floors].tolist()}
    assert det.scores[0] == 1 and det.boxes[0].tolist() == [120, 10, 140, 30], "the clicked square first"
    assert opened <= shown, f"a click adds and never takes away: {opened - shown} went"


def test_a_detector_s_boxes_the_image_opened_with_stay_after_a_click_made_them_anew():
    from fewclick.predict.shown import keep_opened_boxes

    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], np.float32)
    opened = (boxes, np.array([0.9, 0.4, 0.35, 0.1], np.float32), np.array([0, 0, 1, 0]))
    least = {0: 0.3, 1: 0.3}
    assert (opened[1] >= page_floors(opened[1], opened[2], least, 0.5)).sum() == 3, "the last under 0.3"
    # with a click of class 0 at (85, 5): the detector boxes it, scores the second box 0.3
    # (under the slider's 0.5) and drops the third; a box a little off the first comes back
    answer = (
        np.array([[80, 0, 90, 10], [1, 0, 11, 10], [20, 0, 30, 10]], np.float32),
        np.array([1.0, 0.8, 0.3], np.float32),
        np.array([0, 0, 0]),
    )
    (b, s, c), per_class = keep_opened_boxes(opened, answer, least, {0}, 0.5)
    floors = page_floors(s, c, per_class, 0.5, clicked=[0])
    shown = [tuple(x) for x, score, f in zip(b.tolist(), s, floors) if score >= f]
    assert (80, 0, 90, 10) in shown and (1, 0, 11, 10) in shown, "the click's own, the first as answered"
    assert (20, 0, 30, 10) in shown and (40, 0, 50, 10) in shown, "the second and third, as they opened"
    assert shown.count((20, 0, 30, 10)) == 1 and len(b) == 4, "the second once: the answer's (0.3) goes"
    assert (0, 0, 10, 10) not in shown, "the first not twice: the answer's box of it clears its floor"
    assert per_class == {1: pytest.approx(0.3)}
