"""Scores of one model trained with several seeds: collapse detection and the mean over the rest.

A training *collapses* when its model is useless on the data it was trained on: its
training-part score is below ``floor`` (no peak, or none in the right place), or below
``fraction`` of the best seed's training-part score. Only the training part decides, so
the test part is never used to choose which runs count. Collapsed seeds are listed and
left out of the mean; when every seed collapsed, the mean is NaN.

Pure numpy on plain dicts, so the rule is tested without a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CollapseRule:
    """A seed collapsed when its training-part score is ``< floor`` or ``< fraction * best``."""

    floor: float = 0.02
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"expected a fraction in [0, 1], got {self.fraction}")
        if self.floor < 0:
            raise ValueError(f"expected floor >= 0, got {self.floor}")


def collapsed_seeds(train_scores: Mapping[int, float], rule: CollapseRule | None = None) -> list[int]:
    """Seeds (keys of ``seed -> training-part score``) whose training collapsed, sorted.
    A NaN score (nothing to score) counts as collapsed."""
    rule = rule or CollapseRule()
    finite = [v for v in train_scores.values() if np.isfinite(v)]
    best = max(finite, default=0.0)
    limit = max(rule.floor, rule.fraction * best)
    return sorted(seed for seed, v in train_scores.items() if not (np.isfinite(v) and v >= limit))


def aggregate_seeds(
    test_scores: Mapping[int, Mapping[str, float]],
    train_scores: Mapping[int, float],
    rule: CollapseRule | None = None,
    train_key: str = "train_mAP_1.0",
) -> dict:
    """Mean and sample standard deviation over the seeds that did not collapse.

    ``test_scores``: seed -> {metric name -> value}, every seed with the same names;
    ``train_scores``: seed -> the training-part score that decides collapse. Returns
    ``{name: mean, name_std: std, ..., "seeds": [...], "collapsed": [...], "per_seed":
    [{"seed", names..., train_key, "collapsed"}, ...]}``; the mean is NaN when every seed
    collapsed, the std NaN with fewer than two seeds kept."""
    if set(test_scores) != set(train_scores):
        raise ValueError(
            f"expected the same seeds for test and training scores, got {sorted(test_scores)} "
            f"and {sorted(train_scores)}"
        )
    if not test_scores:
        raise ValueError("expected scores of at least one seed, got none")
    seeds = sorted(test_scores)
    names = list(test_scores[seeds[0]])
    for seed in seeds:
        if list(test_scores[seed]) != names:
            raise ValueError(f"seed {seed} has metrics {list(test_scores[seed])}; expected {names}")
    collapsed = collapsed_seeds(train_scores, rule)
    kept = [s for s in seeds if s not in collapsed]
    out: dict = {}
    for name in names:
        values = np.array([test_scores[s][name] for s in kept], np.float64)
        out[name] = _rounded(values.mean()) if len(values) else float("nan")
        out[f"{name}_std"] = _rounded(values.std(ddof=1)) if len(values) > 1 else float("nan")
    out["seeds"] = seeds
    out["collapsed"] = collapsed
    out["per_seed"] = [
        {"seed": s, **test_scores[s], train_key: train_scores[s], "collapsed": s in collapsed} for s in seeds
    ]
    return out


def _rounded(value: float) -> float:
    return round(float(value), 4)
