"""RLE checks at the boundaries: compressed counts decoded and checked against the size."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fewclick.io.rle import check_rle, mask_to_rle, rle_counts


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
