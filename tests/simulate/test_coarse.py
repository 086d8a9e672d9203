"""Coarse points (CPR): rectified Gaussian around the box centre."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import truncnorm

from fewclick.simulate import coarse_points
from fewclick.types import Objects


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(4, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def test_points_inside_boxes_and_rsv_matches_truncated_normal(rng):
    boxes = random_boxes(rng, 20000)
    points = coarse_points(boxes, rng).astype(np.float64)
    b = boxes.astype(np.float64)
    assert ((points >= b[:, :2]) & (points <= b[:, 2:])).all()
    wh = b[:, 2:] - b[:, :2]
    rel = (points - (b[:, :2] + b[:, 2:]) / 2) / wh
    rsv = np.sqrt(rel[:, 0].var() * rel[:, 1].var())
    # Redrawing until inside the box is a normal N(0, 0.25^2) truncated at +-0.5, i.e. at
    # +-2 standard deviations: variance 0.25^2 * truncnorm(-2, 2).var() = 0.0483, and the
    # RSV (geometric mean of the two variances) equals it. With 20,000 points the sample
    # variance has relative standard error sqrt((kurtosis - 1) / n) < sqrt(2 / n) = 1%,
    # and the RSV, a mean of two independent ones, ~0.7%; 3% is over 4 standard errors.
    expected = 0.25**2 * truncnorm(-2, 2).var()
    assert rsv == pytest.approx(expected, rel=0.03)
    assert np.abs(rel.mean(axis=0)).max() < 0.005  # standard error 0.22 / sqrt(20,000) = 0.0016


def ring(shape: tuple[int, int], cx: float, cy: float, r0: float, r1: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]] + 0.5
    d = np.hypot(xx - cx, yy - cy)
    return (d >= r0) & (d <= r1)


def test_points_inside_masks(rng):
    shape = (80, 80)
    masks = np.stack([ring(shape, 40, 40, 10, 20), ring(shape, 30, 50, 0, 8)])
    boxes = np.array([[20, 20, 60, 60], [22, 42, 38, 58]], np.float32)
    for _ in range(200):
        points = coarse_points(boxes, rng, masks=masks)
        cols, rows = np.floor(points).astype(int).T
        assert masks[[0, 1], rows, cols].all()


def test_fallback_is_nearest_inside_point(rng):
    # With no draw allowed the box centre is used: inside the box as is, but in the hole
    # of a ring, so it moves to the nearest ring pixel.
    shape = (80, 80)
    masks = np.stack([ring(shape, 40, 40, 10, 20), np.zeros(shape, bool)])
    boxes = np.array([[20, 20, 60, 60], [0, 0, 10, 4]], np.float32)
    points = coarse_points(boxes, rng, masks=masks, max_tries=0)
    col, row = np.floor(points[0]).astype(int)
    assert masks[0, row, col]
    assert np.hypot(*(points[0] - 40)) < 11.5  # on the ring's inner edge (r = 10)
    np.testing.assert_allclose(points[1], [5, 2])  # empty mask: the box rule


def test_objects_input_and_missing_boxes(rng):
    objects = Objects([0, 1], [[0, 0, 10, 10], [np.nan] * 4])
    points = coarse_points(objects, rng)
    assert points.shape == (2, 2) and points.dtype == np.float32
    assert (points[0] >= 0).all() and (points[0] <= 10).all()
    assert np.isnan(points[1]).all()


def test_empty_input(rng):
    assert coarse_points(np.zeros((0, 4)), rng).shape == (0, 2)
    assert coarse_points(Objects.empty(), rng).shape == (0, 2)


def test_mask_count_must_match(rng):
    with pytest.raises(ValueError):
        coarse_points(np.array([[0, 0, 4, 4]]), rng, masks=np.zeros((2, 5, 5), bool))
