"""RLE checks at the boundaries: compressed counts decoded and checked against the size."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fewclick.io.rle import (
    check_rle,
    mask_area,
    mask_outlines,
    mask_to_rle,
    merge_rles,
    polygons_to_mask,
    polygons_to_rle,
    rle_boxes,
    rle_counts,
    rle_window,
    segmentation_outlines,
    segmentation_to_rle,
    segmentation_window,
    window_to_rle,
)


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_counts_decode_to_the_runs_pycocotools_encoded(mask):
    h, w = mask.shape
    rle = mask_to_rle(mask)
    runs = rle_counts(rle["counts"])
    column_major = mask.T.reshape(-1)
    starts = np.cumsum([0, *runs[:-1]])
    assert sum(runs) == h * w and min(runs) >= 0
    for k, (start, run) in enumerate(zip(starts, runs, strict=True)):
        assert (column_major[start : start + run] == bool(k % 2)).all()
    assert check_rle(rle, h, w) == rle
    assert check_rle({"size": [h, w], "counts": runs}, h, w) == rle, "a list of runs is compressed"


@pytest.mark.parametrize(
    "rle, message",
    [
        ({"size": [4, 5], "counts": "!!!!"}, "characters '0' to 'o', got '!'"),
        ({"size": [4, 5], "counts": "0"}, "add up to 4 x 5 = 20 pixels, got 1 runs adding up to 0"),
        ({"size": [4, 5], "counts": "zzzz"}, "got 'z'"),
        ({"size": [4, 5], "counts": "P"}, "end with a whole number"),  # 0x20 set: more was to follow
        ({"size": [4, 5], "counts": [10, -2, 12]}, "runs >= 0"),
        ({"size": [4, 5], "counts": [10, 11]}, "adding up to 21"),
        ({"size": [4, 5], "counts": [10, 10.0]}, "a list of integers"),
        ({"size": [4, 5], "counts": 5}, "a list of integers, got int"),
        ({"size": [5, 4], "counts": [20]}, "is not the image's [4, 5]"),
        ({"size": "ab", "counts": [20]}, "is not the image's"),
        ({"counts": [20]}, "a COCO RLE"),
        (None, "a COCO RLE"),
    ],
)
def test_a_malformed_rle_is_refused_naming_the_problem(rle, message):
    with pytest.raises(ValueError) as info:
        check_rle(rle, 4, 5)
    assert message in str(info.value)


def test_a_12_byte_rle_that_claims_a_huge_mask_is_refused_without_decoding():
    # every character but the last says "more follows": one run of about 2**55 pixels
    with pytest.raises(ValueError, match="add up to 4 x 5 = 20 pixels"):
        check_rle({"size": [4, 5], "counts": "ooooooooooo?"}, 4, 5)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_window_numbered_in_its_image_is_the_rle_of_the_image_sized_mask(data):
    height, width = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30))
    h, w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    x0, y0 = data.draw(st.integers(0, width - w)), data.draw(st.integers(0, height - h))
    window = data.draw(arrays(bool, (h, w)))
    full = np.zeros((height, width), bool)
    full[y0 : y0 + h, x0 : x0 + w] = window
    assert window_to_rle(window, (x0, y0), height, width) == mask_to_rle(full)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_window_read_from_the_runs_is_the_mask_s_window(data):
    mask = data.draw(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
    height, width = mask.shape
    x0, y0 = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
    x1, y1 = data.draw(st.integers(x0 + 1, width + 5)), data.draw(st.integers(y0 + 1, height + 5))
    assert (rle_window(mask_to_rle(mask), (x0, y0, x1, y1)) == mask[y0:y1, x0:x1]).all()


def test_a_slide_s_mask_is_numbered_without_the_slide_sized_mask():
    window = np.zeros((1024, 1024), bool)
    window[400:460, 300:380] = True
    rle = window_to_rle(window, (15000, 28000), 30000, 40000)  # 1.2 gigapixels: 1.2 GB as a mask
    assert rle["size"] == [30000, 40000]
    assert rle_boxes([rle])[0].tolist() == [15300, 28400, 15380, 28460]
    assert (rle_window(rle, (15290, 28390, 15390, 28470)) == window[390:470, 290:390]).all()


@pytest.mark.parametrize(
    "offset, size, message",
    [
        ((10, 0), (20, 20), "does not fit the 20 x 20 image"),
        ((0, -1), (20, 20), "does not fit"),
        ((0, 0), (70000, 70000), "over the 2^32 pixels"),
    ],
)
def test_a_window_that_cannot_be_numbered_is_refused(offset, size, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        window_to_rle(np.ones((15, 15), bool), offset, *size)


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_an_rle_s_outlines_and_area_from_its_box_alone_are_the_mask_s(mask):
    rle = mask_to_rle(mask)
    got = segmentation_outlines(rle, *mask.shape)
    want = mask_outlines(mask)
    assert len(got) == len(want)
    assert all(np.allclose(a, b) for a, b in zip(got, want, strict=True))
    assert mask_area(rle, *mask.shape) == mask.sum()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_polygon_filled_over_its_box_is_the_polygon_filled_over_the_image(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(5, 60, 2))
    polygons = [rng.uniform(-10, [width + 10, height + 10], (int(rng.integers(3, 8)), 2)) for _ in range(2)]
    decimals = int(rng.integers(0, 4))  # as other tools write them (200.7 moved to 1.7 rounds the other way)
    polygons = [np.round(p, decimals) for p in polygons] if decimals < 3 else polygons
    assert polygons_to_rle(polygons, height, width) == mask_to_rle(polygons_to_mask(polygons, height, width))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_polygons_far_apart_in_a_large_image_fill_the_pixels_pycocotools_fills(seed):
    rng = np.random.default_rng(seed)
    parts = [
        np.round(rng.uniform(0, 40, (int(rng.integers(3, 8)), 2)), 1) + at
        for at in ([2000.3, 1500], [3900, 2950])
    ]
    assert polygons_to_rle(parts, 3000, 4000) == mask_to_rle(polygons_to_mask(parts, 3000, 4000))


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))), st.integers(0, 2**32 - 1))
def test_a_segmentation_over_its_box_is_its_mask(mask, seed):
    h, w = mask.shape
    rng = np.random.default_rng(seed)
    polygons = [rng.uniform(-5, [w + 5, h + 5], (int(rng.integers(3, 7)), 2))]
    for seg, want in ((mask_to_rle(mask), mask), (polygons, polygons_to_mask(polygons, h, w))):
        assert segmentation_to_rle(seg, h, w) == mask_to_rle(want)
        window, (x0, y0) = segmentation_window(seg, h, w)
        placed = np.zeros((h, w), bool)
        placed[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] = window
        assert (placed == want).all()
        assert window.shape == (0, 0) or (window.any(0)[[0, -1]].all() and window.any(1)[[0, -1]].all())


def test_uncompressed_counts_become_compressed_and_another_size_is_refused():
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    runs = {"size": [4, 5], "counts": [9, 2, 2, 2, 5]}
    assert segmentation_to_rle(runs, 4, 5) == mask_to_rle(mask)
    with pytest.raises(ValueError, match=re.escape("is not the image's [5, 5]")):
        segmentation_to_rle(runs, 5, 5)
    from pycocotools import mask as mask_utils  # as pycocotools and numpy hand them over

    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert isinstance(encoded["counts"], bytes) and segmentation_to_rle(encoded, 4, 5) == mask_to_rle(mask)
    numpy_runs = {"size": np.array([4, 5]), "counts": list(np.array(runs["counts"]))}
    assert segmentation_to_rle(numpy_runs, 4, 5) == mask_to_rle(mask)
    assert merge_rles([encoded, numpy_runs]) == mask_to_rle(mask)


@settings(max_examples=100, deadline=None)
@given(
    arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_rles_merged_from_their_runs_are_the_union_of_their_masks(mask, n, seed):
    rng = np.random.default_rng(seed)
    masks = [mask, *(rng.random(mask.shape) < 0.3 for _ in range(n - 1))]
    assert merge_rles([mask_to_rle(m) for m in masks]) == mask_to_rle(np.logical_or.reduce(masks))


def test_a_slide_s_polygon_becomes_an_rle_without_the_slide_sized_mask():
    import tracemalloc

    polygon = [np.array([[20000.0, 15000.0], [20300.0, 15050.0], [20100.0, 15400.0]])]
    far_apart = [polygon[0] - [19900, 14900], polygon[0] + [19000, 14000]]  # in two corners of the slide
    tracemalloc.start()
    try:
        rle = segmentation_to_rle(polygon, 30000, 40000)  # 1.2 gigapixels: 1.2 GB as a mask
        parts = segmentation_to_rle(far_apart, 30000, 40000)  # each part over its own window
        window, offset = segmentation_window(rle, 30000, 40000)
        outlines = segmentation_outlines(polygon, 30000, 40000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB held for one polygon"
    near = polygons_to_mask([polygon[0] - [19990, 14990]], 500, 500)  # the same polygon, moved
    ys, xs = np.nonzero(near)
    assert offset == (19990 + xs.min(), 14990 + ys.min())
    assert (window == near[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]).all()
    assert len(outlines) == 1 and np.allclose(outlines[0].min(0), offset, atol=1)
    assert mask_area(parts, 30000, 40000) == 2 * window.sum()
