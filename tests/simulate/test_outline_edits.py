"""The simulated annotator's outline edits (issue 54): a stretch SAM got wrong is fixed on
the outline, at the cost model's price, instead of a new polygon."""

import cv2
import numpy as np
import pytest

from fewclick.metrics.segmentation import mask_iou
from fewclick.outline import editable_outline, fill_outline
from fewclick.simulate.outline import DRAG_SECONDS, EDIT_SECONDS, plan_edits


def _rect(h, w, *boxes) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(m, (x0, y0), (x1, y1), 1, -1)
    return m.astype(bool)


def test_a_missed_arm_is_redrawn_along_the_object():
    truth = _rect(120, 160, (30, 30, 110, 90), (110, 50, 140, 60))
    pred = _rect(120, 160, (30, 30, 110, 90))
    plan = plan_edits(pred, truth, 0.97)
    assert plan is not None and plan.iou >= 0.97
    assert [e.kind for e in plan.edits] == ["redraw"], "one stretch, redrawn"
    # the arm's 4 corners plus the clicks on the stretch's two ends, a vertex's second each
    assert plan.edits[0].interactions == 6 and plan.edits[0].seconds == pytest.approx(6.0)
    assert plan.interactions == 7 and plan.seconds == pytest.approx(6.0 + EDIT_SECONDS["outline"] + 1.6)
    assert mask_iou(fill_outline(plan.rings, *truth.shape), truth) == pytest.approx(plan.iou)


def test_a_spike_of_background_is_deleted_or_dragged_back():
    truth = _rect(100, 100, (20, 20, 80, 80))
    pred = truth.copy()
    cv2.fillConvexPoly(pred.view(np.uint8), np.array([[45, 20], [55, 20], [50, 2]]), 1)  # a spike up
    before = mask_iou(pred, truth)
    plan = plan_edits(pred, truth, 0.99)
    assert plan is not None and plan.iou > before
    # the spike's one vertex deleted, or the stretch redrawn by its two ends (2 clicks, cheaper)
    assert len(plan.edits) == 1 and plan.edits[0].seconds <= EDIT_SECONDS["delete"]
    assert plan.seconds < EDIT_SECONDS["outline"] + EDIT_SECONDS["look"] + DRAG_SECONDS


def test_the_plan_starts_from_the_outline_the_app_made():
    truth = _rect(120, 160, (30, 30, 110, 90), (110, 50, 140, 60))
    pred = _rect(120, 160, (30, 30, 110, 90))
    rings = editable_outline(pred)
    plan = plan_edits(pred, truth, 0.97, rings=rings)
    assert plan is not None and plan.rings[0][0].min() >= 29, "in image pixels, as given"


def test_no_plan_when_nothing_of_the_object_is_on_the_outline():
    truth = _rect(100, 100, (10, 10, 30, 30))
    pred = _rect(100, 100, (60, 60, 90, 90))
    assert plan_edits(pred, truth, 0.85) is None
    assert plan_edits(np.zeros_like(truth), truth, 0.85) is None


def test_clicks_stop_once_they_save_less_than_they_cost():
    from fewclick.simulate.outline import clicks_not_paying

    assert not clicks_not_paying([40.0, 20.0], 2.55), "a click that saved 20 s goes on"
    assert not clicks_not_paying([40.0, 20.0, 19.0], 2.55), "one that did not: one more"
    assert clicks_not_paying([40.0, 20.0, 19.0, 18.5], 2.55), "two in a row: the clicks stop"
    assert clicks_not_paying([40.0, 39.0], 2.55, run=1)


def test_the_cheapest_finish_of_background_bled_in_is_its_outline_not_a_polygon():
    from fewclick.simulate.outline import cheapest_finish

    truth = np.zeros((160, 200), np.uint8)
    cv2.ellipse(truth, (100, 100), (70, 40), 0, 0, 360, 1, -1)  # a round object: many vertices
    truth = truth.astype(bool)
    pred = truth | _rect(160, 200, (60, 5, 140, 80))  # a block of background on top
    way, plan, seconds = cheapest_finish(pred, truth, None, [30, 60, 171, 141])
    assert way == "outline" and seconds == pytest.approx(plan.seconds + 1.63)
    assert plan.seconds < 10, "the wrong stretch redrawn by its two ends, or its corners deleted"
    far = _rect(160, 200, (0, 0, 10, 10))  # nothing of the object: its outline cannot help
    way, _, seconds = cheapest_finish(far, truth, None, [30, 60, 171, 141])
    assert way in ("polygon", "brush") and seconds > 10


def test_a_part_of_background_is_removed_and_a_missed_small_part_added():
    truth = np.zeros((120, 200), np.uint8)
    cv2.ellipse(truth, (70, 60), (45, 30), 0, 0, 360, 1, -1)  # the object
    cv2.circle(truth, (170, 100), 9, 1, -1)  # a small part of it, apart (an occluded object's)
    truth = truth.astype(bool)
    pred = truth.copy()
    pred[85:115, 155:190] = False  # the small part missed...
    cv2.circle(pred.view(np.uint8), (175, 20), 14, 1, -1)  # ...and a blob of background taken
    plan = plan_edits(pred, truth, 0.95)
    assert plan is not None and plan.iou >= 0.95
    kinds = [e.kind for e in plan.edits]
    assert "remove" in kinds and "part" in kinds
    part = next(e for e in plan.edits if e.kind == "part")
    assert part.seconds == pytest.approx(part.interactions * EDIT_SECONDS["redraw"])
    assert next(e for e in plan.edits if e.kind == "remove").seconds == EDIT_SECONDS["delete"]
