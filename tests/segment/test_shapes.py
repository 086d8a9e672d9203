"""The box's ellipse and the proposal under a click offered beside SAM's candidates
(fewclick.predict.shapes), and the box a corrective click after a click start frames
(fewclick.predict.zoom.framing_box)."""

import numpy as np
import pytest

from fewclick.metrics.segmentation import mask_iou
from fewclick.predict.segment_api import MaskPrediction
from fewclick.predict.shapes import box_ellipse, with_ellipse, with_proposal
from fewclick.predict.zoom import framing_box
from fewclick.protocols.segment import tight_box


def test_the_ellipse_of_a_disc_s_tight_box_is_the_disc():
    yy, xx = np.mgrid[:80, :100]
    disc = (xx - 40.5) ** 2 / 15**2 + (yy - 30.5) ** 2 / 9**2 <= 1  # an ellipse of axes 30 x 18
    ellipse = box_ellipse(tight_box(disc), disc.shape)
    assert ellipse.shape == disc.shape and mask_iou(ellipse, disc) >= 0.9
    np.testing.assert_allclose(tight_box(ellipse), tight_box(disc), atol=1)


def test_the_ellipse_is_drawn_in_a_window_s_frame():
    box = [60.0, 40.0, 80.0, 56.0]
    whole = box_ellipse(box, (100, 120))
    window = box_ellipse(box, (50, 60), offset=(40, 30))
    np.testing.assert_array_equal(window, whole[30:80, 40:100])


@pytest.mark.parametrize("box", [[10, 10, 10, 20], [10, 20, 30, 5], [0, 0, float("nan"), 4]])
def test_a_box_without_area_is_refused(box):
    with pytest.raises(ValueError, match="x1 > x0"):
        box_ellipse(box, (40, 40))


def test_the_ellipse_comes_last_among_the_candidates_and_only_where_there_are_any():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:30] = True
    alone = MaskPrediction(mask, 0.9)
    assert with_ellipse(alone, [10, 10, 30, 20]) is alone, "no candidates: nothing to Tab to"
    served = MaskPrediction(mask, 0.9, state="s")
    served.candidates = [served, MaskPrediction(~mask, 0.5, state="t")]
    out = with_ellipse(served, [10, 10, 30, 20])
    assert [c.shape for c in out.candidates] == [None, None, "ellipse"]
    assert out.candidates[:2] == served.candidates and out.mask is mask and out.score == 0.9
    ellipse = out.candidates[-1]
    assert ellipse.state is None and ellipse.score == 0.0 and mask_iou(ellipse.mask, mask) > 0.7


def test_the_proposal_under_a_click_is_served_first_and_sam_s_masks_follow_it():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:30] = True
    served = MaskPrediction(mask, 0.9, state="s")
    served.candidates = [served, MaskPrediction(~mask, 0.5, state="t")]
    found = MaskPrediction(mask[::-1].copy(), 0.8, state="ignored")
    out = with_proposal(served, found)
    assert (out.shape, out.score, out.state) == ("proposal", 0.8, None), "no state: SAM prompted anew"
    np.testing.assert_array_equal(out.mask, found.mask)
    assert [c.shape for c in out.candidates] == ["proposal", None, None]
    assert out.candidates[0] is not found and out.candidates[1] is served
    lone = MaskPrediction(mask, 0.9)  # a backend without candidates: its mask after the proposal
    assert [c.mask is mask for c in with_proposal(lone, found).candidates] == [False, True]


def test_no_proposal_or_a_window_s_answer_is_left_as_it_is():
    mask = np.zeros((40, 40), bool)
    served = MaskPrediction(mask, 0.9)
    assert with_proposal(served, None) is served, "no proposal holds the click, or none are made"
    window = MaskPrediction(mask, 0.9, offset=(5, 5))
    assert with_proposal(window, MaskPrediction(mask, 0.8)) is window, "another frame: not mixed"


def test_a_corrective_click_frames_the_mask_it_corrects_grown_by_positive_clicks_only():
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:12] = True  # in a window whose top-left pixel is (100, 200) of the image
    shown = MaskPrediction(mask, 0.9, offset=(100, 200))
    size = (480, 640)
    clicks = [[108.0, 215.0, True], [130.0, 212.0, False]]
    assert framing_box(shown, clicks, size) == [105.0, 210.0, 112.0, 220.0], "a negative click grows nothing"
    grown = [*clicks, [120.6, 225.2, True]]
    assert framing_box(shown, grown, size) == [105.0, 210.0, 121.0, 226.0], "to the pixel clicked"
    earlier = [104.0, 209.0, 113.0, 221.0]
    assert framing_box(shown, clicks, size, earlier) == earlier, "the box an earlier click framed is kept"
    wider = np.zeros((40, 50), bool)
    wider[10:20, 5:22] = True  # a candidate Tabbed to, 10 px wider
    joined = framing_box(MaskPrediction(wider, 0.8, offset=(100, 200)), clicks, size, earlier)
    assert joined == [104.0, 209.0, 122.0, 221.0], "joined with the mask Tabbed to"


def test_no_box_is_framed_for_an_empty_mask_or_one_too_large_to_zoom():
    size = (480, 640)
    assert framing_box(MaskPrediction(np.zeros((480, 640), bool), 0.5), [[5.0, 5.0, True]], size) is None
    large = np.zeros((480, 640), bool)
    large[100:300, 100:400] = True
    assert framing_box(MaskPrediction(large, 0.9), [[200.0, 200.0, True]], size) is None
    small = np.zeros((480, 640), bool)
    small[100:120, 100:120] = True
    far = [[110.0, 110.0, True], [500.0, 400.0, True]]  # a positive click far off: too large a box
    assert framing_box(MaskPrediction(small, 0.9), far, size) is None
