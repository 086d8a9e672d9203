"""A mask as an editable outline and back: the rings, their holes and parts, the fill rule."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fewclick.io.rle import segmentation_to_mask
from fewclick.outline import _edge_rings, editable_outline, fill_outline, outline_problem

COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_tiny" / "annotations"


def art(text: str) -> np.ndarray:
    """An ASCII-art mask: ``#`` on, ``.`` off."""
    return np.array([[c == "#" for c in row] for row in text.split()])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


HOLE = art("""
.........
.#######.
.#######.
.##...##.
.##...##.
.##...##.
.#######.
.#######.
.........
""")
TWO_PARTS = art("""
###.......
###.......
###....##.
.......##.
..........
""")
THIN = art("""
#.........
.#........
..#.......
...#######
""")
ONE_PIXEL = art("""
...
.#.
...
""")
ISLAND_IN_HOLE = art("""
#######
#.....#
#.###.#
#.#.#.#
#.###.#
#.....#
#######
""")


@pytest.mark.parametrize(
    ("mask", "parts", "holes"),
    [(HOLE, 1, 1), (TWO_PARTS, 2, 0), (THIN, 1, 0), (ONE_PIXEL, 1, 0), (ISLAND_IN_HOLE, 2, 2)],
)
def test_an_outline_keeps_the_parts_and_holes_and_fills_back(mask, parts, holes):
    rings = editable_outline(mask)
    assert [hole for _, hole in rings].count(False) == parts
    assert [hole for _, hole in rings].count(True) == holes
    assert all(r.shape[1] == 2 and len(r) >= 3 and r.dtype == np.float64 for r, _ in rings)
    assert iou(fill_outline(rings, *mask.shape), mask) >= 0.95
    assert outline_problem(rings, *mask.shape) == ""


def test_a_square_runs_along_pixel_edges_and_a_hole_is_cut_out():
    rings = editable_outline(HOLE)
    outer = next(r for r, hole in rings if not hole)
    inner = next(r for r, hole in rings if hole)
    assert sorted(map(tuple, outer)) == [(1, 1), (1, 8), (8, 1), (8, 8)]
    # a hole's ring is traced through the pixels around it and moved in: its corners cut
    assert (inner >= 3).all() and (inner <= 6).all()
    assert (fill_outline(rings, *HOLE.shape) == HOLE).all()


def test_one_pixel_is_its_square():
    ((ring, hole),) = editable_outline(ONE_PIXEL)
    assert not hole and sorted(map(tuple, ring)) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_an_empty_mask_has_no_outline_and_a_cube_is_refused():
    assert editable_outline(np.zeros((4, 5), bool)) == []
    assert not fill_outline([], 4, 5).any()
    with pytest.raises(ValueError, match=r"expected a mask of shape \(H, W\), got \(2, 3, 4\)"):
        editable_outline(np.zeros((2, 3, 4), bool))


@settings(max_examples=300, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 14), st.integers(1, 14))))
def test_the_unsimplified_rings_fill_back_to_the_very_mask(mask):
    assert (fill_outline(_edge_rings(mask), *mask.shape) == mask).all()


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_any_mask_gives_a_good_outline(mask):
    rings = editable_outline(mask)
    if mask.any():
        assert iou(fill_outline(rings, *mask.shape), mask) >= 0.95
    assert outline_problem(rings, *mask.shape) == ""


def test_the_outline_moves_with_the_mask():
    big = np.zeros((40, 50), bool)
    big[10:20, 30:45] = True
    rings = editable_outline(big)
    assert sorted(map(tuple, rings[0][0])) == [(30, 10), (30, 20), (45, 10), (45, 20)]
    assert (fill_outline(rings, 40, 50) == big).all()


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([[0, 0], [4, 0]], "ring 0 has 2 vertices: an outline needs at least 3"),
        ([[0, 0], [4, 4], [4, 0], [0, 4]], "ring 0 crosses itself"),
        ([[0, 0], [12, 0], [0, 4]], "ring 0 leaves the 10 x 8 image at (12.0, 0.0)"),
        ([[0, 0], [np.nan, 0], [0, 4]], "ring 0 has a vertex that is not a number"),
    ],
)
def test_a_bad_ring_is_named(points, problem):
    assert outline_problem([(np.array(points, float), False)], 8, 10) == problem


def test_rings_that_cross_are_named_and_nested_or_touching_ones_are_not():
    square = np.array([[1, 1], [5, 1], [5, 5], [1, 5]], float)
    assert outline_problem([(square, False), (square + 2, False)]) == "ring 0 crosses ring 1"
    assert outline_problem([(square, False), (square * 0.5 + 1.5, True)]) == ""
    assert outline_problem([(square, False), (square + 4, False)]) == ""


def test_the_fill_counts_a_pixel_by_its_centre():
    # a triangle through pixel centres: a centre on a left edge stays off, on a right edge on
    ring = np.array([[0.5, 0.0], [3.5, 0.0], [3.5, 3.0], [0.5, 3.0]])
    filled = fill_outline([(ring, False)], 3, 5)
    assert filled.tolist() == [[False, True, True, True, False]] * 3


@pytest.mark.shared_data
def test_coco_objects_get_few_vertices_and_keep_their_shape():
    path = COCO / "instances_train2017.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared coco_tiny data)")
    data = json.loads(path.read_text())
    images = {i["id"]: i for i in data["images"]}
    vertices = []
    for a in [a for a in data["annotations"] if not a.get("iscrowd")][:120]:
        image = images[a["image_id"]]
        mask = segmentation_to_mask(a["segmentation"], image["height"], image["width"])
        if mask.sum() < 100:
            continue
        rings = editable_outline(mask)
        assert iou(fill_outline(rings, *mask.shape), mask) >= 0.95
        vertices.append(sum(len(r) for r, _ in rings))
    assert 8 <= np.median(vertices) <= 30
