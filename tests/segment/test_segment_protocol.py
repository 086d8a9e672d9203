"""The rounds x clicks and NoC protocols, driven by oracle and box predictors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fewclick.predict.segment_api import BoxPredictor, MaskPrediction
from fewclick.protocols.segment import (
    RoundsConfig,
    plot_miou_vs_clicks,
    run_noc,
    run_rounds,
    tight_box,
)
from fewclick.simulate.oracle import box_iou


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A 200 x 200 image with a small disk (sqrt area ~9), a medium disk (~44) and a large
    disk (~124): one object per size group; no instance touches another."""
    masks = np.zeros((3, 200, 200), np.uint8)
    for mask, (cx, cy, r) in zip(masks, [(20, 20, 5), (150, 40, 25), (110, 130, 70)]):
        cv2.circle(mask, (cx, cy), r, 1, thickness=-1)
    image = np.where(masks.any(0)[..., None], 200, 60).astype(np.uint8).repeat(3, axis=2)
    return image, masks.astype(bool)


class Oracle:
    """Returns the ground-truth instance whose tight box overlaps the given box most."""

    def __init__(self, items, clicks_needed: int = 0) -> None:
        self.items, self.clicks_needed = items, clicks_needed
        self.masks = None

    def set_image(self, image):
        self.masks = next(m for im, m in self.items if im is image)

    def predict(self, box, clicks=None, previous=None):
        if (0 if clicks is None else len(clicks)) < self.clicks_needed:
            return BoxPredictor.predict(self._box_predictor(), box)
        boxes = np.stack([tight_box(m) for m in self.masks])
        best = int(np.argmax(box_iou(np.asarray(box, np.float64)[None], boxes)[0]))
        return MaskPrediction(self.masks[best].copy(), 1.0)

    def _box_predictor(self):
        p = BoxPredictor()
        p.set_image(self.masks[0])
        return p


class Recorder(BoxPredictor):
    """The box predictor, recording each call's box, number of clicks and ``previous`` state."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def predict(self, box, clicks=None, previous=None):
        result = super().predict(box, clicks, previous)
        n = 0 if clicks is None else len(clicks)
        self.calls.append((np.asarray(box).copy(), n, previous, result.mask))
        return result


@pytest.fixture
def items():
    return [scene()]


def test_an_oracle_is_perfect_from_round_0_and_gets_no_clicks(items):
    result = run_rounds(Oracle(items), items, RoundsConfig(), progress=False)
    assert result.ious.shape == (3, 4)
    assert np.all(result.ious == 1.0)
    assert np.all(result.boundary_f == 1.0)
    assert np.all(result.clicks == 0)
    assert result.miou == [1.0] * 4
    np.testing.assert_array_equal(result.features[:, :2], 0)  # no clicks, round 0


def test_the_box_predictor_stays_constant_over_rounds(items):
    result = run_rounds(BoxPredictor(), items, RoundsConfig(), progress=False)
    assert np.all(result.ious < 0.9)
    np.testing.assert_array_equal(result.ious, result.ious[:, :1].repeat(4, axis=1))
    np.testing.assert_array_equal(result.boundary_f, result.boundary_f[:, :1].repeat(4, axis=1))
    np.testing.assert_array_equal(result.features[:, :3], [[3, 3, 0]] * 3)  # unchanged mask
    assert np.all(result.features[:, 3] >= result.features[:, 4]) and np.all(result.features[:, 4] > 0)


def test_clicks_accumulate_over_rounds_with_the_previous(items):
    recorder = Recorder()
    result = run_rounds(recorder, items, RoundsConfig(min_region_px=0), progress=False)
    assert [n for _, n, _, _ in recorder.calls] == [0, 3, 6, 9] * 3
    for i in range(0, 12, 4):
        session = recorder.calls[i : i + 4]
        assert session[0][2] is None
        assert all(np.array_equal(b[2], a[3]) for a, b in zip(session, session[1:]))
        assert all(np.array_equal(c[0], session[0][0]) for c in session)  # one box per instance
    np.testing.assert_array_equal(result.clicks, [[0, 3, 3, 3]] * 3)
    assert result.clicks_curve()[0] == [0.0, 3.0, 6.0, 9.0]


def test_an_annotator_who_ignores_small_errors_stops_early(items):
    # The box as mask leaves errors (the box's corners or sides) smaller than each object;
    # an annotator who ignores errors under 99% of the object's area never clicks, one who
    # minds 1% does.
    strict = run_rounds(BoxPredictor(), items, RoundsConfig(min_region_fraction=0.99), progress=False)
    np.testing.assert_array_equal(strict.clicks, 0)
    np.testing.assert_array_equal(strict.features[:, :2], 0)  # the session ended at round 0
    keen = run_rounds(BoxPredictor(), items, RoundsConfig(min_region_fraction=0.01), progress=False)
    assert keen.clicks[:, 1].min() > 0
    with pytest.raises(ValueError, match="min_region_fraction"):
        RoundsConfig(min_region_fraction=1.0)


def test_the_final_masks_score_is_kept(items):
    class Scored(BoxPredictor):
        def predict(self, box, clicks=None, previous=None):
            result = super().predict(box, clicks, previous)
            result.score = 0.25 + (0 if clicks is None else len(clicks)) / 100
            return result

    result = run_rounds(Scored(), items, RoundsConfig(min_region_px=0), progress=False)
    np.testing.assert_allclose(result.scores, [0.34] * 3)  # after 9 clicks


def test_every_predictor_gets_the_same_noisy_boxes(items):
    first, second = Recorder(), Recorder()
    run_rounds(first, items, RoundsConfig(seed=3), progress=False)
    run_rounds(Oracle(items), items, RoundsConfig(seed=3), progress=False)
    run_rounds(second, items, RoundsConfig(seed=3, click_noise=0.0), progress=False)
    boxes = [c[0] for c in first.calls if c[1] == 0]
    assert len(boxes) == 3
    assert all(np.array_equal(a, c[0]) for a, c in zip(boxes, [c for c in second.calls if c[1] == 0]))
    tight = [tight_box(m) for m in items[0][1]]
    assert any(not np.array_equal(b, t) for b, t in zip(boxes, tight))  # the boxes are noisy
    assert all(box_iou(b[None], t[None])[0, 0] >= 0.7 for b, t in zip(boxes, tight))


def test_results_by_object_size(items):
    result = run_rounds(BoxPredictor(), items, RoundsConfig(rounds=1), progress=False)
    report = result.by_size()
    assert {k: v["count"] for k, v in report.items()} == {"small": 1, "medium": 1, "large": 1}
    assert report["large"]["mIoU"] == result.ious[2].tolist()
    assert result.to_dict()["instances"] == 3


def test_max_instances_and_empty_masks(items):
    image, masks = items[0]
    with_empty = [(image, np.concatenate([np.zeros_like(masks[:1]), masks]))]
    result = run_rounds(BoxPredictor(), with_empty, RoundsConfig(max_instances=2), progress=False)
    assert len(result.ious) == 2
    empty = run_rounds(BoxPredictor(), [], RoundsConfig(), progress=False)
    assert empty.ious.shape == (0, 4) and all(np.isnan(empty.miou))


def test_the_same_seed_gives_the_same_result(items):
    from fewclick.predict.grabcut import GrabCutPredictor

    config = RoundsConfig(rounds=1, seed=5, max_instances=2)
    a = run_rounds(GrabCutPredictor(), items, config, progress=False)
    b = run_rounds(GrabCutPredictor(), items, config, progress=False)
    np.testing.assert_array_equal(a.ious, b.ious)
    np.testing.assert_array_equal(a.features, b.features)


def test_masks_of_the_wrong_shape_raise(items):
    image, masks = items[0]
    with pytest.raises(ValueError, match="item 0: expected masks of shape"):
        run_rounds(BoxPredictor(), [(image, masks[:, :100])], progress=False)


@pytest.mark.parametrize(
    "kwargs", [{"rounds": -1}, {"clicks_per_round": 0}, {"strategy": "edge"}, {"click_noise": -1.0}]
)
def test_bad_configs_raise(kwargs):
    with pytest.raises(ValueError, match="expected"):
        RoundsConfig(**kwargs)


def test_noc_of_an_oracle_is_one(items):
    result = run_noc(Oracle(items), items, max_clicks=5, progress=False)
    assert result.noc == {"NoC@85": 1.0, "NoC@90": 1.0}
    assert result.miou_per_click == [1.0] * 6


def test_noc_counts_the_clicks_a_predictor_needs(items):
    result = run_noc(Oracle(items, clicks_needed=2), items, max_clicks=5, progress=False)
    assert result.noc == {"NoC@85": 2.0, "NoC@90": 2.0}
    assert result.ious[:, 2:].min() == 1.0 and result.ious[:, 1].max() < 0.85


def test_noc_of_the_box_is_max_clicks(items):
    result = run_noc(BoxPredictor(), items, max_clicks=4, thresholds=(0.85,), progress=False)
    assert result.noc == {"NoC@85": 4.0}
    assert result.ious.shape == (3, 5)
    assert result.to_dict()["NoC@85"] == 4.0


def test_plot_writes_a_file(tmp_path, items):
    curve = run_rounds(BoxPredictor(), items, RoundsConfig(rounds=1), progress=False).clicks_curve()
    path = tmp_path / "plots" / "miou.png"
    plot_miou_vs_clicks({"box": curve, "other": ([0, 1, 2], [0.5, 0.6, 0.7])}, path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="curve 'bad'"):
        plot_miou_vs_clicks({"bad": ([0, 1], [0.5])}, tmp_path / "bad.png")


def test_a_per_instance_iterator_sets_each_image_once(items):
    image, masks = items[0]

    class Counting(BoxPredictor):
        images = 0

        def set_image(self, image):
            Counting.images += 1
            super().set_image(image)

    per_instance = ((image, mask) for mask in masks)  # a generator of (image, bool[H, W])
    result = run_rounds(Counting(), per_instance, RoundsConfig(rounds=1), progress=False)
    assert Counting.images == 1
    assert len(result.ious) == 3


def test_void_pixels_are_left_out_of_scores_and_clicks(items):
    """GrabCut's ground truth has an unlabelled band along the boundary: a mask that differs
    from the object only there is perfect, and no click goes there (as RITM scores it)."""
    image, masks = items[0]
    kernel = np.ones((5, 5), np.uint8)

    class Dilated(Oracle):
        def predict(self, box, clicks=None, previous=None):
            result = super().predict(box, clicks, previous)
            return MaskPrediction(cv2.dilate(result.mask.astype(np.uint8), kernel).astype(bool), 1.0)

    outer = cv2.dilate(masks.any(0).astype(np.uint8), kernel, iterations=2).astype(bool)
    band = outer & ~cv2.erode(masks.any(0).astype(np.uint8), kernel).astype(bool)
    with_void = [(image, masks, band)]
    config = RoundsConfig(min_region_px=0)
    clean = run_rounds(Dilated(items), with_void, config, progress=False)
    assert np.all(clean.ious == 1.0) and np.all(clean.clicks == 0)
    plain = run_rounds(Dilated(items), items, config, progress=False)
    assert plain.ious[:, 0].max() < 1.0 and plain.clicks[:, 1].min() > 0
    assert run_noc(Dilated(items), with_void, max_clicks=3, progress=False).ious.min() == 1.0
    with pytest.raises(ValueError, match="void mask of shape"):
        run_rounds(BoxPredictor(), [(image, masks, band[:10])], config, progress=False)


def test_dataset_items_carry_each_images_void_pixels():
    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.io.rle import mask_to_rle
    from fewclick.protocols.segment_run import InstanceItems
    from fewclick.types import Objects

    image, masks = scene()
    band = np.zeros(masks.shape[1:], bool)
    band[100:110] = True
    objects = Objects(
        np.zeros(3), [tight_box(m) for m in masks], segmentations=[mask_to_rle(m) for m in masks]
    )
    rec = ImageRecord("a.png", 200, 200, objects, extra={"void": mask_to_rle(band), "pixels": image})
    rec.load_image = lambda: image
    got = list(InstanceItems(Dataset(["thing"], [rec])))
    assert len(got) == 3 and all(np.array_equal(void, band) for _, _, void in got)
    assert all(np.array_equal(m[0], g) for (_, m, _), g in zip(got, masks))


class Offers(Oracle):
    """Serves the box itself, with two candidates: an empty mask, then the true mask."""

    def predict(self, box, clicks=None, previous=None):
        served = BoxPredictor.predict(self._box_predictor(), box)
        truth = Oracle.predict(self, box).mask
        served.candidates = [served, MaskPrediction(np.zeros_like(truth), 0.5), MaskPrediction(truth, 0.9)]
        return served


def test_an_annotator_tabs_to_the_best_candidate_and_each_press_counts(items):
    noc = run_noc(Offers(items), items, max_clicks=5, progress=False)
    assert noc.noc == {"NoC@85": 2.0, "NoC@90": 2.0}, "two Tab presses to the true mask"
    assert (noc.ious[:, 1] == 0).all() and (noc.ious[:, 2:] == 1).all()
    rounds = run_rounds(Offers(items), items, RoundsConfig(rounds=1), progress=False)
    assert rounds.miou == [1.0, 1.0]
    assert rounds.clicks.tolist() == [[2, 0]] * 3, "the presses counted in round 0; no error left to click"


def test_an_annotator_does_not_tab_for_a_candidate_barely_better(items):
    class Barely(Oracle):
        def predict(self, box, clicks=None, previous=None):
            served = Oracle.predict(self, box)
            worse = served.mask.copy()
            worse[np.argwhere(worse)[0][0]] = False  # the object's top row off: under 2% of it
            served = MaskPrediction(worse, 1.0)
            served.candidates = [served, Oracle.predict(self, box)]
            return served

    rounds = run_rounds(Barely(items), items, RoundsConfig(rounds=1, min_region_px=10**6), progress=False)
    assert rounds.clicks[:, 0].tolist() == [0, 0, 0] and rounds.miou[0] < 1.0
