import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fewclick.io.rle import objects_masks
from fewclick.types import (
    Click,
    Clicks,
    Detections,
    ExtremePoints,
    Objects,
    box_centers,
    polygons_to_boxes,
    rboxes_to_boxes,
    rboxes_to_polygons,
)


def _dets(n: int, **extra) -> Detections:
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)) + np.arange(n)[:, None]
    return Detections(boxes, np.linspace(1, 0, n), np.arange(n) % 3, **extra)


def test_detections_index_returns_detections_for_every_index_kind():
    det = _dets(5, rboxes=np.zeros((5, 5)), points=np.zeros((5, 2)))
    assert isinstance(det[0], Detections) and len(det[0]) == 1
    assert len(det[-1]) == 1 and det[-1].scores[0] == det.scores[-1]
    assert len(det[1:3]) == 2
    assert len(det[np.array([0, 4])]) == 2
    assert len(det[det.scores >= 0.5]) == 3
    assert det[2].rboxes.shape == (1, 5) and det[2].points.shape == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boxes": np.zeros((2, 3)), "scores": [1, 1], "labels": [0, 0]}, "shape \\(N, 4\\)"),
        ({"boxes": np.zeros((2, 4)), "scores": [1], "labels": [0, 0]}, "expected 2 scores"),
        ({"boxes": np.zeros((2, 4)), "scores": [1, 1], "labels": [0]}, "expected 2 labels"),
        (
            {"boxes": np.zeros((2, 4)), "scores": [1, 1], "labels": [0, 0], "rboxes": np.zeros((1, 5))},
            "expected 2 rboxes",
        ),
        (
            {"boxes": np.zeros((2, 4)), "scores": [1, 1], "labels": [0, 0], "masks": np.zeros((2, 4))},
            "masks of shape",
        ),
    ],
)
def test_detections_validate(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


def test_empty_detections_and_concatenate():
    empty = Detections.empty()
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    joined = Detections.concatenate([_dets(2), empty, _dets(3)])
    assert len(joined) == 5
    assert len(Detections.concatenate([])) == 0
    with pytest.raises(ValueError, match="with and without rboxes"):
        Detections.concatenate([_dets(1), _dets(1, rboxes=np.zeros((1, 5)))])


def test_clicks_round_trip_list_and_concat():
    clicks = [Click(1.5, 2.0, label=3), Click(4, 5, positive=False)]
    col = Clicks.from_list(clicks)
    assert col.to_list() == clicks
    assert len(col + Clicks.empty()) == 2
    assert col[1].positive.tolist() == [False]
    with pytest.raises(ValueError, match="one length"):
        Clicks(np.zeros((2, 2)), [0], [True, True])


def test_objects_centers_fall_back_to_points_and_masks_fall_back_to_boxes():
    objs = Objects([0, 1], [[0, 0, 4, 2], [np.nan] * 4], points=[[np.nan, np.nan], [7, 8]])
    np.testing.assert_allclose(objs.centers, [[2, 1], [7, 8]])
    masks = objects_masks(objs, 4, 6)
    assert masks[0].sum() == 8 and masks[1].sum() == 0
    assert objs[1].labels.tolist() == [1] and len(objs[[0, 1]]) == 2


def test_objects_validate_lengths():
    with pytest.raises(ValueError, match="expected 2 ignore"):
        Objects([0, 1], np.zeros((2, 4)), ignore=[True])


def test_extreme_points_box_and_shape():
    ep = ExtremePoints([[1, 5], [3, 2], [9, 4], [4, 8]])
    np.testing.assert_array_equal(ep.box, [1, 2, 9, 8])
    with pytest.raises(ValueError, match="shape \\(4, 2\\)"):
        ExtremePoints([[0, 0]])


def test_rbox_polygon_of_known_rotation():
    # A 4 x 2 box at (10, 10) turned a quarter turn counter-clockwise on screen is 2 wide, 4 tall.
    poly = rboxes_to_polygons([[10, 10, 4, 2, np.pi / 2]])[0]
    np.testing.assert_allclose(polygons_to_boxes(poly[None])[0], [9, 8, 11, 12], atol=1e-5)
    # Unrotated: corners start top-left and run clockwise on screen.
    np.testing.assert_allclose(
        rboxes_to_polygons([[10, 10, 4, 2, 0]])[0], [[8, 9], [12, 9], [12, 11], [8, 11]]
    )


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 500), st.floats(0, 500), st.floats(1, 100), st.floats(1, 100), st.floats(0, np.pi - 1e-3))
def test_rbox_enclosing_box_contains_centre_and_has_the_rotated_extent(cx, cy, w, h, a):
    box = rboxes_to_boxes([[cx, cy, w, h, a]])[0]
    np.testing.assert_allclose(box_centers(box[None])[0], [cx, cy], atol=1e-3)
    width = abs(w * np.cos(a)) + abs(h * np.sin(a))
    np.testing.assert_allclose(box[2] - box[0], width, rtol=1e-4, atol=1e-3)
