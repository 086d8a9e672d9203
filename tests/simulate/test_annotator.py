"""The campaign's simulated annotator: what it does to reach manual quality, and its cost."""

import numpy as np
import pytest

from fewclick.simulate.annotator import (
    COST_SECONDS,
    ClickMemory,
    apply,
    at_manual_quality,
    clicks_stalled,
    edge_fit,
    finish,
    fit_edges,
    manual,
    match,
    next_click,
    work_left,
)
from fewclick.types import Objects

GT = Objects(
    [0, 0, 1, 1, 0],
    [[0, 0, 20, 20], [40, 0, 60, 20], [0, 40, 20, 60], [40, 40, 80, 80], [100, 100, 140, 140]],
    ignore=[False, False, False, False, True],  # the last is ignore-type (DontCare, crowd)
)


def test_boxes_at_manual_quality_need_nothing():
    boxes, labels = GT.boxes[:4], GT.labels[:4]
    assert at_manual_quality(GT, boxes, labels)
    assert finish(GT, boxes, labels, current_class=0).interactions == 0
    assert next_click(GT, boxes, labels) is None


def test_each_kind_of_error_gets_its_fix_and_the_result_is_manual_quality():
    boxes = np.array(
        [
            [0, 0, 20, 20],  # right
            [44, 4, 66, 26],  # object 1 at IoU ~0.5: dragged onto it
            [0, 40, 20, 60],  # object 2 with the wrong class: selected, class key
            [200, 200, 220, 220],  # nothing there: rejected (a right-click)
            [101, 101, 139, 139],  # on the ignore-type object: left alone
        ],
        np.float32,
    )
    labels = np.array([0, 0, 0, 1, 1])
    assert match(GT, boxes, labels).tolist() == [0, -1, -1, -1, -1]
    plan = finish(GT, boxes, labels, current_class=0)
    kinds = [a.kind for a in plan.actions]
    # object 3 (class 1, missing) is drawn after one class key
    assert kinds == ["edit", "click", "class change", "reject", "draw"]
    assert plan.fixes_proposals, "a class change of an accepted box: Enter first"
    assert plan.seconds(verified=2) == pytest.approx(
        sum(COST_SECONDS[k] for k in kinds) + 2 * COST_SECONDS["verify"]
    )
    final_boxes, final_labels = apply(plan, boxes, labels)
    assert at_manual_quality(GT, final_boxes, final_labels)
    assert not at_manual_quality(GT, boxes, labels)


def test_a_loose_proposal_is_drawn_over_in_its_objects_class_without_enter():
    boxes = np.array([[0, 0, 20, 20], [40, 0, 60, 20], [2, 44, 24, 66], [40, 40, 80, 80]], np.float32)
    labels = np.array([0, 0, 0, 1])  # the third: loose (IoU ~0.5) and of the wrong class
    plan = finish(GT, boxes, labels, current_class=0)
    assert [(a.kind, a.index, a.class_index) for a in plan.actions] == [
        ("class change", None, 1),
        ("edit", 2, 1),
    ]
    assert not plan.fixes_proposals, "the box drawn over the proposal takes its place: no Enter"
    assert at_manual_quality(GT, *apply(plan, boxes, labels))


def test_manual_drawing_is_a_drag_an_object_and_a_class_key_per_class_change():
    plan = manual(GT, current_class=1)
    kinds = [a.kind for a in plan.actions]
    assert kinds == ["draw", "draw", "class change", "draw", "draw"], "class 1 first: it is selected"
    assert not plan.fixes_proposals, "drawing and picking a class leave proposals as they are"
    assert at_manual_quality(GT, *apply(plan, np.zeros((0, 4)), np.zeros(0, np.int64)))


def test_the_next_click_is_the_largest_missed_object():
    assert next_click(GT, GT.boxes[:1], GT.labels[:1]) == 3
    assert next_click(GT, GT.boxes[:4], GT.labels[:4]) is None


def test_an_object_inside_a_proposal_of_its_class_is_not_clicked():
    loose = np.array([[35, 35, 90, 90]], np.float32)  # around object 3 (class 1), IoU under 0.7
    assert next_click(GT, loose, [1]) == 0, "a click there would accept the loose box: another object"
    assert next_click(GT, loose, [0]) == 3, "a box of another class: the click detects"


def test_the_next_click_keeps_to_the_classes_worth_clicking():
    assert next_click(GT, GT.boxes[:1], GT.labels[:1], classes=[0]) == 1, "class 1's objects are drawn"
    assert next_click(GT, GT.boxes[:2], GT.labels[:2], classes=[0]) is None
    assert next_click(GT, GT.boxes[:1], GT.labels[:1], classes=[]) is None


def test_the_work_left_prices_the_plan_and_enter_when_a_proposal_needs_a_fix():
    nothing = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    assert work_left(GT, *nothing, current_class=0) == pytest.approx(manual(GT, 0).seconds())
    assert work_left(GT, GT.boxes[:4], GT.labels[:4], current_class=0) == 0
    stray = (
        np.concatenate([GT.boxes[:4], [[200, 200, 220, 220]]]).astype(np.float32),
        np.array([0, 0, 1, 1, 0]),
    )
    reject = COST_SECONDS["reject"]  # a right-click drops it before the submit keeps the rest: no Enter
    assert work_left(GT, *stray, current_class=0) == pytest.approx(reject)
    assert not finish(GT, *stray, current_class=0).fixes_proposals


@pytest.mark.parametrize(
    "gains, image, worth",
    [
        ([], 0, True),  # never clicked: worth a try
        ([3.0], 1, True),
        ([-2.0, 1.0], 1, False),  # saved nothing on average
        ([-2.0, 1.0], 3, True),  # 3 images without a click of it: tried again
    ],
)
def test_a_class_is_clicked_while_its_clicks_save_time(gains, image, worth):
    memory = ClickMemory(window=4, retry=3)
    for g in gains:
        memory.remember(1, 0, g)
    assert memory.worth(1, image) is worth
    assert memory.worth(0, image), "another class keeps its own record"


def test_a_class_remembers_only_its_last_clicks():
    memory = ClickMemory(window=2)
    for g in (-5.0, -5.0, 1.0, 1.0):
        memory.remember(0, 4, g)
    assert memory.gains[0] == [1.0, 1.0] and memory.worth(0, 5)


def test_a_polygon_has_a_vertex_a_corner_and_manual_masks_group_by_class():
    from fewclick.simulate.annotator import manual_masks, mask_iou, polygon_vertices

    square = np.zeros((40, 40), bool)
    square[5:25, 5:25] = True
    disk = np.hypot(*np.mgrid[-20:20, -20:20]) < 15
    assert polygon_vertices(square) == 4
    assert 8 <= polygon_vertices(disk) <= 40, "a circle at 1 px: tens of vertices, not its 90 boundary pixels"
    plan = manual_masks([square, disk, square], np.array([1, 0, 1]), current_class=0)
    kinds = [a.kind for a in plan.actions]
    assert kinds[0] == "vertex" and kinds.count("class change") == 1
    assert kinds.count("vertex") == 8 + polygon_vertices(disk)
    assert kinds.count("accept") == 3, "each outline closed by Enter"
    assert mask_iou(square, square) == 1.0 and mask_iou(square, ~square) == 0.0


def test_an_outline_follows_the_edge_a_person_clicks_and_fills_back_to_the_mask():
    from fewclick.io.rle import polygons_to_mask
    from fewclick.simulate.annotator import MASK_IOU, mask_iou, polygon_outlines

    rect = np.zeros((64, 64), bool)
    rect[10:13, 10:14] = True  # 3 x 4 pixels: through the pixel centres it would fill 2 x 3
    [ring] = polygon_outlines(rect)
    assert sorted(map(tuple, ring.tolist())) == [(10, 10), (10, 13), (14, 10), (14, 13)]
    assert np.array_equal(polygons_to_mask([ring], 64, 64), rect)
    two = np.zeros((64, 64), bool)
    two[5:15, 5:15] = True
    two[30:50, 40:60] = np.hypot(*np.mgrid[-10:10, -10:10]) < 9
    rings = polygon_outlines(two)
    assert len(rings) == 2
    assert mask_iou(polygons_to_mask(rings, 64, 64), two) >= MASK_IOU
    line = np.zeros((64, 64), bool)
    line[20, 5:30] = True
    [ring] = polygon_outlines(line)
    assert np.array_equal(polygons_to_mask([ring], 64, 64), line)


def test_an_object_with_its_own_polygon_is_outlined_by_it_with_the_vertices_quality_takes():
    from fewclick.io.rle import polygons_to_mask
    from fewclick.simulate.annotator import MASK_IOU, mask_iou, polygon_outlines, polygon_vertices

    octagon = [[10, 4, 14, 4, 17, 7, 17, 11, 14, 14, 10, 14, 7, 11, 7, 7]]  # COCO's flat list
    mask = polygons_to_mask(octagon, 32, 32)
    [ring] = polygon_outlines(mask, octagon)
    assert len(ring) == 8 and np.allclose(ring, np.reshape(octagon, (-1, 2)))
    # a small wavy outline: at 1 px its simplification (5 vertices) fills to IoU 0.84, so a
    # person clicks more of its vertices
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    radius = 4 + 0.9 * np.sin(5 * t)
    wavy = np.stack([8 + radius * np.cos(t), 8 + radius * np.sin(t)], 1).reshape(-1).tolist()
    mask = polygons_to_mask([wavy], 16, 16)
    [ring] = polygon_outlines(mask, [wavy])
    assert 5 < len(ring) <= 40
    assert mask_iou(polygons_to_mask([ring], 16, 16), mask) >= MASK_IOU
    assert polygon_vertices(mask, [wavy]) == len(ring)


def test_clicks_stall_after_two_clicks_in_a_row_that_gained_under_a_point():
    assert not clicks_stalled([0.5])
    assert not clicks_stalled([0.5, 0.505]), "one small gain is not a run"
    assert clicks_stalled([0.5, 0.505, 0.51])
    assert not clicks_stalled([0.5, 0.505, 0.6]), "the last click helped"
    assert clicks_stalled([0.5, 0.7, 0.69, 0.65]), "losses are no gain either"
    assert not clicks_stalled([0.5, 0.7, 0.705, 0.8, 0.805])


def test_an_object_whose_box_has_no_width_is_neither_drawn_nor_required():
    gt = Objects([0, 0], [[0, 0, 20, 20], [1, 187, 1, 219]])  # DOTA's P1478: corners enclosing no area
    plan = manual(gt, current_class=0)
    assert [a.kind for a in plan.actions].count("draw") == 1, "only the drawable object is drawn"
    assert at_manual_quality(gt, gt.boxes[:1], gt.labels[:1])


# six objects of one class, 20 px a side; SAM's boxes of them all 3 px inside on every edge
# (IoU 0.49: each to be drawn again), as on an image whose person drew loose boxes
ROW = Objects([0] * 6, [[40 * k, 0, 40 * k + 20, 20] for k in range(6)])


def test_one_box_drawn_over_a_proposal_and_e_fix_a_whole_image_drawn_looser():
    tight = ROW.boxes + np.array([3, 3, -3, -3], np.float32)
    labels, scores = np.zeros(6, np.int64), np.linspace(0.9, 0.5, 6)
    assert finish(ROW, tight, labels, 0).interactions == 6  # each drawn again without E
    fit = edge_fit(ROW, tight, labels, scores, 0)
    assert fit is not None and fit.index == 0  # the surest proposal is drawn over
    np.testing.assert_allclose(fit.box, ROW.boxes[0])
    assert at_manual_quality(ROW, fit.boxes, labels)
    assert finish(ROW, fit.boxes, labels, 0).interactions == 0


def test_no_edge_fit_where_it_does_not_pay():
    labels, scores = np.zeros(6, np.int64), np.full(6, 0.8)
    assert edge_fit(ROW, ROW.boxes, labels, scores, 0) is None  # every box right already
    # each box off its own way: no one box's move fits another
    ways = [[4, 4, 4, 4], [-4, -4, -4, -4], [4, -4, 4, -4], [-4, 4, -4, 4], [4, 0, -4, 0], [0, 4, 0, -4]]
    scattered = ROW.boxes + np.array(ways, np.float32)
    assert finish(ROW, scattered, labels, 0).interactions == 6
    assert edge_fit(ROW, scattered, labels, scores, 0) is None


def test_e_moves_only_the_class_and_never_below_a_pixel():
    boxes = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [0, 0, 4, 4]], np.float32)
    moved = fit_edges(boxes, np.array([0, 1, 0]), 0, np.array([-2, -2, 2, 2], np.float32))
    np.testing.assert_allclose(moved[0], [8, 8, 22, 22])
    np.testing.assert_allclose(moved[1], boxes[1])  # another class: as it was
    shrunk = fit_edges(boxes, np.array([0, 1, 0]), 0, np.array([3, 3, -3, -3], np.float32))
    assert (shrunk[:, 2:] - shrunk[:, :2] >= 1).all()
