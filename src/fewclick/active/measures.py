"""Informativeness measures: which boxes (or, for the image-level baselines, which images)
an episode asks about.

- ``random``: uniformly at random;
- ``uncertainty``: classification uncertainty 1 - P, P the box's predicted class
  probability; an image's is the mean over its pooled boxes (an image with none ranks last);
- ``coreset``: Sener and Savarese's greedy k-center on features: each pick is the candidate
  farthest (L2) from everything labeled so far and from the earlier picks.
"""

from __future__ import annotations

import numpy as np

from fewclick.active.pool import BoxPool

BOX_MEASURES = ("random", "uncertainty", "coreset")
IMAGE_MEASURES = ("random", "uncertainty", "coreset")


def pick_boxes(
    measure: str,
    pool: BoxPool,
    k: int,
    rng: np.random.Generator,
    features: np.ndarray | None = None,
    labeled: np.ndarray | None = None,
) -> np.ndarray:
    """``int64[min(k, len(pool))]``: indices into ``pool`` of the boxes to ask about, most
    informative first. ``coreset`` needs ``features float[N, D]`` of the pool's boxes and
    ``labeled float[M, D]`` of the boxes labeled so far."""
    _check(measure, BOX_MEASURES, "box")
    k = min(int(k), len(pool))
    if k <= 0:
        return np.zeros(0, np.int64)
    if measure == "random":
        return rng.permutation(len(pool))[:k].astype(np.int64)
    if measure == "uncertainty":
        order = rng.permutation(len(pool))  # ties in a random order
        return order[np.argsort(-pool.uncertainty[order], kind="stable")][:k].astype(np.int64)
    if features is None or len(features) != len(pool):
        raise ValueError(
            f"coreset needs one feature row per pooled box ({len(pool)}), got "
            f"{None if features is None else len(features)}"
        )
    return k_center_greedy(features, labeled, k, rng)


def pick_images(
    measure: str,
    candidates: np.ndarray,
    k: int,
    rng: np.random.Generator,
    pool: BoxPool | None = None,
    features: np.ndarray | None = None,
    labeled: np.ndarray | None = None,
) -> np.ndarray:
    """``int64[min(k, len(candidates))]``: the unit ids among ``candidates`` to label in
    full. ``uncertainty`` needs the ``pool``; ``coreset`` needs ``features float[len(candidates),
    D]`` and ``labeled float[M, D]`` (the labeled units' image features)."""
    _check(measure, IMAGE_MEASURES, "image")
    candidates = np.asarray(candidates, np.int64).reshape(-1)
    k = min(int(k), len(candidates))
    if k <= 0:
        return np.zeros(0, np.int64)
    if measure == "random":
        return rng.permutation(candidates)[:k]
    if measure == "uncertainty":
        if pool is None:
            raise ValueError("image uncertainty needs the box pool")
        mean = np.array(
            [pool.uncertainty[pool.unit == u].mean() if (pool.unit == u).any() else -1.0 for u in candidates]
        )
        order = rng.permutation(len(candidates))
        return candidates[order[np.argsort(-mean[order], kind="stable")][:k]]
    if features is None or len(features) != len(candidates):
        raise ValueError(f"coreset needs one feature row per candidate image ({len(candidates)})")
    return candidates[k_center_greedy(features, labeled, k, rng)]


def k_center_greedy(
    candidates: np.ndarray, centres: np.ndarray | None, k: int, rng: np.random.Generator
) -> np.ndarray:
    """``int64[min(k, N)]``: greedy k-center picks among ``candidates float[N, D]`` given
    the already covered ``centres float[M, D]`` (None or empty: the first pick is random).
    Each pick maximises the L2 distance to its nearest centre or earlier pick."""
    x = np.asarray(candidates, np.float64)
    k = min(int(k), len(x))
    if k <= 0:
        return np.zeros(0, np.int64)
    sq = (x * x).sum(1)
    nearest = np.full(len(x), np.inf)
    if centres is not None and len(centres):
        c = np.asarray(centres, np.float64)
        for start in range(0, len(c), 2048):  # bounded memory for large labeled sets
            block = c[start : start + 2048]
            d = sq[:, None] - 2 * x @ block.T + (block * block).sum(1)[None]
            nearest = np.minimum(nearest, d.min(1))
    picks = []
    for _ in range(k):
        j = int(rng.integers(len(x))) if not np.isfinite(nearest).any() else int(np.argmax(nearest))
        picks.append(j)
        nearest = np.minimum(nearest, sq - 2 * x @ x[j] + sq[j])
        nearest[j] = -np.inf
    return np.asarray(picks, np.int64)


def _check(measure: str, known: tuple[str, ...], level: str) -> None:
    if measure not in known:
        raise ValueError(f"unknown {level} measure {measure!r}; expected one of {known}")
