"""GrabCut baseline: better than the box on a clear object, seeds steer it, bad input is defined."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fewclick.metrics.segmentation import mask_iou
from fewclick.predict.grabcut import GrabCutPredictor
from fewclick.predict.segment_api import BoxPredictor
from fewclick.types import Clicks

SIZE = 120


def clicks(*points: tuple[float, float, bool]) -> Clicks:
    return Clicks([(x, y) for x, y, _ in points], [0] * len(points), [p for _, _, p in points])


def disk_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A bright disk (radius 25 at (60, 60)) on a dark noisy background."""
    gt = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(gt, (60, 60), 25, 1, thickness=-1)
    image = np.where(gt[..., None] > 0, 200, 50) + rng.normal(0, 8, (SIZE, SIZE, 3))
    return np.clip(image, 0, 255).astype(np.uint8), gt.astype(bool)


def two_disks(rng: np.random.Generator, blue_background: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red disk A at (45, 60) and a blue disk B at (80, 60), both in ``TWO_BOX``, on gray;
    with ``blue_background`` two blue stripes lie beside the box, so GrabCut calls B
    background; without them it calls both disks foreground."""
    image = np.full((SIZE, SIZE, 3), 128, np.float64)
    a, b = np.zeros((SIZE, SIZE), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(a, (45, 60), 14, 1, thickness=-1)
    cv2.circle(b, (80, 60), 9, 1, thickness=-1)
    image[a > 0] = (220, 30, 30)
    image[b > 0] = (30, 30, 220)
    if blue_background:
        for y0 in (30, 82):
            image[y0 : y0 + 8, 20:100] = (30, 30, 220)
    image += rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), a.astype(bool), b.astype(bool)


TWO_BOX = (28, 43, 92, 77)


@pytest.fixture
def scene(rng):
    image, gt = disk_scene(rng)
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    return predictor, image, gt


BOX = (25.0, 25.0, 96.0, 96.0)  # loose box around the disk


def test_grabcut_beats_the_box_on_a_clear_disk(scene):
    predictor, image, gt = scene
    box_only = BoxPredictor()
    box_only.set_image(image)
    grabcut = predictor.predict(BOX)
    assert grabcut.score == 1.0
    assert mask_iou(grabcut.mask, gt) > 0.95
    assert mask_iou(grabcut.mask, gt) > mask_iou(box_only.predict(BOX).mask, gt) + 0.2


def test_negative_seed_removes_the_clicked_part(rng):
    image, a, b = two_disks(rng, blue_background=False)
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    before = predictor.predict(TWO_BOX).mask
    after = predictor.predict(TWO_BOX, clicks((80, 60, False))).mask
    assert before[a].mean() > 0.9 and before[b].mean() > 0.9
    assert after[b].mean() < 0.1
    assert after[a].mean() > 0.9


def test_positive_seed_adds_the_clicked_part(rng):
    image, a, b = two_disks(rng, blue_background=True)
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    before = predictor.predict(TWO_BOX).mask
    after = predictor.predict(TWO_BOX, clicks((80, 60, True))).mask
    assert before[a].mean() > 0.9 and before[b].mean() < 0.1
    assert after[b].mean() > 0.9
    assert after[a].mean() > 0.9


@pytest.mark.parametrize("order, expected", [((True, False), False), ((False, True), True)])
def test_the_later_of_two_clicks_on_one_pixel_wins(scene, order, expected):
    predictor, _, _ = scene
    mask = predictor.predict(BOX, clicks((60, 60, order[0]), (60, 60, order[1]))).mask
    assert mask[60, 60] == expected


def test_a_click_outside_the_box_is_a_seed(scene):
    predictor, _, _ = scene
    mask = predictor.predict(BOX, clicks((110, 110, True))).mask
    assert mask[110, 110]


def test_calls_are_deterministic_and_stateless(scene):
    predictor, _, _ = scene
    first = predictor.predict(BOX, clicks((60, 60, True))).mask
    predictor.predict(BOX, clicks((40, 40, False)))
    assert np.array_equal(first, predictor.predict(BOX, clicks((60, 60, True))).mask)
    with pytest.raises(ValueError, match="the grabcut backend needs a box"):
        predictor.predict(None, clicks((60, 60, True)))


def test_a_tiny_box_falls_back_to_the_box(scene):
    predictor, _, _ = scene
    result = predictor.predict((58, 58, 61, 61))
    expected = np.zeros((SIZE, SIZE), bool)
    expected[58:61, 58:61] = True
    assert result.score == 0.0
    assert np.array_equal(result.mask, expected)


def test_a_box_over_the_whole_image_falls_back(scene):
    predictor, _, _ = scene
    result = predictor.predict((0, 0, SIZE, SIZE))  # no background pixels left to learn from
    assert result.score == 0.0
    assert result.mask.all()


@pytest.mark.parametrize("dtype, scale", [(np.uint16, 250), (np.float32, 1 / 255)])
def test_grayscale_and_deep_images(rng, dtype, scale):
    image, gt = disk_scene(rng)
    gray = (image[..., 0].astype(np.float64) * scale).astype(dtype)
    predictor = GrabCutPredictor()
    predictor.set_image(gray)
    result = predictor.predict(BOX)
    assert result.mask.shape == (SIZE, SIZE)
    assert mask_iou(result.mask, gt) > 0.9


def test_a_box_partly_outside_is_clipped(scene):
    predictor, _, _ = scene
    result = predictor.predict((-50, -50, 70, 70))
    assert result.mask.shape == (SIZE, SIZE)
    assert not result.mask[75:, :].any()


@pytest.mark.parametrize(
    "box",
    [
        (200, 200, 300, 300),
        (-40, -40, -1, -1),
        (50, 50, 50, 80),
        (60, 60, 40, 80),
        (0, 0, float("nan"), 9),
        (1, 2, 3),
    ],
)
def test_bad_boxes_raise(scene, box):
    predictor, _, _ = scene
    with pytest.raises(ValueError, match="box"):
        predictor.predict(box)


@pytest.mark.parametrize("point", [(SIZE, 10), (-1, 10), (10, SIZE + 5), (float("nan"), 3)])
def test_a_click_outside_the_image_raises(scene, point):
    predictor, _, _ = scene
    with pytest.raises(ValueError, match="outside"):
        predictor.predict(BOX, clicks((*point, True)))


def test_predict_before_set_image_raises():
    with pytest.raises(RuntimeError, match="set_image"):
        GrabCutPredictor().predict(BOX)


@pytest.mark.parametrize("kwargs", [{"iterations": 0}, {"margin": -1}, {"min_side": 500}, {"min_fill": 2}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError, match="expected"):
        GrabCutPredictor(**kwargs)
