"""The mask-quality ranker M_r (interactive segmentation at scale, section 4.2 and Figure 8).

A random forest regresses a mask's IoU with the ground truth from five signals of the
annotation process alone (no image, no class), computed by :func:`interaction_features`
for an object's last round of corrective clicks:

1. ``clicks_last_round``: the number of clicks in the last round;
2. ``round``: the last round's number (0 = the box alone);
3. ``mask_change``: 1 - IoU between the previous round's mask and the last round's mask
   (0 when the last round changed nothing);
4. ``max_click_distance`` and 5. ``mean_click_distance``: the largest and the mean
   Euclidean distance in pixels from each click of the last round to the *boundary* of the
   previous round's mask (to the nearest mask pixel for a click outside the mask, to the
   nearest non-mask pixel for a click inside it).

``QualityRanker(with_score=True)`` adds a sixth input, the segmentation model's own score
of the final mask (its mean foreground probability inside the mask): on the ``dsb2018_nuclei``
ranker part (two folds) it lifted Spearman from 0.32-0.41 with the five features to
0.69-0.84, because with fixed-size rounds the click count and round carry little.

:func:`ranking_report` scores a ranking as the paper does: the mIoU of the top N% ranked
masks for N = 10, 20, ..., 100, and the Spearman correlation with the true IoU.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fewclick.metrics.segmentation import mask_iou
from fewclick.types import Clicks

__all__ = ["FEATURE_NAMES", "QualityRanker", "interaction_features", "ranking_report", "plot_ranking"]

FEATURE_NAMES = ("clicks_last_round", "round", "mask_change", "max_click_distance", "mean_click_distance")
SCORE_FEATURE = "model_score"
_FORMAT = "fewclick-quality-ranker"
_VERSION = 1


def interaction_features(
    round_index: int, clicks: Clicks | None, previous_mask: np.ndarray | None, mask: np.ndarray
) -> np.ndarray:
    """The five features (module docstring) of one object -> ``float32[5]``.

    ``round_index``: the last round (0 = box only); ``clicks``: that round's clicks (x, y)
    in pixels; ``previous_mask`` / ``mask``: ``bool[H, W]`` before and after that round.
    Round 0 (or no clicks, or no previous mask) has zero clicks, change and distances.
    Distances to an empty or a full previous mask, which has no boundary, are the image
    diagonal.
    """
    mask = np.asarray(mask, bool)
    if round_index < 0:
        raise ValueError(f"expected round_index >= 0, got {round_index}")
    if previous_mask is None or clicks is None or len(clicks) == 0:
        change = 0.0 if previous_mask is None else 1.0 - mask_iou(previous_mask, mask)
        n = 0 if clicks is None else len(clicks)
        return np.array([n, round_index, change, 0.0, 0.0], np.float32)
    previous_mask = np.asarray(previous_mask, bool)
    distances = _distances_to_boundary(previous_mask, clicks.xy)
    change = 1.0 - mask_iou(previous_mask, mask)
    return np.array([len(clicks), round_index, change, distances.max(), distances.mean()], np.float32)


def _distances_to_boundary(mask: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Distance of each point ``xy float[K, 2]`` (x, y) to the other side of ``mask``."""
    h, w = mask.shape
    if not mask.any() or mask.all():
        return np.full(len(xy), math.hypot(h, w), np.float64)
    ij = np.clip(np.round(xy).astype(int), 0, [w - 1, h - 1])
    ys, xs = np.nonzero(mask)
    x0, x1 = min(xs.min(), ij[:, 0].min()), max(xs.max(), ij[:, 0].max()) + 1
    y0, y1 = min(ys.min(), ij[:, 1].min()), max(ys.max(), ij[:, 1].max()) + 1
    x0, y0, x1, y1 = max(x0 - 1, 0), max(y0 - 1, 0), min(x1 + 1, w), min(y1 + 1, h)
    win = mask[y0:y1, x0:x1].astype(np.uint8)
    inside = cv2.distanceTransform(win, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - win, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    px, py = ij[:, 0] - x0, ij[:, 1] - y0
    return np.where(win[py, px] > 0, inside[py, px], outside[py, px]).astype(np.float64)


class QualityRanker:
    """A seeded scikit-learn ``RandomForestRegressor`` from ``float[N, F]`` features
    (:attr:`names`: the paper's five, then the model's score with ``with_score``) to the
    mask IoU in [0, 1]."""

    def __init__(
        self, n_estimators: int = 200, min_samples_leaf: int = 5, seed: int = 0, with_score: bool = False
    ) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.params = {
            "n_estimators": n_estimators,
            "min_samples_leaf": min_samples_leaf,
            "seed": seed,
            "with_score": with_score,
        }
        self.names = FEATURE_NAMES + ((SCORE_FEATURE,) if with_score else ())
        self.model = RandomForestRegressor(
            n_estimators=n_estimators, min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=1
        )
        self.fitted = False

    def inputs(self, features: Any, scores: Any = None) -> np.ndarray:
        """The forest's input ``float[N, F]``: ``features float[N, 5]`` and, for a ranker
        ``with_score``, the model ``scores float[N]`` as the last column."""
        x = _features(features, len(FEATURE_NAMES))
        if not self.params["with_score"]:
            return x
        if scores is None:
            raise ValueError("this ranker uses the model's score: pass scores with the features")
        s = np.asarray(scores, np.float64).reshape(-1)
        if len(s) != len(x):
            raise ValueError(f"expected one score per feature row, got {len(s)} scores and {len(x)} rows")
        return _features(np.c_[x, s], len(self.names))

    def fit(self, features: Any, ious: Any, scores: Any = None) -> QualityRanker:
        """Train on ``features float[N, 5]`` (and ``scores float[N]`` for a ranker
        ``with_score``) and true ``ious float[N]``; returns self."""
        x = self.inputs(features, scores)
        y = np.asarray(ious, np.float64).reshape(-1)
        if len(y) != len(x) or len(x) == 0:
            raise ValueError(f"expected as many IoUs as feature rows (at least 1), got {len(y)} and {len(x)}")
        if not np.isfinite(y).all():
            raise ValueError("expected finite IoUs, got NaN or inf")
        self.model.fit(x, y)
        self.fitted = True
        return self

    def predict(self, features: Any, scores: Any = None) -> np.ndarray:
        """Estimated IoU ``float64[N]`` in [0, 1] for ``features float[N, 5]`` (and ``scores``)."""
        if not self.fitted:
            raise RuntimeError(
                "the ranker is not trained: call fit(features, ious) or QualityRanker.load(path)"
            )
        x = self.inputs(features, scores)
        if len(x) == 0:
            return np.zeros(0, np.float64)
        return np.clip(self.model.predict(x), 0.0, 1.0)

    def save(self, path: str | Path) -> None:
        """Pickle the trained forest with a format name, a version and the feature names."""
        if not self.fitted:
            raise RuntimeError("the ranker is not trained: nothing to save")
        state = {"format": _FORMAT, "version": _VERSION, "features": list(self.names)}
        state.update(params=self.params, model=self.model)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | Path) -> QualityRanker:
        """Read a file written by :meth:`save`; a missing, corrupt or foreign file raises
        ``FileNotFoundError`` / ``ValueError`` naming it. Only load files you trust (pickle)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ranker file")
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
        except Exception as exc:  # pickle raises many types on corrupt bytes
            raise ValueError(f"{path}: not a readable ranker file ({type(exc).__name__}: {exc})") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path}: expected a {_FORMAT} file, got another pickle")
        params = state.get("params") if isinstance(state.get("params"), dict) else {}
        names = list(FEATURE_NAMES) + ([SCORE_FEATURE] if params.get("with_score") else [])
        if state.get("version") != _VERSION or state.get("features") != names:
            raise ValueError(
                f"{path}: expected ranker version {_VERSION} with features {names}, "
                f"got version {state.get('version')!r} with {state.get('features')!r}"
            )
        ranker = cls(**params)
        ranker.model, ranker.fitted = state["model"], True
        return ranker


def _features(features: Any, width: int) -> np.ndarray:
    x = np.asarray(features, np.float64)
    if x.ndim == 1 and x.size == width:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"expected features of shape (N, {width}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("expected finite features, got NaN or inf")
    return x


def ranking_report(pred_quality: Any, true_iou: Any, fractions: Any = None) -> dict:
    """How well ``pred_quality float[N]`` ranks masks whose real IoU is ``true_iou float[N]``.

    Returns ``{"spearman", "fractions": [0.1, ..., 1.0], "top_mIoU": [...], "top70_mIoU",
    "all_mIoU", "count"}``: the masks are sorted by predicted quality (best first, ties kept
    in input order) and ``top_mIoU[i]`` is the mean true IoU of the first
    ``ceil(fractions[i] * N)`` of them. Spearman is NaN when either side is constant or
    N < 2; every mIoU is NaN for N = 0.
    """
    from scipy.stats import spearmanr

    q = np.asarray(pred_quality, np.float64).reshape(-1)
    t = np.asarray(true_iou, np.float64).reshape(-1)
    if q.shape != t.shape:
        raise ValueError(f"expected one quality per IoU, got {len(q)} qualities and {len(t)} IoUs")
    fr = np.round(np.arange(1, 11) / 10, 2) if fractions is None else np.asarray(fractions, np.float64)
    if ((fr <= 0) | (fr > 1)).any():
        raise ValueError(f"expected fractions in (0, 1], got {fr.tolist()}")
    order = np.argsort(-q, kind="stable")
    top = [_top_mean(t[order], f) for f in fr]
    constant = len(q) < 2 or np.ptp(q) == 0 or np.ptp(t) == 0
    rho = math.nan if constant else float(spearmanr(q, t).statistic)
    return {
        "spearman": rho,
        "fractions": fr.tolist(),
        "top_mIoU": top,
        "top70_mIoU": _top_mean(t[order], 0.7),
        "all_mIoU": _top_mean(t, 1.0),
        "count": len(t),
    }


def _top_mean(sorted_iou: np.ndarray, fraction: float) -> float:
    if len(sorted_iou) == 0:
        return math.nan
    return float(sorted_iou[: math.ceil(fraction * len(sorted_iou) - 1e-9)].mean())


def plot_ranking(report: dict, path: str | Path, title: str = "mask-quality ranking") -> None:
    """The paper's Figure 8 from :func:`ranking_report`: mIoU of the top N% ranked masks vs N,
    with the mIoU of all masks (what a random ranking gives) as a dashed line; PNG/SVG/PDF by suffix."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.6), dpi=120)
    ax = fig.add_subplot()
    ax.plot([100 * f for f in report["fractions"]], report["top_mIoU"], marker="o", label="ranker")
    ax.axhline(report["all_mIoU"], linestyle="--", color="gray", label="all masks")
    ax.set_xlabel("top N% ranked masks")
    ax.set_ylabel("mIoU")
    ax.set_title(f"{title} (Spearman {report['spearman']:.2f})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
