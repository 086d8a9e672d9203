"""Centre clicks (C3Det): sessions without replacement, uniform orders, training K."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from fewclick.simulate import centre_clicks, click_order, training_clicks
from fewclick.types import Clicks, Objects

# Statistical tests below use a fixed seed and a chi-square goodness-of-fit test with
# p > 0.001: the seeded outcome is fixed, and a correct sampler would fail this bound only
# once in a thousand seeds, while an off-by-one in a range (e.g. K up to min(N, 20) instead
# of min(N, 20) - 1) moves p to ~0 at these sample sizes.
P_MIN = 1e-3


def grid_objects(n: int, ignore: list[int] | None = None) -> Objects:
    """n 10x10 boxes on a row, class i % 3, centre x = 20 i + 5, y = 5."""
    x0 = 20.0 * np.arange(n)
    boxes = np.stack([x0, np.zeros(n), x0 + 10, np.full(n, 10.0)], axis=1)
    flags = np.zeros(n, bool)
    flags[ignore or []] = True
    return Objects(np.arange(n) % 3, boxes, ignore=flags)


def test_session_is_prefix_without_replacement(rng):
    objects = grid_objects(7, ignore=[2])
    order = click_order(objects, rng)
    assert sorted(order.tolist()) == [0, 1, 3, 4, 5, 6]
    previous = Clicks.empty()
    for k in range(0, 10):
        clicks = centre_clicks(objects, k, order)
        assert len(clicks) == min(k, 6)
        np.testing.assert_array_equal(clicks.xy[: len(previous)], previous.xy)
        np.testing.assert_array_equal(clicks.labels[: len(previous)], previous.labels)
        assert len(np.unique(clicks.xy[:, 0])) == len(clicks)  # each object at most once
        previous = clicks
    np.testing.assert_allclose(previous.xy, np.stack([20.0 * order + 5, np.full(6, 5.0)], axis=1))
    np.testing.assert_array_equal(previous.labels, order % 3)
    assert previous.positive.all()


def test_orders_are_uniform_over_sessions(rng):
    objects = grid_objects(3)
    counts = Counter(tuple(click_order(objects, rng).tolist()) for _ in range(6000))
    observed = [counts[p] for p in itertools.permutations(range(3))]
    assert sum(observed) == 6000
    assert chisquare(observed).pvalue > P_MIN


def test_oriented_objects_click_the_rbox_centre():
    rboxes = np.array([[50.0, 40.0, 20.0, 6.0, 0.7]], np.float32)
    objects = Objects([4], [[0.0, 0.0, 1.0, 1.0]], rboxes=rboxes)
    clicks = centre_clicks(objects, 1, np.array([0]))
    np.testing.assert_allclose(clicks.xy, [[50.0, 40.0]])
    assert clicks.labels.tolist() == [4]


@pytest.mark.parametrize(
    "n, rule, probabilities",
    [
        (5, "code", np.full(5, 1 / 5)),  # K ~ U{0..4}
        (30, "code", np.full(20, 1 / 20)),  # K ~ U{0..19}
        (5, "paper", np.r_[np.full(5, 1 / 21), 16 / 21]),  # K = min(U{0..20}, 5)
    ],
)
def test_training_k_distribution(rng, n, rule, probabilities):
    objects = grid_objects(n)
    draws = 6000
    ks = []
    for _ in range(draws):
        clicks = training_clicks(objects, rng, rule=rule)
        assert len(np.unique(clicks.xy[:, 0])) == len(clicks)  # without replacement
        ks.append(len(clicks))
    observed = np.bincount(ks, minlength=len(probabilities))
    assert len(observed) == len(probabilities)  # no K outside the support
    assert chisquare(observed, probabilities * draws).pvalue > P_MIN


def test_training_clicks_skip_ignored(rng):
    objects = grid_objects(4, ignore=[0, 1, 2])
    for _ in range(50):
        clicks = training_clicks(objects, rng, rule="paper")
        assert set(clicks.xy[:, 0].tolist()) <= {65.0}


def test_empty_objects(rng):
    objects = Objects.empty()
    assert len(click_order(objects, rng)) == 0
    assert len(centre_clicks(objects, 5, click_order(objects, rng))) == 0
    assert len(training_clicks(objects, rng)) == 0
    assert len(training_clicks(objects, rng, rule="paper")) == 0


def test_k_zero_gives_no_clicks(rng):
    objects = grid_objects(3)
    assert len(centre_clicks(objects, 0, click_order(objects, rng))) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda o, r: centre_clicks(o, -1, np.array([0])),
        lambda o, r: training_clicks(o, r, rule="image"),
        lambda o, r: training_clicks(o, r, max_clicks=-1),
    ],
)
def test_bad_arguments(rng, call):
    with pytest.raises(ValueError):
        call(grid_objects(3), rng)
