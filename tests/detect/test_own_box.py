"""The clicked object's own box: a click a trained detector leaves without a box of its
class around it gets the box given for it, at score 1, and the detector's boxes of that
class on top of it go; a click already boxed (at the bar or above) is left as it is.
Tight boxes: a proposal becomes the box around SAM's mask for it, in the classes where that
put more of them at manual quality on held-out images."""

from types import SimpleNamespace

import numpy as np
import pytest

from fewclick.predict.own_box import (
    MIN_FIT,
    OWN_MIN_SCORE,
    EdgeOffsets,
    near_pairs,
    tight_box,
    tight_classes,
    unboxed_clicks,
    with_own_boxes,
)
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


def _grown(boxes, shares):
    """``boxes`` with each edge moved by ``shares`` (x0, y0, x1, y1) of the box's side."""
    b = np.array(boxes, np.float32)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b + np.array(shares, np.float32) * np.stack([w, h, w, h], 1)


def test_edge_offsets_learn_the_persons_edges_against_sams_per_class():
    sam = np.array([[10, 10, 30, 50], [60, 20, 100, 40], [5, 70, 25, 90], [40, 60, 80, 100]], np.float32)
    tall, wide = [0, -0.1, 0, 0.05], [-0.1, 0, 0.1, 0]  # class 0: SAM misses the top; class 1: the sides
    labels = np.array([0, 0, 0, 1, 1, 1])
    sams = np.concatenate([sam[:3], sam[1:]])
    theirs = np.concatenate([_grown(sam[:3], tall), _grown(sam[1:], wide)])
    offsets = EdgeOffsets.fit(labels, theirs, sams)
    assert offsets
    new = np.array([[200, 200, 220, 240]], np.float32)  # a click elsewhere
    assert offsets.apply(new, [0]) == pytest.approx(_grown(new, tall), abs=1e-4)
    assert offsets.apply(new, [1]) == pytest.approx(_grown(new, wide), abs=1e-4)


def test_a_class_with_few_pairs_keeps_sams_boxes():
    sam = np.array([[0, 0, 20, 20], [30, 30, 50, 60], [70, 10, 90, 30], [5, 5, 15, 15]], np.float32)
    shares = [-0.05, -0.05, 0.05, 0.05]
    offsets = EdgeOffsets.fit([0, 0, 0, 1], _grown(sam, shares), sam)
    assert set(offsets.per_class) == {0}, f"class 1 has fewer than {MIN_FIT} pairs"
    box = np.array([[100, 100, 140, 120]], np.float32)
    assert offsets.apply(box, [0]) == pytest.approx(_grown(box, shares), abs=1e-4)
    assert offsets.apply(box, [1]).tolist() == box.tolist(), "nothing borrowed from other classes"
    none = EdgeOffsets.fit([0, 0], _grown(sam[:2], shares), sam[:2])
    assert not none and none.apply(box, [0]).tolist() == box.tolist()
    assert not EdgeOffsets.fit([], np.zeros((0, 4)), np.zeros((0, 4)))


def test_sam_boxes_off_their_object_teach_nothing_and_no_box_turns_inside_out():
    sam = np.array([[0, 0, 20, 20], [30, 30, 50, 50], [60, 60, 80, 80], [0, 0, 200, 200]], np.float32)
    theirs = np.concatenate([_grown(sam[:3], [0, 0, 0.1, 0.1]), [[90, 90, 100, 100]]])  # the 4th: background
    offsets = EdgeOffsets.fit([0, 0, 0, 0], theirs, sam)
    assert offsets.per_class[0] == pytest.approx([0, 0, 0.1, 0.1], abs=1e-6)
    shrink = EdgeOffsets({0: np.array([0.6, 0.6, -0.6, -0.6], np.float32)})
    b = shrink.apply(np.array([[0, 0, 10, 10]], np.float32), [0])[0]
    assert b.tolist() == [5, 5, 5, 5], "edges moved past each other stop at the centre"


class MaskOf:
    """SAM faked: the mask of its box prompt is the pixels of ``inside`` (tile pixels) within it."""

    def __init__(self, shape, inside):
        self.mask = np.zeros(shape, bool)
        x0, y0, x1, y1 = inside
        self.mask[y0:y1, x0:x1] = True
        self.prompts = []

    def predict(self, box):
        self.prompts.append(np.asarray(box).tolist())
        x0, y0, x1, y1 = np.round(box).astype(int)
        cut = np.zeros_like(self.mask)
        cut[max(y0, 0) : y1, max(x0, 0) : x1] = self.mask[max(y0, 0) : y1, max(x0, 0) : x1]
        return SimpleNamespace(mask=cut)


def test_a_tight_box_is_the_box_around_sams_mask_in_image_pixels():
    sam = MaskOf((64, 64), (10, 12, 20, 30))  # the object: x 10..20, y 12..30 of the tile
    assert tight_box(sam, [5, 5, 25, 40]).tolist() == [10, 12, 20, 30]
    # the same object on a tile whose top-left corner is the image's (100, 200)
    assert tight_box(sam, [105, 205, 125, 240], origin=(100, 200)).tolist() == [110, 212, 120, 230]
    assert sam.prompts[-1] == [5, 5, 25, 40], "the prompt in the tile's pixels"
    assert tight_box(sam, [40, 40, 60, 60]).tolist() == [40, 40, 60, 60], "no mask: the proposal as it was"


def test_proposals_pair_with_the_object_of_their_class_they_overlap_most_best_score_first():
    theirs = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    det = _det(
        [[0, 0, 10, 12], [1, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]],
        [0.5, 0.9, 0.8, 0.7],
        [0, 0, 1, 0],
    )
    # the 0.9 proposal takes object 0; the 0.5 one finds it taken; the class-1 one is not object
    # 1's class (0); the last overlaps nothing
    assert near_pairs(det, theirs, [0, 0]) == [(1, 0)]
    assert near_pairs(det, theirs, [0, 1]) == [(1, 0), (2, 1)]
    assert near_pairs(Detections.empty(), theirs, [0, 0]) == []


def test_a_class_is_made_tight_where_more_tight_boxes_reach_manual_quality():
    theirs = np.tile([[0, 0, 10, 10]], (2 * MIN_FIT + 1, 1)).astype(np.float32)
    loose = np.tile([[0, 0, 10, 16]], (len(theirs), 1)).astype(np.float32)  # IoU 0.62
    labels = np.array([0] * MIN_FIT + [1] * MIN_FIT + [2])
    # class 0: tight boxes exact where proposals were loose; class 1: the other way round;
    # class 2: tight helps, but on one pair only (under MIN_FIT): not decided
    proposed = np.where((labels == 1)[:, None], theirs, loose)
    tight = np.where((labels == 1)[:, None], loose, theirs)
    assert tight_classes(labels, theirs, proposed, tight) == {0}
    assert tight_classes(labels, theirs, theirs, theirs) == set(), "no better: the proposals stay"
