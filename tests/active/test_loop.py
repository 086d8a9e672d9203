"""Active-learning episodes end to end on tiny random maps (a few training steps each)."""

from dataclasses import replace

import numpy as np
import pytest

from fewclick.active.loop import METHODS, ActiveConfig, initial_units, run_method, train_initial
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
def units():
    return [_unit(i) for i in range(6)]


@pytest.fixture(scope="module")
def initial(units, tmp_path_factory):
    chosen = initial_units(len(units), CONFIG.initial_fraction, seed=0)
    out = tmp_path_factory.mktemp("active") / "initial"
    return chosen, train_initial(units, chosen, CLASSES, out, CONFIG, seed=0, log=lambda _: None)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_its_episodes_and_counts_the_boxes_it_labels(method, units, initial, tmp_path):
    config = replace(CONFIG, episodes=2) if method == "box_uncertainty" else CONFIG
    curve = run_method(method, units, units[:2], CLASSES, initial, config, 0, tmp_path, log=lambda _: None)
    assert len(curve.boxes) == len(curve.mAP) == len(curve.seconds) == config.episodes + 1
    assert curve.boxes[0] == 6, "the initial image's six boxes"
    assert all(b > a for a, b in zip(curve.boxes, curve.boxes[1:]))
    assert all(0.0 <= m <= 1.0 for m in curve.mAP)
    per_episode = round(CONFIG.episode_fraction * 36)
    if method.startswith("box"):
        for before, after, answers in zip(curve.boxes, curve.boxes[1:], curve.answers):
            assert after - before == sum(answers.values()) <= per_episode
    else:
        assert all(a["boxes"] == 6 * a["images"] for a in curve.answers)


def test_an_empty_pool_stops_the_run_with_a_message(units, initial, tmp_path):
    said = []
    config = replace(CONFIG, score_threshold=1.01)
    curve = run_method("box_random", units, units[:1], CLASSES, initial, config, 0, tmp_path, log=said.append)
    assert len(curve.boxes) == 1 and "no box scores >= t_d" in said[0]


def test_an_unknown_method_is_refused(units, initial, tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        run_method("box_entropy", units, units[:1], CLASSES, initial, CONFIG, 0, tmp_path)
