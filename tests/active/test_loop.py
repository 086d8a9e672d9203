"""Active-learning episodes end to end on tiny random maps (a few training steps each)."""

from dataclasses import replace

import numpy as np
import pytest

from fewclick.active.learners import PixelLearner, PretrainedLearner
from fewclick.active.loop import METHODS, ActiveConfig, initial_units, run_method, train_initial
from fewclick.data.synthetic import make_dataset
from fewclick.io import read_dataset
from fewclick.models.backbone import PRETRAINED_MAPS
from fewclick.train.detect_pretrained import FeatureTile
from fewclick.types import Objects

CLASSES = ["car", "person"]
CONFIG = ActiveConfig(episodes=1, initial_steps=3, episode_steps=2, episode_fraction=0.2, score_threshold=0.0)


def _unit(seed: int) -> FeatureTile:
    rng = np.random.default_rng(seed)
    # a 512 px input (the crop's size) keeps the test quick; the encoder's is 1024
    maps = [rng.standard_normal((c, 512 // s, 512 // s)).astype(np.float16) for s, c in PRETRAINED_MAPS]
    xy = rng.uniform(20, 420, (6, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 60, (6, 2))], 1)
    return FeatureTile(maps, Objects(rng.integers(0, 2, 6), boxes), (512, 512))


@pytest.fixture(scope="module")
def learner():
    units = [_unit(i) for i in range(6)]
    return PretrainedLearner(units, units[:2], CLASSES)


@pytest.fixture(scope="module")
def initial(learner, tmp_path_factory):
    chosen = initial_units(len(learner.units), CONFIG.initial_fraction, seed=0)
    out = tmp_path_factory.mktemp("active") / "initial"
    return chosen, train_initial(learner, chosen, out, CONFIG, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_its_episodes_and_counts_the_boxes_it_labels(method, learner, initial, tmp_path):
    config = replace(CONFIG, episodes=2) if method == "box_uncertainty" else CONFIG
    curve = run_method(method, learner, initial, config, 0, tmp_path, log=lambda _: None)
    assert len(curve.boxes) == len(curve.mAP) == len(curve.seconds) == config.episodes + 1
    assert curve.boxes[0] == 6, "the initial image's six boxes"
    # every episode asks (a detector of random maps may find no object: boxes may stay)
    asked = curve.questions if method.startswith("box") else curve.boxes
    assert all(b > a for a, b in zip(asked, asked[1:]))
    assert all(b >= a for a, b in zip(curve.boxes, curve.boxes[1:]))
    assert all(0.0 <= m <= 1.0 for m in curve.mAP)
    per_episode = round(CONFIG.episode_fraction * 36)
    if method.startswith("box"):
        steps = zip(curve.boxes, curve.boxes[1:], curve.questions, curve.questions[1:], curve.answers)
        for before, after, asked_before, asked_after, answers in steps:
            # the episode asks until its answers obtained per_episode boxes (or the pool ran out)
            assert after - before == answers["obtained"] <= per_episode
            asked = answers["accepted"] + answers["fixed"] + answers["background"]
            assert asked_after - asked_before == asked >= answers["obtained"]
    else:
        assert all(a["boxes"] == 6 * a["images"] for a in curve.answers)


def test_an_empty_pool_stops_the_run_with_a_message(learner, initial, tmp_path):
    said = []
    config = replace(CONFIG, score_threshold=1.01)
    curve = run_method("box_random", learner, initial, config, 0, tmp_path, log=said.append)
    assert len(curve.boxes) == 1 and "no box scores >= t_d" in said[0]


def test_an_unknown_method_is_refused(learner, initial, tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        run_method("box_entropy", learner, initial, CONFIG, 0, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["box_coreset"])
def test_the_detector_from_scratch_runs_episodes_on_the_pixels(method, tmp_path):
    make_dataset("aerial", 5, seed=2, width=96, height=96, out_dir=tmp_path / "aerial")
    data = read_dataset(tmp_path / "aerial" / "annotations.json")
    from fewclick.io.images import load_image

    records = [replace(r, extra={"pixels": load_image(r.path)}) for r in data.images]
    learner = PixelLearner(records, records[:2], data.classes)
    chosen = initial_units(len(records), 0.2, seed=0)
    model = train_initial(learner, chosen, tmp_path / "initial", CONFIG, seed=0)
    curve = run_method(method, learner, (chosen, model), CONFIG, 0, tmp_path, log=lambda _: None)
    assert (
        len(curve.mAP) == 2 and curve.questions[1] > curve.questions[0] and curve.boxes[1] >= curve.boxes[0]
    )
    features = learner.box_features(model, 0, np.array([[0, 0, 20, 20], [30, 30, 90, 90]], np.float32))
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_box_questions_go_on_until_they_obtained_the_episode_s_boxes():
    from fewclick.active.labels import LabelState
    from fewclick.active.loop import _ask_boxes
    from fewclick.active.pool import BoxPool

    # two images of three objects; the pool holds every object and as many empty boxes
    truth = [Objects([0, 1, 0], [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]) for _ in range(2)]
    empty = [[200, 200, 210, 210], [220, 220, 230, 230], [240, 240, 250, 250]]
    boxes = np.array([b for t in truth for b in t.boxes.tolist() + empty], np.float32)
    unit = np.repeat([0, 1], 6)
    # the empty boxes are the most uncertain: uncertainty asks them first
    scores = np.tile([0.9, 0.9, 0.9, 0.3, 0.3, 0.3], 2).astype(np.float32)
    pool = BoxPool(unit, boxes, np.zeros(12, np.int64), scores)
    state = LabelState(truth)
    counts, cost = _ask_boxes("uncertainty", pool, 4, np.random.default_rng(0), None, None, state)
    assert counts["obtained"] == state.boxes_labeled == 4
    assert counts["background"] == 6, "every empty box was asked before the objects"
    assert state.questions == 10 == counts["accepted"] + counts["fixed"] + counts["background"]
    # a pool with fewer objects than asked for is asked in full, and the episode ends short
    state = LabelState(truth)
    counts, _ = _ask_boxes("random", pool, 50, np.random.default_rng(0), None, None, state)
    assert counts["obtained"] == 6 and state.questions == 12
