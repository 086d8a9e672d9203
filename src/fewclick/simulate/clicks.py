"""Centre clicks for click-to-detect (C3Det).

Evaluation (C3Det section 5, and its public code): a *session* draws one random order of
the image's objects; the k-th simulated click is the exact centre and true class of the
k-th object of that order, so k = 1..20 adds one object per step without replacement and
stops adding once every object has been clicked. Five sessions are averaged.

Training (C3Det section 4.1.1) draws how many objects to click per sample. Two rules exist:

- ``"code"`` (default, the public code): ``K ~ U{0, ..., min(N, 20) - 1}``, so a patch
  never receives a click on every object and never more than 19;
- ``"paper"`` (the paper's text): ``N_u ~ U{0, ..., 20}`` and ``K = min(N_u, N)``, so
  small patches often get all their objects clicked.

In both, the K objects are drawn uniformly without replacement. Ignored objects (crowd,
DontCare) and objects without a finite centre are never clicked.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fewclick.types import Clicks, Objects

__all__ = ["click_order", "centre_clicks", "object_centres", "training_click_indices", "training_clicks"]


def object_centres(objects: Objects) -> np.ndarray:
    """Click position of each object, ``float32[N, 2]`` (x, y): the oriented box centre when
    ``objects.rboxes`` is set, else the XYXY box centre, else the annotated point."""
    if objects.rboxes is not None and len(objects):
        return objects.rboxes[:, :2].astype(np.float32)
    return objects.centers


def _clickable(objects: Objects) -> np.ndarray:
    """Indices of the objects a simulated annotator may click, ``int64[M]``."""
    finite = np.isfinite(object_centres(objects)).all(axis=1) if len(objects) else np.zeros(0, bool)
    return np.flatnonzero(finite & ~objects.ignore)


def click_order(objects: Objects, rng: np.random.Generator) -> np.ndarray:
    """One evaluation session: a uniform random permutation of the clickable objects.

    Returns ``int64[M]`` object indices (M = objects neither ignored nor without a centre).
    """
    return rng.permutation(_clickable(objects)).astype(np.int64)


def centre_clicks(objects: Objects, k: int, order: np.ndarray) -> Clicks:
    """The clicks after ``k`` steps of the session ``order``: centres (x, y) and true class
    ids of the first ``min(k, len(order))`` objects of ``order``; ``positive`` is True.

    ``centre_clicks(objects, k, order)`` is a prefix of ``centre_clicks(objects, k + 1, order)``.
    """
    if k < 0:
        raise ValueError(f"expected a number of clicks k >= 0, got {k}")
    chosen = np.asarray(order, np.int64).reshape(-1)[:k]
    centres = object_centres(objects)
    return Clicks(centres[chosen], objects.labels[chosen], np.ones(len(chosen), bool))


def training_click_indices(
    objects: Objects,
    rng: np.random.Generator,
    max_clicks: int = 20,
    rule: Literal["code", "paper"] = "code",
) -> np.ndarray:
    """The objects clicked in one training sample, ``int64[K]``: K objects drawn uniformly
    without replacement. K follows ``rule`` (see the module docstring): ``"code"``
    ``K ~ U{0..min(N, max_clicks) - 1}``; ``"paper"`` ``K = min(U{0..max_clicks}, N)``.
    N counts the clickable objects; with N = 0 the result is empty.
    """
    if max_clicks < 0:
        raise ValueError(f"expected max_clicks >= 0, got {max_clicks}")
    candidates = _clickable(objects)
    n = len(candidates)
    if rule == "code":
        upper = min(n, max_clicks)
        k = int(rng.integers(0, upper)) if upper > 0 else 0
    elif rule == "paper":
        k = min(int(rng.integers(0, max_clicks + 1)), n)
    else:
        raise ValueError(f"expected rule 'code' or 'paper', got {rule!r}")
    return rng.choice(candidates, size=k, replace=False).astype(np.int64) if k else np.zeros(0, np.int64)


def training_clicks(
    objects: Objects,
    rng: np.random.Generator,
    max_clicks: int = 20,
    rule: Literal["code", "paper"] = "code",
) -> Clicks:
    """Clicks for one training sample: centres (x, y) and true classes of the objects
    :func:`training_click_indices` draws."""
    chosen = training_click_indices(objects, rng, max_clicks, rule)
    return centre_clicks(objects, len(chosen), chosen)
