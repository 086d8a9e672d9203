import math

import pytest

from fewclick.protocols.seeds import CollapseRule, aggregate_seeds, collapsed_seeds


@pytest.mark.parametrize(
    ("train_scores", "expected"),
    [
        ({0: 0.30, 1: 0.28, 2: 0.31}, []),  # all alike
        ({0: 0.30, 1: 0.00, 2: 0.31}, [1]),  # no peak at all
        ({0: 0.30, 1: 0.10, 2: 0.31}, [1]),  # below half of the best seed
        ({0: 0.30, 1: 0.16, 2: 0.31}, []),  # weak, not collapsed
        ({0: 0.01, 1: 0.015}, [0, 1]),  # every seed under the floor
        ({0: 0.0}, [0]),
        ({0: 0.25}, []),  # one seed: only the floor applies
        ({0: float("nan"), 1: 0.2}, [0]),  # nothing scored counts as collapsed
        ({}, []),
    ],
)
def test_collapsed_seeds(train_scores, expected):
    assert collapsed_seeds(train_scores) == expected


def test_collapse_rule_is_configurable_and_validated():
    assert collapsed_seeds({0: 0.3, 1: 0.2}, CollapseRule(fraction=0.8)) == [1]
    assert collapsed_seeds({0: 0.3, 1: 0.2}, CollapseRule(floor=0.25, fraction=0.0)) == [1]
    with pytest.raises(ValueError, match="fraction"):
        CollapseRule(fraction=1.5)
    with pytest.raises(ValueError, match="floor"):
        CollapseRule(floor=-0.1)


def test_aggregate_leaves_collapsed_seeds_out_of_mean_and_std():
    test = {
        0: {"mAP_0.5": 0.20, "mAP_1.0": 0.30},
        1: {"mAP_0.5": 0.00, "mAP_1.0": 0.01},
        2: {"mAP_0.5": 0.40, "mAP_1.0": 0.50},
    }
    out = aggregate_seeds(test, {0: 0.3, 1: 0.0, 2: 0.5})
    assert out["collapsed"] == [1]
    assert out["seeds"] == [0, 1, 2]
    assert out["mAP_0.5"] == pytest.approx(0.30)
    assert out["mAP_1.0"] == pytest.approx(0.40)
    assert out["mAP_1.0_std"] == pytest.approx(math.sqrt(0.02), abs=1e-4)  # sample std of 0.3 and 0.5
    assert [s["collapsed"] for s in out["per_seed"]] == [False, True, False]
    assert out["per_seed"][1] == {
        "seed": 1,
        "mAP_0.5": 0.0,
        "mAP_1.0": 0.01,
        "train_mAP_1.0": 0.0,
        "collapsed": True,
    }


def test_aggregate_of_one_seed_has_no_std():
    out = aggregate_seeds({3: {"mAP_1.0": 0.25}}, {3: 0.3})
    assert out["mAP_1.0"] == 0.25 and math.isnan(out["mAP_1.0_std"])
    assert out["collapsed"] == [] and out["seeds"] == [3]


def test_aggregate_when_every_seed_collapsed_is_nan_and_flagged():
    out = aggregate_seeds({0: {"mAP_1.0": 0.01}, 1: {"mAP_1.0": 0.0}}, {0: 0.0, 1: 0.01})
    assert out["collapsed"] == out["seeds"] == [0, 1]
    assert math.isnan(out["mAP_1.0"]) and math.isnan(out["mAP_1.0_std"])


@pytest.mark.parametrize(
    ("test", "train", "match"),
    [
        ({0: {"mAP_1.0": 0.1}}, {1: 0.1}, "same seeds"),
        ({}, {}, "at least one seed"),
        ({0: {"mAP_1.0": 0.1}, 1: {"mAP_0.5": 0.1}}, {0: 0.1, 1: 0.1}, "seed 1 has metrics"),
    ],
)
def test_aggregate_rejects_inconsistent_inputs(test, train, match):
    with pytest.raises(ValueError, match=match):
        aggregate_seeds(test, train)
