"""Corrective clicks, RITM's next click and loose boxes."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.simulate import box_iou, corrective_clicks, error_regions, noisy_box, ritm_next_click
from fewclick.types import Click, Clicks


def ascii_mask(art: str) -> np.ndarray:
    """'#' is True, '.' is False; one text row per mask row."""
    return np.array([[c == "#" for c in row] for row in art.split()], bool)


def square(shape: tuple[int, int], x0: int, y0: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0 : y0 + size, x0 : x0 + size] = True
    return mask


# --------------------------------------------------------------------------- error regions
def test_error_regions_sorted_and_signed():
    gt = ascii_mask(
        """
        ######....
        ######....
        ######....
        ......##..
        """
    )
    pred = ascii_mask(
        """
        ###.......
        ###.......
        ###......#
        ......##..
        """
    )
    regions = error_regions(gt, pred)
    assert regions.areas.tolist() == [9, 1]
    assert regions.positive.tolist() == [True, False]
    assert regions.mask(0)[:3, 3:6].all() and regions.mask(1)[2, 9]
    assert len(error_regions(gt, pred, min_region_px=2)) == 1


def test_min_region_size_respected(rng):
    shape = (60, 60)
    gt = square(shape, 5, 5, 5) | square(shape, 30, 30, 10)  # 25 px and 100 px
    pred = np.zeros(shape, bool)
    clicks = corrective_clicks(gt, pred, 50, rng, strategy="random", noise_sigma=0, min_region_px=30)
    assert len(clicks) == 50
    assert (clicks.xy >= 30).all() and (clicks.xy < 40).all()


@pytest.mark.parametrize("strategy", ["center", "boundary", "random"])
def test_click_sign_follows_region(rng, strategy):
    shape = (80, 80)
    gt = square(shape, 10, 10, 40)
    pred = square(shape, 25, 25, 40)  # FN: L-shape top-left, FP: L-shape bottom-right
    for _ in range(20):
        clicks = corrective_clicks(gt, pred, 5, rng, strategy=strategy, noise_sigma=0)
        assert len(clicks) == 5
        x, y = clicks.xy.astype(int).T
        np.testing.assert_array_equal(clicks.xy, np.round(clicks.xy))  # pixel positions
        fn, fp = gt[y, x] & ~pred[y, x], ~gt[y, x] & pred[y, x]
        assert (fn | fp).all()
        np.testing.assert_array_equal(clicks.positive, fn)


def test_noise_std_matches_sigma():
    # One 100x100 false-negative square in the middle of a 400x400 image: clicks sit at
    # least 150 px = 50 sigma from the border, so clamping never acts. 5,000 clicks give
    # 10,000 offsets; the sample std of a normal has relative standard error
    # 1/sqrt(2 * 10,000) = 0.7%, so the 5% bound is 7 standard errors wide.
    shape, sigma = (400, 400), 3.0
    gt, pred = square(shape, 150, 150, 100), np.zeros(shape, bool)
    kwargs = dict(strategy="random", allocation="proportional")
    clean = corrective_clicks(gt, pred, 5000, np.random.default_rng(1), noise_sigma=0, **kwargs)
    noisy = corrective_clicks(gt, pred, 5000, np.random.default_rng(1), noise_sigma=sigma, **kwargs)
    offsets = (noisy.xy - clean.xy).astype(np.float64)
    assert offsets.std() == pytest.approx(sigma, rel=0.05)
    # Mean offset: standard error 3 / sqrt(10,000) = 0.03 px; 0.15 px is 5 of them.
    assert abs(offsets.mean()) < 0.15
    # Noise is kept even when it leaves the region; the sign stays the aimed region's.
    assert noisy.positive.all()


def test_noise_is_clamped_into_image(rng):
    shape = (30, 40)
    gt, pred = square(shape, 0, 0, 6), np.zeros(shape, bool)
    clicks = corrective_clicks(gt, pred, 30, rng, strategy="random", noise_sigma=20.0)
    assert (clicks.xy >= 0).all()
    assert (clicks.xy[:, 0] <= 39).all() and (clicks.xy[:, 1] <= 29).all()


@pytest.mark.parametrize("strategy, min_distance", [("center", 15.0), ("boundary", 30.0)])
def test_clicks_in_one_large_region_are_spread(rng, strategy, min_distance):
    # A 60x60 region with 3 (centre) or 4 (boundary) clicks. Centre clicks sit in k-means
    # cells of ~1,200 px each, ~20 px across, so pairs are ~20 px or more apart. Boundary
    # clicks are 236 / 4 = 59 px apart along the outline, >= 59 / sqrt(2) = 42 px in a
    # straight line even across a corner.
    shape = (100, 100)
    gt, pred = square(shape, 20, 20, 60), np.zeros(shape, bool)
    n = 3 if strategy == "center" else 4
    for _ in range(10):
        clicks = corrective_clicks(gt, pred, n, rng, strategy=strategy, noise_sigma=0)
        assert len(clicks) == n
        d = np.linalg.norm(clicks.xy[:, None] - clicks.xy[None], axis=2)
        assert d[np.triu_indices(n, 1)].min() >= min_distance


def test_single_centre_click_is_the_deepest_pixel(rng):
    # The tail pulls the centroid right; the deepest pixel (distance 3) stays at (3, 3).
    gt = ascii_mask(
        """
        ............
        .#####......
        .#####......
        .###########
        .#####......
        .#####......
        ............
        """
    )
    pred = np.zeros_like(gt)
    clicks = corrective_clicks(gt, pred, 1, rng, noise_sigma=0)
    assert clicks.to_list() == [Click(3.0, 3.0, 0, True)]


def test_proportional_allocation(rng):
    shape = (60, 60)
    gt = square(shape, 0, 0, 30) | square(shape, 40, 40, 15)  # 900 px and 225 px
    pred = np.zeros(shape, bool)
    clicks = corrective_clicks(gt, pred, 5, rng, noise_sigma=0, allocation="proportional")
    assert (clicks.xy < 30).all(axis=1).sum() == 4  # 5 * 900 / 1125 = 4


@pytest.mark.parametrize(
    "gt, pred, n",
    [
        (np.zeros((5, 5), bool), np.zeros((5, 5), bool), 3),  # empty masks
        (square((9, 9), 2, 2, 4), square((9, 9), 2, 2, 4), 3),  # perfect prediction
        (square((9, 9), 2, 2, 4), np.zeros((9, 9), bool), 0),  # no clicks asked
    ],
)
def test_no_clicks(rng, gt, pred, n):
    assert len(corrective_clicks(gt, pred, n, rng)) == 0


def test_tiny_region_gets_at_most_its_area(rng):
    gt = np.zeros((5, 5), bool)
    gt[2, 2] = True
    clicks = corrective_clicks(gt, np.zeros_like(gt), 4, rng, noise_sigma=0)
    assert clicks.xy.tolist() == [[2.0, 2.0]]


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_clicks=-1), dict(strategy="edge"), dict(allocation="even"), dict(pred=np.zeros((4, 5), bool))],
)
def test_bad_arguments(rng, kwargs):
    args = dict(gt=np.ones((5, 5), bool), pred=np.zeros((5, 5), bool), n_clicks=1, rng=rng) | kwargs
    with pytest.raises(ValueError):
        corrective_clicks(**args)


# --------------------------------------------------------------------------- RITM
RITM_CASES = [
    # a false-negative blob: the click goes to its deepest pixel
    (
        "......./.#####./.#####./.#####./.#####./.#####./.......",
        "......./......./......./......./......./......./.......",
        Click(3, 3, 0, True),
    ),
    # the image border counts as boundary (RITM pads the error masks)
    ("#####/#####/#####/#####/#####", "...../...../...../...../.....", Click(2, 2, 0, True)),
    # a deeper false positive (depth 2) beats a false negative (depth 1); x = 3, 4, 5 tie
    # on row 2 and RITM takes the first in row-major order
    (
        "##...../##...../......./......./.......",
        "......./..#####/..#####/..#####/.......",
        Click(3, 2, 0, False),
    ),
    # equal depth: RITM gives the tie to the false positive
    ("#..../...../....#", "...../...../#....", Click(0, 2, 0, False)),
]


@pytest.mark.parametrize("gt, pred, expected", RITM_CASES)
def test_ritm_next_click(gt, pred, expected):
    gt, pred = ascii_mask(gt.replace("/", " ")), ascii_mask(pred.replace("/", " "))
    assert ritm_next_click(gt, pred) == expected


def test_ritm_skips_clicked_pixels_and_void():
    gt = ascii_mask("..... .###. .###. .###. .....")
    pred = np.zeros_like(gt)
    first = ritm_next_click(gt, pred)
    assert first == Click(2, 2, 0, True)
    second = ritm_next_click(gt, pred, clicked=Clicks.from_list([first]))
    assert second == Click(1, 1, 0, True)  # first of the remaining depth-1 pixels, row-major
    assert ritm_next_click(gt, pred, void=gt) is None


def test_ritm_no_error_gives_none():
    gt = ascii_mask("... .#. ...")
    assert ritm_next_click(gt, gt.copy()) is None
    assert ritm_next_click(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) is None


# --------------------------------------------------------------------------- boxes
def test_noisy_boxes_keep_iou(rng):
    truth = np.array([100.0, 80.0, 300.0, 230.0])
    boxes = np.array([noisy_box(truth, rng, sigma=60.0, image_size=(320, 240)) for _ in range(2000)])
    assert (box_iou(boxes, truth[None])[:, 0] >= 0.7).all()
    assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= 320).all() and (boxes[:, [1, 3]] <= 240).all()
    assert boxes.std(axis=0).min() > 5.0  # they are really perturbed


def test_noisy_box_corner_std():
    # sigma 2 px on a 200x150 box: a 4-sigma move of all corners still has IoU > 0.9, so
    # rejection never acts and the offsets are plain N(0, 2). 5,000 boxes give 20,000
    # offsets: relative standard error of the std 0.5%; 5% is 10 of them.
    rng = np.random.default_rng(3)
    truth = np.array([100.0, 80.0, 300.0, 230.0])
    offsets = np.array([noisy_box(truth, rng, sigma=2.0) for _ in range(5000)]) - truth
    assert offsets.std() == pytest.approx(2.0, rel=0.05)
    assert np.abs(offsets.mean(axis=0)).max() < 0.15  # standard error 2 / sqrt(5000) = 0.03


def test_noisy_box_falls_back_to_truth(rng):
    truth = np.array([10.0, 10.0, 12.0, 12.0])
    np.testing.assert_array_equal(noisy_box(truth, rng, sigma=60.0, max_tries=3), truth)


@pytest.mark.parametrize("box", [[5.0, 5.0, 5.0, 9.0], [0.0, 0.0, 4.0], [[0.0, 0.0, 4.0, 4.0]] * 2])
def test_noisy_box_rejects_bad_box(rng, box):
    with pytest.raises(ValueError):
        noisy_box(np.array(box), rng, sigma=1.0)
