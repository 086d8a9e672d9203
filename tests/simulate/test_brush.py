"""The brush and eraser: strokes painted over a mask, and the simulated annotator's strokes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fewclick.brush import Stroke, apply_strokes
from fewclick.metrics.segmentation import mask_iou
from fewclick.simulate.brush import (
    STROKE_BASE_SECONDS,
    brush_keys,
    page_radius,
    stroke_seconds,
    strokes_to_fix,
)


def _disc(h: int = 200, w: int = 200, r: int = 60) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (w // 2, h // 2), r, 1, thickness=-1)
    return mask.astype(bool)


def test_a_stroke_paints_its_points_and_the_way_between_them():
    mask = np.zeros((50, 80), bool)
    out = apply_strokes(mask, [Stroke(np.array([[10, 10], [60, 10]], np.float32), 3)])
    assert out[10, 10:61].all() and out[7, 35] and out[13, 35] and not out[15, 35]
    assert out.sum() == pytest.approx(51 * 7 + 2 * 16, rel=0.15), "a 7 px band with round ends"
    erased = apply_strokes(out, [Stroke(np.array([[35, 10]], np.float32), 2, add=False)])
    assert not erased[10, 35] and erased[10, 30] and not mask.any(), "the input is left alone"


def test_strokes_apply_in_order_and_one_outside_the_image_is_named():
    mask = np.zeros((40, 40), bool)
    dab = np.array([[20, 20]], np.float32)
    assert not apply_strokes(mask, [Stroke(dab, 4), Stroke(dab, 4, add=False)]).any()
    assert apply_strokes(mask, [Stroke(dab, 4, add=False), Stroke(dab, 4)]).any()
    with pytest.raises(ValueError, match="stroke 1 lies outside the 40 x 40 image"):
        apply_strokes(mask, [Stroke(dab, 4), Stroke(np.array([[90, 90]], np.float32), 4)])
    half_out = apply_strokes(mask, [Stroke(np.array([[-2, 20], [5, 20]], np.float32), 3)])
    assert half_out[20, 0] and half_out.shape == (40, 40), "clipped at the edge"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"points": [], "radius": 3}, "stroke 2: expected at least one point"),
        ({"points": [[1, float("nan")]], "radius": 3}, "at least one point of finite numbers"),
        ({"points": [[1, 1]], "radius": 0}, "radius 0 px is outside"),
        ({"points": [[1, 1]]}, "expected points"),
    ],
)
def test_bad_strokes_are_named(raw, message):
    with pytest.raises(ValueError, match=message):
        Stroke.parse(raw, 2)


def test_the_simulated_strokes_reach_the_target_and_never_spoil_a_right_pixel():
    truth = _disc()
    mask = truth.copy()
    mask[:, 130:] = False  # a slice missing
    mask[20:40, 10:60] = True  # a blob too many
    strokes = strokes_to_fix(truth, mask, 0.95)
    assert mask_iou(apply_strokes(mask, strokes), truth) >= 0.95 > mask_iou(mask, truth)
    assert {s.add for s in strokes} == {True, False}
    for s in strokes:  # each stroke only makes pixels right
        after = apply_strokes(mask, [s])
        assert not ((after != truth) & (mask == truth)).any()
        mask = after


def test_a_mask_already_good_enough_needs_no_stroke():
    truth = _disc()
    assert strokes_to_fix(truth, truth, 0.85) == []


def test_the_keys_a_stroke_plan_takes():
    dab = np.array([[5, 5]], np.float32)
    assert brush_keys([]) == 0
    assert brush_keys([Stroke(dab, 8)]) == 1, "A, at the page's own size"
    plan = [Stroke(dab, 16), Stroke(dab, 16, add=False), Stroke(dab, 2, add=False)]
    assert brush_keys(plan) == 1 + 1 + 1 + 3, "A and ], E, then [ three times"
    small = page_radius([0, 0, 20, 16])
    assert brush_keys([Stroke(dab, 2)], start=small) == 1, "a small object's brush starts at 2 px"


def test_the_brush_starts_thinner_on_smaller_objects():
    assert page_radius([0, 0, 200, 300]) == 8, "8 px at most, as before"
    assert page_radius([10, 10, 42, 90]) == 4, "a 32 px side: 4 px"
    assert page_radius([0, 0, 12, 12]) == 1
    assert page_radius([0, 0, 3, 3]) == 1, "never under the ladder's smallest"


def test_a_stroke_costs_its_segments_and_its_length():
    dab = Stroke(np.array([[5, 5]], np.float32), 2)
    line = Stroke(np.array([[0, 0], [96, 0]], np.float32), 2)  # one inch
    corner = Stroke(np.array([[0, 0], [96, 0], [96, 96]], np.float32), 2)
    assert stroke_seconds(dab) == pytest.approx(STROKE_BASE_SECONDS + 0.9)
    assert stroke_seconds(line) == pytest.approx(STROKE_BASE_SECONDS + 0.9 + 0.16 * 2.54)
    assert stroke_seconds(corner) == pytest.approx(STROKE_BASE_SECONDS + 1.8 + 0.16 * 5.08)


def test_a_stroke_reaching_far_outside_the_image_is_refused_before_it_is_swept():
    with pytest.raises(ValueError, match="stroke 0 reaches far outside the 40 x 40 image"):
        apply_strokes(np.zeros((40, 40), bool), [Stroke(np.array([[0, 0], [3e7, 0]], np.float32), 2)])
