"""Full-image scribble allocation: error regions ranked by the mean-IoU gain of correcting
them (checked against mIoU computed before and after), one scribble per region, or the
image's budget spent on its largest errors."""

import numpy as np
import pytest

from fewclick.metrics.segmentation import mask_iou
from fewclick.simulate.allocation import allocate_scribbles, region_errors
from fewclick.simulate.scribbles import rasterize_scribble


def _miou(gt, pred, regions):
    return float(np.mean([mask_iou(pred == k, gt == k) for k in range(regions)]))


@pytest.fixture
def scene():
    """Three regions side by side; the prediction gives a big block of region 0 and a small
    one of region 2 to region 1, and a block of region 1 to region 0."""
    gt = np.zeros((40, 60), np.int64)
    gt[:, 20:40], gt[:, 40:] = 1, 2
    pred = gt.copy()
    pred[5:25, 4:18] = 1  # 280 px of region 0 given to 1
    pred[30:36, 44:50] = 1  # 36 px of region 2 given to 1
    pred[10:20, 24:30] = 0  # 60 px of region 1 given to 0
    return gt, pred


def test_each_error_regions_gain_is_the_rise_of_miou_when_it_is_corrected(scene):
    gt, pred = scene
    errors = region_errors(gt, pred)
    assert [(e.true, e.predicted, e.pixels) for e in errors][0] == (0, 1, 280), "the largest first"
    assert sorted(e.pixels for e in errors) == [36, 60, 280]
    for error in errors:
        fixed = pred.copy()
        fixed[error.mask] = error.true
        assert error.gain == pytest.approx(_miou(gt, fixed, 3) - _miou(gt, pred, 3))
    assert [e.gain for e in errors] == sorted((e.gain for e in errors), reverse=True)


def test_void_pixels_are_no_error(scene):
    gt, pred = scene
    void = np.zeros_like(gt, bool)
    void[30:36, 44:50] = True
    assert sorted(e.pixels for e in region_errors(gt, pred, void)) == [60, 280]
    gt = gt.copy()
    gt[10:20, 24:30] = -1  # void marked in the ground truth itself
    assert sorted(e.pixels for e in region_errors(gt, pred, void)) == [280]


def test_one_per_region_serves_each_region_once_and_free_follows_the_gains():
    gt = np.zeros((40, 80), np.int64)
    gt[:, 40:] = 1
    pred = gt.copy()
    pred[2:18, 2:18] = 1  # two large errors of region 0 ...
    pred[22:38, 2:18] = 1
    pred[30:34, 70:74] = 0  # ... and a small one of region 1
    rng = np.random.default_rng(0)
    one = allocate_scribbles(gt, pred, rng, "one_per_region")
    assert sorted(s.region for s in one) == [0, 1]
    free = allocate_scribbles(gt, pred, rng, "free")
    assert [s.region for s in free] == [0, 0], "the budget of 2 goes to the two largest errors"
    for s in one + free:
        drawn = rasterize_scribble(s, gt.shape)
        assert (gt[drawn] == s.region).all(), "a scribble stays inside the region it extends"
        assert (pred[drawn] != s.region).any(), "and reaches into its error"
    assert allocate_scribbles(gt, gt, rng, "free") == [], "no error, no scribble"
    with pytest.raises(ValueError, match="unknown allocation"):
        allocate_scribbles(gt, pred, rng, "some")


def test_a_scribble_never_leaves_the_image():
    """A region along the image's edge: curves through points near the edge bulge past it."""
    gt = np.zeros((30, 40), np.int64)
    gt[:, 30:] = 1
    pred = gt.copy()
    pred[20:30, 2:28] = 1  # an error along the bottom edge
    for seed in range(20):
        for s in allocate_scribbles(gt, pred, np.random.default_rng(seed), "free"):
            assert (
                (s.points >= -0.5).all() and (s.points[:, 0] < 39.5).all() and (s.points[:, 1] < 29.5).all()
            )


@pytest.mark.parametrize("seed", range(5))
def test_scribbles_drawn_in_the_true_regions_box_are_those_drawn_on_the_whole_image(seed):
    """The allocation draws each scribble inside its true region's box plus a margin: the
    same draws in the same order as on the whole image, so the same scribbles."""
    from scipy import ndimage

    from fewclick.simulate.scribbles import scribble

    rng = np.random.default_rng(seed)
    gt = ndimage.zoom(rng.integers(0, 5, (6, 8)), 12, order=0)  # 72 x 96 blocks of 5 regions
    pred = np.roll(gt, (int(rng.integers(2, 9)), int(rng.integers(2, 9))), axis=(0, 1))
    windowed = allocate_scribbles(gt, pred, np.random.default_rng(seed), "free")
    draws = np.random.default_rng(seed)
    whole = []
    for error in region_errors(gt, pred):
        if len(whole) >= int(gt.max()) + 1:
            break
        s = scribble(gt == error.true, error.mask, draws, region=error.true)
        if s is not None:
            whole.append(s)
    assert len(windowed) == len(whole) > 0
    for a, b in zip(windowed, whole, strict=True):
        assert a.region == b.region and np.allclose(a.points, b.points, atol=1e-3)
