"""Extreme points (DEXTR's protocol)."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.simulate import extreme_points


def ascii_mask(art: str) -> np.ndarray:
    """'#' is True, '.' is False; one text row per mask row."""
    return np.array([[c == "#" for c in row] for row in art.split()], bool)


DIAMOND = """
.......
...#...
..###..
.#####.
..###..
...#...
"""

# Ties: the left side has y = 1, 2, 3 (median 2); the top x = 1..4 (lower median 2); the
# bottom x = 1..5 (median 3); the right-most pixel (5, 3) is unique.
STEPS = """
......
.####.
.####.
.#####
"""


@pytest.mark.parametrize(
    "art, expected",
    [
        (DIAMOND, [[1, 3], [3, 1], [5, 3], [3, 5]]),
        (STEPS, [[1, 2], [2, 1], [5, 3], [3, 3]]),
        ("... .#. ...", [[1, 1]] * 4),
    ],
)
def test_exact_points_without_rng(art, expected):
    mask = ascii_mask(art)
    points = extreme_points(mask)
    np.testing.assert_array_equal(points.points, expected)
    ys, xs = np.nonzero(mask)
    np.testing.assert_array_equal(points.box, [xs.min(), ys.min(), xs.max(), ys.max()])


def test_ties_are_drawn_at_random(rng):
    mask = ascii_mask(STEPS)
    lefts = {tuple(extreme_points(mask, rng).points[0].tolist()) for _ in range(200)}
    # 3 tied left-most pixels, 200 draws: missing one has probability 3 (2/3)^200 ~ 1e-35.
    assert lefts == {(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)}
    for _ in range(50):
        points = extreme_points(mask, rng)
        np.testing.assert_array_equal(points.box, [1, 1, 5, 3])  # ties never move the box


def disk(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def test_jittered_points_stay_on_the_mask_near_their_side(rng):
    for _ in range(50):
        shape = (60, 80)
        mask = disk(shape, *rng.uniform(20, 40, 2), rng.uniform(5, 15))
        mask |= disk(shape, *rng.uniform(20, 40, 2), rng.uniform(5, 15))
        ys, xs = np.nonzero(mask)
        jitter = 5
        points = extreme_points(mask, rng, jitter_px=jitter).points.astype(int)
        assert mask[points[:, 1], points[:, 0]].all()
        left, top, right, bottom = points
        assert left[0] - xs.min() <= jitter and xs.max() - right[0] <= jitter
        assert top[1] - ys.min() <= jitter and ys.max() - bottom[1] <= jitter


@pytest.mark.parametrize(
    "mask, kwargs",
    [
        (np.zeros((4, 4), bool), {}),  # an empty mask has no extreme points
        (np.ones((4, 4), bool), {"jitter_px": 2}),  # jitter needs an rng
        (np.ones((4, 4), bool), {"jitter_px": -1, "rng": np.random.default_rng(0)}),
        (np.ones(4, bool), {}),
    ],
)
def test_bad_input(mask, kwargs):
    with pytest.raises(ValueError):
        extreme_points(mask, **kwargs)
