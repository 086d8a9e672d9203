"""Mask IoU, mIoU, boundary F and NoC on ASCII-art masks and hand tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fewclick.metrics import BoundaryScore, boundary_f, mask_iou, mean_noc, miou, noc


def mask(art: str) -> np.ndarray:
    """'#' is inside, '.' outside; one text row per image row."""
    rows = [r.strip() for r in art.strip().splitlines()]
    return np.array([[c == "#" for c in r] for r in rows], bool)


SQUARE = mask("""
    ......
    .####.
    .####.
    .####.
    .####.
    ......
""")
SHIFTED = mask("""
    ......
    ..####
    ..####
    ..####
    ..####
    ......
""")
EMPTY = np.zeros((6, 6), bool)
VOID_RIGHT = mask("""
    .....#
    .....#
    .....#
    .....#
    .....#
    .....#
""")


@pytest.mark.parametrize(
    ("pred", "gt", "void", "expected"),
    [
        (SQUARE, SQUARE, None, 1.0),
        (SQUARE, SHIFTED, None, 12 / 20),  # 12 in common, 16 + 16 - 12 in the union
        (SQUARE, EMPTY, None, 0.0),
        (EMPTY, SQUARE, None, 0.0),
        (EMPTY, EMPTY, None, 1.0),  # empty union
        (SQUARE, SHIFTED, VOID_RIGHT, 12 / 16),  # the void column removes 4 shifted pixels
        (EMPTY, VOID_RIGHT, VOID_RIGHT, 1.0),  # only void is marked: empty union
    ],
)
def test_mask_iou_table(pred, gt, void, expected):
    assert mask_iou(pred, gt, void) == pytest.approx(expected)


def test_miou():
    assert miou([(SQUARE, SQUARE), (SQUARE, SHIFTED), (SQUARE, EMPTY)]) == pytest.approx((1 + 0.6 + 0) / 3)
    assert math.isnan(miou([]))


@pytest.mark.parametrize(
    ("pred", "gt"),
    [(SQUARE, np.zeros((5, 5), bool)), (SQUARE, np.zeros((2, 6, 6), bool))],
)
def test_mask_iou_rejects_shapes(pred, gt):
    with pytest.raises(ValueError, match="expected"):
        mask_iou(pred, gt)


# --------------------------------------------------------------------------- boundary F
BIG = mask("""
    ..........
    ..........
    ..######..
    ..######..
    ..######..
    ..######..
    ..######..
    ..######..
    ..........
    ..........
""")
GROWN = mask("""
    ..........
    .########.
    .########.
    .########.
    .########.
    .########.
    .########.
    .########.
    .########.
    ..........
""")


@pytest.mark.parametrize(
    ("pred", "gt", "tolerance", "expected"),
    [
        (BIG, BIG, 0, BoundaryScore(1.0, 1.0, 1.0)),
        # grown by one pixel: every boundary pixel is 1 px (or sqrt2 at corners) away.
        (GROWN, BIG, 2, BoundaryScore(1.0, 1.0, 1.0)),
        # with no tolerance no boundary pixel coincides: the rings are disjoint.
        (GROWN, BIG, 0, BoundaryScore(0.0, 0.0, 0.0)),
        # tolerance 1: all of BIG's ring (20 px) is within 1 of GROWN's ring, but GROWN's four
        # corners are sqrt2 away: precision 24 / 28.
        (GROWN, BIG, 1, BoundaryScore(24 / 28, 1.0, 2 * (24 / 28) / (1 + 24 / 28))),
        (EMPTY, EMPTY, 2, BoundaryScore(1.0, 1.0, 1.0)),
        (EMPTY, SQUARE, 2, BoundaryScore(1.0, 0.0, 0.0)),
        (SQUARE, EMPTY, 2, BoundaryScore(0.0, 1.0, 0.0)),
        # a full mask has no boundary (the image edge is not one).
        (np.ones((6, 6), bool), np.ones((6, 6), bool), 2, BoundaryScore(1.0, 1.0, 1.0)),
    ],
)
def test_boundary_f_table(pred, gt, tolerance, expected):
    score = boundary_f(pred, gt, tolerance_px=tolerance)
    assert (score.precision, score.recall, score.f) == pytest.approx(
        (expected.precision, expected.recall, expected.f)
    )


def test_boundary_f_rejects_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance_px"):
        boundary_f(SQUARE, SQUARE, tolerance_px=-1)


# --------------------------------------------------------------------------- NoC
@pytest.mark.parametrize(
    ("ious", "threshold", "max_clicks", "expected"),
    [
        ([0.9, 0.95], 0.85, 20, 1),  # clicks count from 1
        ([0.5, 0.8, 0.86, 0.7], 0.85, 20, 3),
        ([0.5, 0.8, 0.85], 0.85, 20, 3),  # reaching the threshold exactly counts
        ([0.5, 0.8, 0.86], 0.9, 20, 20),  # never reached -> max_clicks
        ([0.5, 0.8, 0.95], 0.9, 2, 2),  # reached only after max_clicks
        ([], 0.85, 20, 20),  # no click at all
    ],
)
def test_noc_table(ious, threshold, max_clicks, expected):
    assert noc(ious, threshold, max_clicks) == expected


def test_mean_noc():
    assert mean_noc([[0.9], [0.1, 0.9], [0.1] * 20], 0.85, 20) == pytest.approx((1 + 2 + 20) / 3)
    assert math.isnan(mean_noc([]))


@pytest.mark.parametrize(("threshold", "max_clicks"), [(0.0, 20), (1.5, 20), (0.85, 0)])
def test_noc_rejects(threshold, max_clicks):
    with pytest.raises(ValueError, match="expected"):
        noc([0.5], threshold, max_clicks)
