"""The mask-quality ranker: its features, its learning, its report and its file."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from fewclick.quality import QualityRanker, interaction_features, plot_ranking, ranking_report
from fewclick.types import Clicks


def square(size: int = 40, lo: int = 10, hi: int = 20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[lo:hi, lo:hi] = True
    return mask


def test_features_of_a_hand_made_round():
    previous = square()  # x, y in 10..19
    mask = previous.copy()
    mask[10:20, 20:25] = True  # the round added 50 px: IoU 100 / 150
    clicks = Clicks([(25, 15), (15, 15)], [0, 0], [True, False])
    # (25, 15) lies outside: 6 px to the nearest mask pixel (19, 15);
    # (15, 15) lies inside: 5 px to the nearest outside pixel (20, 15)
    features = interaction_features(2, clicks, previous, mask)
    np.testing.assert_allclose(features, [2, 2, 1 - 100 / 150, 6, 5.5], rtol=1e-5)


def test_round_0_has_no_clicks_change_or_distance():
    np.testing.assert_array_equal(interaction_features(0, None, None, square()), [0, 0, 0, 0, 0])


def test_distances_to_an_empty_previous_mask_are_the_diagonal():
    mask = np.zeros((30, 40), bool)
    mask[2:6, 2:6] = True
    features = interaction_features(1, Clicks([(5, 5)], [0], [True]), np.zeros((30, 40), bool), mask)
    assert features[2] == 1.0  # IoU 0 with the empty previous mask
    assert features[3] == features[4] == pytest.approx(50.0)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features where IoU falls with the last round's mask change and click distance."""
    rng = np.random.default_rng(seed)
    clicks = rng.integers(1, 4, n)
    rounds = rng.integers(1, 4, n)
    change = rng.uniform(0, 0.5, n)
    mean_dist = rng.uniform(0, 20, n)
    max_dist = mean_dist + rng.uniform(0, 10, n)
    iou = np.clip(1 - change - 0.02 * mean_dist + rng.normal(0, 0.03, n), 0, 1)
    return np.stack([clicks, rounds, change, max_dist, mean_dist], axis=1), iou


def test_the_ranker_learns_a_monotone_relation():
    x, y = synthetic(300, seed=0)
    x_test, y_test = synthetic(200, seed=1)
    ranker = QualityRanker(n_estimators=50).fit(x, y)
    predicted = ranker.predict(x_test)
    assert predicted.shape == (200,) and predicted.min() >= 0 and predicted.max() <= 1
    report = ranking_report(predicted, y_test)
    assert report["spearman"] > 0.8
    assert report["top70_mIoU"] > report["all_mIoU"] + 0.05


def test_ranking_report_of_a_hand_made_case():
    report = ranking_report([0.9, 0.1, 0.5, 0.7], [1.0, 0.2, 0.6, 0.8])
    assert report["spearman"] == pytest.approx(1.0)
    assert report["fractions"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    # ranked IoUs: 1.0, 0.8, 0.6, 0.2; the top N% keeps ceil(N% of 4) masks
    expected = [1.0, 1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.65, 0.65, 0.65]
    np.testing.assert_allclose(report["top_mIoU"], expected)
    assert report["top70_mIoU"] == pytest.approx(0.8)
    assert report["all_mIoU"] == pytest.approx(0.65)
    assert ranking_report([0.1, 0.9, 0.5, 0.3], [1.0, 0.2, 0.6, 0.8])["spearman"] == pytest.approx(-1.0)


def test_ranking_report_empty_and_constant_cases():
    empty = ranking_report([], [])
    assert math.isnan(empty["spearman"]) and math.isnan(empty["all_mIoU"]) and empty["count"] == 0
    assert math.isnan(ranking_report([0.5, 0.5], [0.1, 0.9])["spearman"])
    with pytest.raises(ValueError, match="one quality per IoU"):
        ranking_report([0.5], [0.1, 0.9])


def test_save_and_load_round_trip(tmp_path):
    x, y = synthetic(60, seed=2)
    ranker = QualityRanker(n_estimators=10).fit(x, y)
    path = tmp_path / "sub" / "ranker.pkl"
    ranker.save(path)
    np.testing.assert_array_equal(QualityRanker.load(path).predict(x), ranker.predict(x))


def test_a_ranker_with_the_model_score_uses_it(tmp_path):
    x, _ = synthetic(300, seed=3)
    score = np.random.default_rng(4).uniform(0, 1, 300)
    y = np.clip(0.3 + 0.6 * score + 0.01 * x[:, 2], 0, 1)  # the score alone sets the IoU here
    paper = QualityRanker(n_estimators=30).fit(x[:200], y[:200])
    ours = QualityRanker(n_estimators=30, with_score=True).fit(x[:200], y[:200], score[:200])
    assert ours.names[-1] == "model_score" and len(paper.names) == 5
    rho_ours = ranking_report(ours.predict(x[200:], score[200:]), y[200:])["spearman"]
    rho_paper = ranking_report(paper.predict(x[200:]), y[200:])["spearman"]
    assert rho_ours > 0.9 and rho_paper < 0.5, (rho_ours, rho_paper)
    ours.save(tmp_path / "r.pkl")
    loaded = QualityRanker.load(tmp_path / "r.pkl")
    np.testing.assert_array_equal(loaded.predict(x, score), ours.predict(x, score))
    with pytest.raises(ValueError, match="pass scores"):
        ours.predict(x)
    with pytest.raises(ValueError, match="one score per feature row"):
        ours.predict(x, score[:5])


def test_a_corrupt_or_foreign_file_raises_a_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"\x80\x05not a pickle at all")
    with pytest.raises(ValueError, match="corrupt.pkl: not a readable ranker file"):
        QualityRanker.load(corrupt)
    foreign = tmp_path / "foreign.pkl"
    foreign.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match="foreign.pkl: expected a fewclick-quality-ranker file"):
        QualityRanker.load(foreign)
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps({"format": "fewclick-quality-ranker", "version": 0}))
    with pytest.raises(ValueError, match="expected ranker version 1"):
        QualityRanker.load(old)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        QualityRanker.load(tmp_path / "missing.pkl")


def test_misuse_raises():
    ranker = QualityRanker(n_estimators=5)
    with pytest.raises(RuntimeError, match="not trained"):
        ranker.predict(np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        ranker.fit(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="as many IoUs"):
        ranker.fit(np.zeros((3, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="finite features"):
        ranker.fit(np.full((3, 5), np.nan), np.zeros(3))


def test_plot_ranking_writes_a_file(tmp_path):
    path = tmp_path / "ranking.png"
    plot_ranking(ranking_report([0.9, 0.1, 0.5], [1.0, 0.2, 0.6]), path)
    assert path.stat().st_size > 1000
