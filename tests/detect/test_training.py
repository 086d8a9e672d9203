import logging

import numpy as np
import pytest
import torch

from fewclick.data.synthetic import make_dataset
from fewclick.train import common
from fewclick.train.common import StepClock, steps_for_budget
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
from fewclick.train.detect_data import build_targets, canonical_rboxes, random_flip
from fewclick.train.detect_loss import DetectionCriterion
from fewclick.types import Objects, geometry_only

TINY = dict(widths=(8, 8, 16), blocks=(1, 1, 1), features=16, head_width=16)


def test_targets_peak_at_the_centre_cell_and_ignore_regions_have_no_weight():
    objs = Objects([1, 0], [[8, 8, 24, 16], [40, 40, 60, 60]], ignore=[False, True])
    t = build_targets(objs, (64, 64), num_classes=2, stride=4)
    assert t.heatmap.shape == (2, 16, 16)
    assert t.heatmap[1, 3, 4] == 1.0 and t.heatmap[1].max() == 1.0  # centre (16, 12) -> cell (4, 3)
    assert t.heatmap[0].max() == 0, "the ignored object is no positive"
    assert t.weight[12, 12] == 0 and t.weight[0, 0] == 1
    assert t.index.tolist() == [3 * 16 + 4] and t.labels.tolist() == [1]
    np.testing.assert_allclose(t.size[0], np.log([16 / 4, 8 / 4]), rtol=1e-6)
    np.testing.assert_allclose(t.offset[0], [0, 0])


def test_point_objects_get_fixed_size_targets():
    objs = Objects([0], [[np.nan] * 4], points=[[10.5, 6.5]])
    t = build_targets(objs, (32, 32), num_classes=1, stride=4, point_radius=6)
    assert t.index.tolist() == [1 * 8 + 2]
    np.testing.assert_allclose(t.offset[0], [10.5 / 4 - 2, 6.5 / 4 - 1])


def test_canonical_rboxes_have_w_at_least_h_and_the_same_corners():
    from fewclick.types import rboxes_to_polygons

    rb = np.array([[10, 10, 2, 6, 0.3], [5, 5, 8, 3, 3.0]], np.float32)
    canon = canonical_rboxes(rb)
    assert (canon[:, 2] >= canon[:, 3]).all() and ((canon[:, 4] >= 0) & (canon[:, 4] < np.pi)).all()
    for a, b in zip(rboxes_to_polygons(rb), rboxes_to_polygons(canon)):
        assert sorted(map(tuple, np.round(a, 3))) == sorted(map(tuple, np.round(b, 3)))


def test_flips_move_the_geometry_with_the_pixels():
    image = np.zeros((32, 32, 3), np.uint8)
    image[4:10, 20:30] = 255  # box x 20..30, y 4..10
    objs = Objects([0], [[20, 4, 30, 10]], rboxes=[[25, 7, 10, 6, 0]], points=[[25, 7]])
    for seed in range(8):
        flipped, moved = random_flip(image, objs, np.random.default_rng(seed))
        ys, xs = np.nonzero(flipped[..., 0])
        np.testing.assert_allclose(
            moved.boxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1e-4
        )
        np.testing.assert_allclose(moved.points[0], moved.rboxes[0, :2], atol=1e-4)


def test_criterion_terms_are_finite_and_uel_only_with_clicks():
    objs = Objects([1, 0], [[8, 8, 24, 16], [30, 30, 50, 50]])
    targets = [build_targets(objs, (64, 64), 2)]
    outputs = {
        "heatmap": torch.zeros(1, 2, 16, 16, requires_grad=True),
        "offset": torch.zeros(1, 2, 16, 16),
        "size": torch.zeros(1, 2, 16, 16),
    }
    crit = DetectionCriterion(points_only=False, oriented=False, uel_weight=1.0)
    with_click = crit(outputs, targets, [np.array([0])])
    without = crit(outputs, targets, [np.zeros(0, np.int64)])
    assert all(torch.isfinite(v) for v in with_click.values())
    assert with_click["uel"] > 0 and without["uel"] == 0
    with_click["total"].backward()
    assert outputs["heatmap"].grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny_data():
    return make_dataset("aerial", 3, seed=4, width=96, height=96)


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


def test_training_is_deterministic_and_resumes_to_the_same_weights(tiny_data, tmp_path):
    cfg = detector_config_for(tiny_data, "c3det", **TINY)
    assert cfg.oriented and not cfg.points_only
    train = TrainConfig(steps=4, crop=64, batch_size=2, val_every=100, warmup_steps=1)
    a = train_detector(tiny_data, tmp_path / "a", cfg, train, log=lambda _: None)
    paused = train_detector(
        tiny_data, tmp_path / "b", cfg, TrainConfig(**{**train.__dict__, "stop_after": 2}), log=lambda _: None
    )
    assert torch.load(paused, weights_only=False)["step"] == 2
    b = train_detector(tiny_data, tmp_path / "b", cfg, train, log=lambda _: None)
    for key, value in _weights(a).items():
        torch.testing.assert_close(value, _weights(b)[key], msg=key)


def test_resuming_into_a_folder_of_another_model_is_refused(tiny_data, tmp_path):
    train = TrainConfig(steps=1, crop=64, batch_size=1, warmup_steps=1)
    train_detector(
        tiny_data, tmp_path, detector_config_for(tiny_data, "plain", **TINY), train, log=lambda _: None
    )
    with pytest.raises(ValueError, match="another configuration"):
        train_detector(
            tiny_data, tmp_path, detector_config_for(tiny_data, "c3det", **TINY), train, log=lambda _: None
        )


@pytest.mark.parametrize("method", ["c3det", "late-fusion", "early-fusion"])
def test_a_warm_started_click_model_is_the_plain_detector_until_it_trains(tiny_data, tmp_path, method):
    from fewclick.models.clicks import ClickTensors
    from fewclick.models.detector import ClickDetectorNet
    from fewclick.train.detect import warm_start

    train = TrainConfig(steps=2, crop=64, batch_size=2, warmup_steps=1)
    plain_cfg = detector_config_for(tiny_data, "plain", **TINY)
    source = train_detector(tiny_data, tmp_path / "plain", plain_cfg, train, log=lambda _: None)
    plain = ClickDetectorNet(plain_cfg)
    plain.load_state_dict(_weights(source))
    net = ClickDetectorNet(detector_config_for(tiny_data, method, **TINY))
    messages = []
    warm_start(net, source, messages.append)
    assert "tensors copied" in messages[0]
    clicks = ClickTensors(torch.tensor([[30.0, 40.0]]), torch.tensor([0]), torch.tensor([0]))
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = plain.eval()(images)
        got = net.eval()(images, clicks)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, msg=key)


def test_warm_start_from_a_model_of_other_classes_is_refused(tiny_data, tmp_path):
    from fewclick.models.detector import ClickDetectorNet, DetectorConfig
    from fewclick.train.detect import warm_start

    train = TrainConfig(steps=1, crop=64, batch_size=1, warmup_steps=1)
    source = train_detector(
        tiny_data, tmp_path, detector_config_for(tiny_data, "plain", **TINY), train, log=lambda _: None
    )
    other = ClickDetectorNet(DetectorConfig(num_classes=len(tiny_data.classes) + 1, **TINY))
    with pytest.raises(ValueError, match="cannot start one of"):
        warm_start(other, source, lambda _: None)


def test_a_minute_budget_becomes_a_step_count_that_is_stored_and_kept_on_resume(tiny_data, tmp_path):
    cfg = detector_config_for(tiny_data, "plain", **TINY)
    messages = []
    train = TrainConfig(budget_minutes=0.05, crop=64, batch_size=1, warmup_steps=1, min_steps=0)
    path = train_detector(tiny_data, tmp_path, cfg, train, log=messages.append)
    ckpt = torch.load(path, weights_only=False)
    assert any("steps fit in 0.05 minutes" in m for m in messages)
    assert ckpt["step"] == ckpt["total_steps"] > 20  # the 3 + 20 timed steps come first
    assert ckpt["seconds_per_step"] > 0
    train_detector(tiny_data, tmp_path, cfg, train, log=messages.append)  # resumes: nothing left to do
    assert torch.load(path, weights_only=False)["step"] == ckpt["step"]


def test_a_minute_budget_too_short_for_the_machine_still_gets_the_minimum_steps(tiny_data, tmp_path, caplog):
    """A busy machine turned 1.5 minutes into 24 steps, all warm-up: a useless localizer."""
    cfg = detector_config_for(tiny_data, "plain", **TINY)
    train = TrainConfig(budget_minutes=1e-4, crop=64, batch_size=1, warmup_steps=1, min_steps=25)
    with caplog.at_level(logging.INFO, logger="fewclick.train.detect"):  # the default: its logger
        path = train_detector(tiny_data, tmp_path, cfg, train)
    assert torch.load(path, weights_only=False)["total_steps"] == 25  # 24 without the floor
    assert any("longer than the budget" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("budget_s", "min_steps", "expected"),
    [(60.0, 0, 23 + 30), (60.0, 100, 100), (6000.0, 100, 23 + 3000), (0.0, 0, 24)],
)
def test_steps_for_budget(budget_s, min_steps, expected):
    per_step, total = steps_for_budget([2.0] * 20, budget_s, 0.0, 23, min_steps)
    assert per_step == 2.0 and total == expected


def test_step_clock_turns_a_budget_into_steps_from_the_steps_it_times(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(common, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: now[0])}))
    clock = StepClock("test", 0, None, budget_s=100.0)
    calibrated = []
    while clock.running:
        clock.start()
        now[0] += 2.0  # every step takes 2 s
        calibrated.append(clock.done({"loss": "0.000"}))
    clock.close()
    assert calibrated.index(True) == common.CALIBRATION_SKIP + common.CALIBRATION_STEPS - 1
    assert clock.per_step == 2.0 and clock.total == clock.step == 50  # 100 s of 2 s steps
    assert clock.elapsed() == 100.0
    fixed = StepClock("test", 3, 5, budget_s=0.0)
    assert [fixed.done({}) for _ in range(2)] == [False, False] and not fixed.running
    fixed.close()


def test_noisy_objects_weigh_their_cells_and_terms_and_labeled_ones_win_where_they_overlap():
    from fewclick.train.detect_data import BACKGROUND_WEIGHT, LOSS_WEIGHT

    objs = Objects([0, 1, 0], [[4, 4, 20, 20], [40, 40, 56, 56], [16, 4, 32, 20]])
    objs.extra[LOSS_WEIGHT] = np.array([1.0, 0.5, 0.5], np.float32)
    t = build_targets(objs, (64, 64), num_classes=2, stride=4)
    assert t.object_weight.tolist() == [1.0, 0.5, 0.5]
    assert t.weight[12, 12] == 0.5, "the noisy object's centre cell"
    assert t.weight[3, 3] == 1.0, "the labeled object's centre cell"
    assert t.weight[0, 15] == 1.0, "background keeps its weight"
    plain = build_targets(Objects(objs.labels, objs.boxes), (64, 64), num_classes=2, stride=4)
    np.testing.assert_array_equal(t.heatmap, plain.heatmap)
    assert (plain.weight == 1).all() and (plain.object_weight == 1).all()
    objs.extra[BACKGROUND_WEIGHT] = 0.5
    t = build_targets(objs, (64, 64), num_classes=2, stride=4)
    assert t.weight[0, 15] == 0.5 and t.weight[3, 3] == 1.0


def test_in_a_partly_labeled_image_only_the_cells_of_a_box_train_and_background_answers_are_negatives():
    from fewclick.train.detect_data import BACKGROUND_WEIGHT, LOSS_WEIGHT, NEGATIVE

    # a labeled object, a noisy one, a box answered background; nothing else is known
    objs = Objects(
        [0, 1, 0], [[4, 4, 20, 20], [40, 40, 56, 56], [40, 4, 60, 20]], ignore=[False, False, True]
    )
    objs.extra[LOSS_WEIGHT] = np.array([1.0, 0.5, 1.0], np.float32)
    objs.extra[NEGATIVE] = np.array([False, False, True])
    objs.extra[BACKGROUND_WEIGHT] = 0.0
    t = build_targets(objs, (64, 64), num_classes=2, stride=4)
    assert t.weight[2, 2] == 1.0 and t.weight[1, 4] == 1.0, "the labeled box's cells, centre and edge"
    assert t.weight[12, 12] == 0.5 and t.weight[10, 13] == 0.5, "the noisy box's cells"
    assert t.weight[2, 12] == 1.0, "a box answered background is a labeled negative, not an ignore region"
    assert t.heatmap[:, 1:5, 10:15].max() == 0, "and has no peak"
    assert t.weight[15, 0] == 0.0 and t.weight[0, 8] == 0.0, "no box there: nobody said what it is"
    assert t.object.tolist() == [0, 1]


def test_a_class_known_only_from_noisy_labels_trains_at_their_weight(tiny_data, tmp_path):
    from dataclasses import replace

    from fewclick.active.labels import partly_labeled_objects
    from fewclick.io.dataset import Dataset

    # every object of the last class is a noisy label (an unqueried prediction), none labeled
    last = len(tiny_data.classes) - 1
    records = []
    for rec in tiny_data.images:
        o = geometry_only(rec.objects, oriented=False)
        sure, noisy = o[o.labels != last], o[o.labels == last]
        records.append(replace(rec, objects=partly_labeled_objects(sure, np.zeros((0, 4)), noisy, 0.5)))
    assert all((r.objects.extra["loss_weight"][r.objects.labels == last] == 0.5).all() for r in records)
    objects = next(r.objects for r in records if (r.objects.labels == last).any())
    t = build_targets(objects, (96, 96), len(tiny_data.classes))
    of_last = objects.labels[t.object] == last
    assert of_last.any() and (t.object_weight[of_last] == 0.5).all() and t.heatmap[last].max() == 1
    data = Dataset(tiny_data.classes, records, "fewclick")
    cfg = detector_config_for(data, "plain", **TINY)
    train = TrainConfig(steps=2, crop=64, batch_size=2, warmup_steps=1)
    path = train_detector(data, tmp_path, cfg, train, log=lambda _: None)
    assert torch.load(path, weights_only=False)["classes"] == tiny_data.classes


@pytest.mark.parametrize("weights", [[1.0, -0.5], [1.0], [np.nan, 1.0]])
def test_bad_loss_weights_are_refused(weights):
    from fewclick.train.detect_data import LOSS_WEIGHT

    objs = Objects([0, 1], [[4, 4, 20, 20], [40, 40, 56, 56]])
    objs.extra[LOSS_WEIGHT] = np.array(weights, np.float32)
    with pytest.raises(ValueError, match="loss weights"):
        build_targets(objs, (64, 64), num_classes=2)


def test_weighted_regression_terms_scale_with_the_weights_and_flips_keep_them():
    from fewclick.train.detect_data import LOSS_WEIGHT, flip_objects

    objs = Objects([1, 0], [[8, 8, 24, 16], [30, 30, 50, 50]])
    torch.manual_seed(0)
    outputs = {
        "heatmap": torch.randn(1, 2, 16, 16),
        "offset": torch.randn(1, 2, 16, 16),
        "size": torch.randn(1, 2, 16, 16),
    }
    criterion = DetectionCriterion(points_only=False, oriented=False, uel_weight=0.0)
    full = criterion(outputs, [build_targets(objs, (64, 64), 2)], [np.zeros(0, np.int64)])
    objs.extra[LOSS_WEIGHT] = np.array([0.5, 0.5], np.float32)
    half = criterion(outputs, [build_targets(objs, (64, 64), 2)], [np.zeros(0, np.int64)])
    for term in ("offset", "size", "giou"):
        assert float(half[term]) == pytest.approx(0.5 * float(full[term]), rel=1e-5)
    flipped = flip_objects(objs, 64, np.array([True, False, True]))
    assert flipped.extra[LOSS_WEIGHT].tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    "sides, expected",
    [
        ([25, 25, 30], 2.0),  # hit_uav's persons: enlarged twice, at most
        ([10, 12], 2.0),
        ([30, 32, 34], 1.5),  # 48 / 32, in steps of 0.5
        ([40, 60], 1.0),  # 48 / 50 under 1: as they are
        ([100, 120], 1.0),
        ([], 1.0),  # nothing to measure
    ],
)
def test_the_input_scale_brings_the_median_object_towards_48_px(sides, expected):
    from fewclick.train.detect import auto_input_scale

    boxes = [[0, 0, s, s / 2] for s in sides]
    objects = Objects(np.zeros(len(sides), np.int64), np.array(boxes, np.float32).reshape(-1, 4))
    assert auto_input_scale([objects]) == expected


def test_ignore_type_objects_do_not_set_the_input_scale():
    from fewclick.train.detect import auto_input_scale

    objects = Objects(
        [0, 0, 0], [[0, 0, 20, 20], [0, 0, 20, 20], [0, 0, 300, 300]], ignore=[False, False, True]
    )
    assert auto_input_scale([objects]) == 2.0


def test_the_input_scale_is_kept_with_the_model_and_a_warm_start_takes_its_starts(tiny_data, tmp_path):
    """``auto`` on the synthetic scene's small objects enlarges them; the checkpoint carries the
    scale to the predictor; a warm start keeps it though its data would ask for another; a
    number given is used as it is."""
    from fewclick.predict.detect import ClickDetector
    from fewclick.train.detect import auto_input_scale

    cfg = detector_config_for(tiny_data, "plain", **TINY)
    wanted = auto_input_scale([r.objects for r in tiny_data.images])
    assert wanted > 1, "the synthetic scene's objects are small"
    train = TrainConfig(steps=1, crop=64, batch_size=1, warmup_steps=1, input_scale="auto")
    first = train_detector(tiny_data, tmp_path / "a", cfg, train, log=lambda _: None)
    assert torch.load(first, weights_only=False)["predictor"] == {"input_scale": wanted}
    assert ClickDetector.load(first).input_scale == wanted
    warm = TrainConfig(**{**train.__dict__, "init": str(first)})
    big = make_dataset("aerial", 1, seed=5, width=96, height=96)
    for r in big.images:
        r.objects = Objects(r.objects.labels, r.objects.boxes * 0 + [0, 0, 90, 90])  # would ask for 1
    second = train_detector(big, tmp_path / "b", cfg, warm, log=lambda _: None)
    assert ClickDetector.load(second).input_scale == wanted
    fixed = TrainConfig(**{**train.__dict__, "input_scale": 1.5})
    assert ClickDetector.load(train_detector(tiny_data, tmp_path / "c", cfg, fixed)).input_scale == 1.5
    with pytest.raises(ValueError, match="positive input scale"):
        train_detector(tiny_data, tmp_path / "d", cfg, TrainConfig(**{**train.__dict__, "input_scale": 0}))
