"""Tiling large images, cropping their objects, and merging per-tile detections."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fewclick.io import rle
from fewclick.io.tiling import (
    Tile,
    crop_image,
    crop_objects,
    merge_detections,
    polygon_nms,
    tile_grid,
    tile_image,
)
from fewclick.types import Detections, Objects, polygons_to_boxes, rboxes_to_polygons

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def dets(boxes, scores, labels=None, **extra) -> Detections:
    labels = np.zeros(len(scores), np.int64) if labels is None else labels
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, labels, **extra)


# --------------------------------------------------------------------------- grid
def coverage(tiles: list[Tile], width: int, height: int) -> np.ndarray:
    count = np.zeros((height, width), np.int32)
    for tile in tiles:
        count[tile.slices] += 1
    return count


def test_grid_dota_example():
    tiles = tile_grid(2000, 1500, size=1024, overlap=200)
    assert sorted({t.x0 for t in tiles}) == [0, 824, 976]
    assert sorted({t.y0 for t in tiles}) == [0, 476]
    assert all(t.shape == (1024, 1024) for t in tiles)
    assert max(t.x1 for t in tiles) == 2000 and max(t.y1 for t in tiles) == 1500


@FAST
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    size=st.integers(8, 120),
    overlap_fraction=st.floats(0, 0.95),
)
def test_grid_covers_every_pixel(width, height, size, overlap_fraction):
    overlap = int(size * overlap_fraction)
    tiles = tile_grid(width, height, size, overlap)
    count = coverage(tiles, width, height)
    assert count.min() >= 1
    for tile in tiles:
        assert tile.x1 <= width and tile.y1 <= height
        assert tile.width == min(size, width) and tile.height == min(size, height)
    xs = sorted({t.x0 for t in tiles})
    assert np.all(np.diff(xs) <= size - overlap)  # neighbours overlap by at least `overlap`
    assert max(t.x1 for t in tiles) == width and max(t.y1 for t in tiles) == height


def test_tiny_image_gives_one_tile():
    assert tile_grid(300, 200, size=1024, overlap=200) == [Tile(0, 0, 300, 200)]


def test_one_short_side():
    tiles = tile_grid(2000, 500)
    assert len(tiles) == 3 and all(t.shape == (500, 1024) for t in tiles)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((100, 100, 0, 0), "size"),
        ((100, 100, -5, 0), "size"),
        ((100, 100, 64, 64), "overlap"),
        ((100, 100, 64, 100), "overlap"),
        ((100, 100, 64, -1), "overlap"),
        ((0, 100, 64, 8), "width"),
        ((100, -1, 64, 8), "height"),
    ],
)
def test_grid_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        tile_grid(*args)


def test_grid_rejects_float_size():
    with pytest.raises(TypeError):
        tile_grid(100, 100, 64.5, 8)


@pytest.mark.parametrize("corners", [(5, 5, 5, 10), (0, 0, 10, -1), (-1, 0, 10, 10)])
def test_tile_rejects_empty_window(corners):
    with pytest.raises(ValueError, match="tile"):
        Tile(*corners)


def test_tile_properties():
    tile = Tile(10, 20, 50, 80)
    assert tile.offset == (10, 20) and tile.shape == (60, 40)
    np.testing.assert_array_equal(tile.box, [10, 20, 50, 80])


def test_crop_image_is_a_view_and_checks_bounds():
    image = np.arange(12 * 20 * 3, dtype=np.uint8).reshape(12, 20, 3)
    crop = crop_image(image, Tile(4, 2, 10, 7))
    assert crop.shape == (5, 6, 3) and np.shares_memory(crop, image)
    np.testing.assert_array_equal(crop, image[2:7, 4:10])
    with pytest.raises(ValueError, match="inside"):
        crop_image(image, Tile(15, 0, 25, 10))


def test_tile_image_pairs():
    image = np.zeros((100, 150), np.uint8)
    pairs = tile_image(image, size=64, overlap=16)
    assert [t for t, _ in pairs] == tile_grid(150, 100, 64, 16)
    assert all(crop.shape == (64, 64) for _, crop in pairs)


# --------------------------------------------------------------------------- crop_objects
TILE = Tile(100, 50, 200, 150)


def row_box(x0: float) -> list[float]:
    """A 100 x 10 box starting at x0; the tile's right edge is x = 200."""
    return [x0, 60, x0 + 100, 70]


@pytest.mark.parametrize(("x0", "kept"), [(129, True), (130, True), (131, False)])
def test_seventy_percent_rule(x0, kept):
    objects = Objects([3], [row_box(x0)])
    out = crop_objects(objects, TILE)
    assert len(out) == int(kept)
    if kept:
        np.testing.assert_allclose(out.boxes[0], [x0 - 100, 10, 100, 20])
        assert out.difficult[0] == 0 and not out.ignore[0]


def test_kept_objects_keep_their_difficult_and_weak_ones_become_difficult_2():
    objects = Objects(
        [0, 1, 2, 3], [row_box(110), row_box(129), row_box(160), row_box(300)], difficult=[1, 0, 0, 0]
    )
    dropped = crop_objects(objects, TILE)
    np.testing.assert_array_equal(dropped.labels, [0, 1])
    np.testing.assert_array_equal(dropped.difficult, [1, 0])
    marked = crop_objects(objects, TILE, cut_as_difficult=True)
    np.testing.assert_array_equal(marked.labels, [0, 1, 2])  # the box outside the tile goes
    np.testing.assert_array_equal(marked.difficult, [1, 0, 2])
    np.testing.assert_array_equal(marked.ignore, [False, False, True])


def test_min_visible_zero_keeps_touching_objects_only():
    objects = Objects([0, 1], [[195, 60, 205, 70], [200, 60, 210, 70]])  # the second only touches x = 200
    out = crop_objects(objects, TILE, min_visible=0.0)
    np.testing.assert_array_equal(out.labels, [0])


def test_oriented_visibility_uses_the_polygon():
    # A 45-degree diamond with half-diagonal 10 centred at x = 97: the tile (x < 100)
    # holds 151 of its 200 px^2 (75.5 %), but only 65 % of its enclosing box.
    tile = Tile(0, 0, 100, 100)
    side = 10 * np.sqrt(2)
    objects = Objects([0], [[87, 40, 107, 60]], rboxes=[[97, 50, side, side, np.pi / 4]])
    out = crop_objects(objects, tile)
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0], [87, 40, 100, 60], atol=1e-4)
    piece = shapely.Polygon([(87, 50), (97, 40), (100, 43), (100, 57), (97, 60)])
    rect = shapely.Polygon(rboxes_to_polygons(out.rboxes)[0])
    assert piece.area == pytest.approx(151)
    assert rect.buffer(1e-3).contains(piece)
    assert rect.area == pytest.approx(shapely.minimum_rotated_rectangle(piece).area, rel=1e-4)


def test_oriented_cut_box_becomes_the_visible_part():
    tile = Tile(0, 0, 100, 100)
    objects = Objects([0], [[70, 45, 110, 55]], rboxes=[[90, 50, 40, 10, 0.0]])
    out = crop_objects(objects, tile)
    np.testing.assert_allclose(
        polygons_to_boxes(rboxes_to_polygons(out.rboxes)), [[70, 45, 100, 55]], atol=1e-3
    )


def test_uncut_oriented_box_is_only_translated():
    objects = Objects([0], [[120, 70, 140, 90]], rboxes=[[130, 80, 20, 10, 0.3]])
    out = crop_objects(objects, TILE)
    np.testing.assert_allclose(out.rboxes, [[30, 30, 20, 10, 0.3]], atol=1e-5)


def test_point_only_objects_are_kept_when_the_point_is_inside():
    nan = [np.nan] * 4
    objects = Objects([0, 1, 2], [nan, nan, nan], points=[[150, 60], [99, 60], [200, 149]])
    out = crop_objects(objects, TILE)
    np.testing.assert_array_equal(out.labels, [0])
    np.testing.assert_allclose(out.points, [[50, 10]])
    assert np.isnan(out.boxes).all()


def test_segmentations_are_translated_and_rle_cropped():
    mask = np.zeros((30, 40), bool)
    mask[8:14, 12:30] = True
    polygon = square(12, 8, 30, 14).reshape(-1, 2)
    objects = Objects([0, 1], [[12, 8, 30, 14]] * 2, segmentations=[rle.mask_to_rle(mask), [polygon]])
    tile = Tile(10, 5, 36, 25)
    out = crop_objects(objects, tile)
    np.testing.assert_array_equal(rle.rle_to_mask(out.segmentations[0]), mask[5:25, 10:36])
    np.testing.assert_allclose(out.segmentations[1][0], polygon - [10, 5])
    with pytest.raises(ValueError, match="RLE"):
        crop_objects(objects, Tile(10, 5, 50, 25), min_visible=0.0)


def test_crop_empty_objects_and_bad_threshold():
    assert len(crop_objects(Objects.empty(), TILE)) == 0
    with pytest.raises(ValueError, match="min_visible"):
        crop_objects(Objects.empty(), TILE, min_visible=1.5)


@FAST
@given(data=st.data(), width=st.integers(20, 200), height=st.integers(20, 200), size=st.integers(16, 64))
def test_tiles_recover_every_box(data, width, height, size):
    overlap = data.draw(st.integers(0, size - 1))
    n = data.draw(st.integers(1, 8))
    x0 = np.array(data.draw(st.lists(st.integers(0, width - 2), min_size=n, max_size=n)))
    y0 = np.array(data.draw(st.lists(st.integers(0, height - 2), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.floats(0.5, 40), min_size=n, max_size=n)))
    h = np.array(data.draw(st.lists(st.floats(0.5, 40), min_size=n, max_size=n)))
    boxes = np.stack([x0, y0, np.minimum(x0 + w, width), np.minimum(y0 + h, height)], 1).astype(np.float32)
    objects = Objects(np.arange(n), boxes)
    pieces: list[list] = [[] for _ in range(n)]
    for tile in tile_grid(width, height, size, overlap):
        part = crop_objects(objects, tile, min_visible=0.0)
        for label, box in zip(part.labels, part.boxes + np.tile(tile.offset, 2), strict=True):
            pieces[label].append(shapely.box(*box))
    for box, parts in zip(boxes, pieces, strict=True):
        union = shapely.union_all(parts)
        assert union.area == pytest.approx(shapely.box(*box).area, rel=1e-4)
        assert shapely.box(*box).buffer(1e-3).contains(union)


# --------------------------------------------------------------------------- polygon_nms
def test_polygon_nms_overlapping_squares():
    polys = np.stack([square(0, 0, 2, 2), square(1, 0, 3, 2)])  # IoU 2 / 6 = 1/3
    np.testing.assert_array_equal(polygon_nms(polys, [0.8, 0.9], 0.3), [1])
    np.testing.assert_array_equal(polygon_nms(polys, [0.8, 0.9], 0.34), [1, 0])


def test_polygon_nms_rotated_square_iou():
    # A 2 x 2 square and the same square turned 45 degrees: IoU = 1 / sqrt(2).
    polys = rboxes_to_polygons([[0, 0, 2, 2, 0.0], [0, 0, 2, 2, np.pi / 4]])
    np.testing.assert_array_equal(polygon_nms(polys, [0.9, 0.8], 0.70), [0])
    np.testing.assert_array_equal(polygon_nms(polys, [0.9, 0.8], 0.71), [0, 1])


def test_polygon_nms_is_greedy():
    # A suppresses B; B would have suppressed C, but a suppressed box suppresses nothing.
    polys = np.stack([square(0, 0, 10, 10), square(4, 0, 14, 10), square(9, 0, 19, 10)])
    np.testing.assert_array_equal(polygon_nms(polys, [0.9, 0.8, 0.7], 0.3), [0, 2])


def test_polygon_nms_matches_torchvision_on_boxes(rng):
    import torch
    from torchvision.ops import nms

    for _ in range(5):
        xy = rng.uniform(0, 100, (60, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (60, 2))], 1).astype(np.float32)
        scores = rng.uniform(size=60).astype(np.float32)
        polys = np.stack([square(*b) for b in boxes])
        expected = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.4).numpy()
        np.testing.assert_array_equal(polygon_nms(polys, scores, 0.4), expected)


def test_polygon_nms_empty_and_bad_shape():
    assert polygon_nms(np.zeros((0, 4, 2)), np.zeros(0), 0.1).shape == (0,)
    with pytest.raises(ValueError, match="polygons"):
        polygon_nms(np.zeros((2, 8)), np.zeros(2), 0.1)


# --------------------------------------------------------------------------- merge
LEFT, RIGHT = Tile(0, 0, 100, 100), Tile(80, 0, 180, 100)


def test_duplicates_in_overlapping_tiles_collapse_to_the_best():
    merged = merge_detections(
        [(LEFT, dets([[85, 10, 95, 20]], [0.8])), (RIGHT, dets([[5, 10, 15, 20]], [0.9]))]
    )
    assert len(merged) == 1
    assert merged.scores[0] == pytest.approx(0.9)
    np.testing.assert_allclose(merged.boxes[0], [85, 10, 95, 20])


@pytest.mark.parametrize(("class_agnostic", "count"), [(False, 2), (True, 1)])
def test_classes_do_not_suppress_each_other(class_agnostic, count):
    per_tile = [(LEFT, dets([[85, 10, 95, 20]], [0.8], [0])), (RIGHT, dets([[5, 10, 15, 20]], [0.9], [1]))]
    assert len(merge_detections(per_tile, class_agnostic=class_agnostic)) == count


def test_oriented_merge_uses_polygon_nms_at_0_1():
    a = dict(rboxes=[[90, 50, 20, 6, 0.5]])
    b = dict(rboxes=[[11, 51, 20, 6, 0.45]])
    per_tile = [(LEFT, dets([[80, 40, 100, 60]], [0.7], **a)), (RIGHT, dets([[1, 41, 21, 61]], [0.6], **b))]
    merged = merge_detections(per_tile, oriented=True)
    assert len(merged) == 1
    np.testing.assert_allclose(merged.rboxes, [[90, 50, 20, 6, 0.5]])
    with pytest.raises(ValueError, match="rboxes"):
        merge_detections([(LEFT, dets([[0, 0, 5, 5]], [0.9]))], oriented=True)


def test_score_threshold():
    merged = merge_detections(
        [(LEFT, dets([[0, 0, 5, 5], [20, 0, 25, 5], [40, 0, 45, 5]], [0.04, 0.05, 0.5]))]
    )
    np.testing.assert_allclose(merged.scores, [0.5, 0.05])


@pytest.mark.parametrize("oriented", [False, True])
def test_merge_empty_inputs(oriented):
    assert len(merge_detections([], oriented=oriented)) == 0
    empty = merge_detections(
        [(LEFT, Detections.empty()), (RIGHT, Detections.empty(oriented))], oriented=oriented
    )
    assert len(empty) == 0
    assert (empty.rboxes is not None) == oriented


def test_merge_shifts_points_and_pastes_masks():
    mask = np.zeros((1, 100, 100), bool)
    mask[0, 10:20, 5:15] = True
    per_tile = [(RIGHT, dets([[5, 10, 15, 20]], [0.9], points=[[10, 15]], masks=mask)), (LEFT, dets([], []))]
    merged = merge_detections(per_tile)
    np.testing.assert_allclose(merged.points, [[90, 15]])
    assert merged.masks.shape == (1, 100, 180)
    expected = np.zeros((100, 180), bool)
    expected[10:20, 85:95] = True
    np.testing.assert_array_equal(merged.masks[0], expected)


def test_merge_rejects_masks_of_the_wrong_shape_and_mixes():
    small = np.zeros((1, 10, 10), bool)
    with pytest.raises(ValueError, match="masks"):
        merge_detections([(LEFT, dets([[0, 0, 5, 5]], [0.9], masks=small))])
    good = np.zeros((1, 100, 100), bool)
    per_tile = [(LEFT, dets([[0, 0, 5, 5]], [0.9], masks=good)), (RIGHT, dets([[50, 50, 60, 60]], [0.9]))]
    with pytest.raises(ValueError, match="mix"):
        merge_detections(per_tile)


@FAST
@given(data=st.data(), oriented=st.booleans())
def test_merge_of_disjoint_detections_is_the_identity(data, oriented):
    # Detections in distinct cells of a 25 px lattice never overlap.
    cells = data.draw(st.lists(st.integers(0, 63), min_size=1, max_size=20, unique=True))
    scores = np.array(data.draw(st.lists(st.floats(0.05, 1), min_size=len(cells), max_size=len(cells))))
    cx, cy = np.array(cells) % 8 * 25 + 12.5, np.array(cells) // 8 * 25 + 12.5
    rboxes = np.stack([cx, cy, np.full_like(cx, 20), np.full_like(cx, 8), np.arange(len(cells)) * 0.3], 1)
    boxes = polygons_to_boxes(rboxes_to_polygons(rboxes))
    truth = Detections(boxes, scores, np.arange(len(cells)) % 3, rboxes=rboxes if oriented else None)
    tiles = tile_grid(200, 200, size=64, overlap=24)
    owner = [
        next(t for t in tiles if np.all(box[:2] >= t.box[:2]) and np.all(box[2:] <= t.box[2:]))
        for box in boxes
    ]
    per_tile = []
    for tile in tiles:
        part = truth[np.array([o == tile for o in owner])]
        rb = None if part.rboxes is None else part.rboxes - [*tile.offset, 0, 0, 0]
        per_tile.append(
            (tile, Detections(part.boxes - np.tile(tile.offset, 2), part.scores, part.labels, rboxes=rb))
        )
    merged = merge_detections(per_tile, oriented=oriented, score_threshold=0.05)
    order = np.argsort(-truth.scores, kind="stable")
    assert len(merged) == len(truth)
    np.testing.assert_allclose(np.sort(merged.scores)[::-1], truth.scores[order], rtol=1e-6)
    key = np.lexsort((merged.boxes[:, 1], merged.boxes[:, 0]))
    key_truth = np.lexsort((truth.boxes[:, 1], truth.boxes[:, 0]))
    np.testing.assert_allclose(merged.boxes[key], truth.boxes[key_truth], atol=1e-4)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.3, 0.5, 0.7]))
def test_merging_keeps_what_torchvision_s_batched_nms_keeps(seed, threshold):
    """OpenCV does the NMS (a worker need not load torchvision): the same boxes, in the same order."""
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    xy = rng.random((n, 2)) * 100
    boxes = np.concatenate([xy, xy + rng.random((n, 2)) * 30 + 0.5], 1).astype(np.float32)
    det = Detections(boxes, rng.random(n).astype(np.float32), rng.integers(0, 3, n))
    merged = merge_detections([(Tile(0, 0, 200, 200), det)], iou_threshold=threshold, score_threshold=0.0)
    keep = ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(det.scores), torch.from_numpy(det.labels), threshold
    ).numpy()
    np.testing.assert_array_equal(merged.boxes, boxes[keep])
