"""Active-learning episodes against the simulated oracle: one method, one seed.

``run_method(method, learner, initial, config, seed, work)`` starts from the initial model
(trained on ``initial``, the fully labeled units), then each episode predicts the pool
with the current model, asks the oracle about boxes until they obtained K ground-truth
boxes (or labels whole images until K boxes, for the image-level baselines), fine-tunes
the model from the last episode's on the labeled units with their noisy labels, and scores
it on the learner's test units. The learner (:mod:`fewclick.active.learners`) holds the
units and trains the detector, from scratch on the pixels or on the pretrained encoder's
maps.

Cost model (seconds a person spends), :data:`COST_SECONDS`:

- drawing a box: 7.0 s, by extreme clicking (Papadopoulos et al., ICCV 2017: 7.0 s per
  box, against about 35 s for drawing a box the usual way);
- verifying a box (yes / no): 1.6 s (Papadopoulos et al., "We don't need no bounding
  boxes", CVPR 2016);
- an answered box is *accepted* (verified) when the oracle keeps its class and it overlaps
  the object at IoU >= 0.7; otherwise it is *fixed*: looked at and redrawn (1.6 + 7.0 s);
  a *background* answer is one verification;
- a fully labeled image (the initial images, the image-level baselines) costs one drawn
  box per ground-truth object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fewclick.active.labels import NOISY_WEIGHT, UNLABELED_WEIGHT, LabelState
from fewclick.active.learners import Fit, test_map
from fewclick.active.measures import pick_boxes, pick_images
from fewclick.active.pool import BoxPool, one_box_per_object
from fewclick.predict.detect import DecodeConfig
from fewclick.simulate.oracle import oracle

logger = logging.getLogger(__name__)

METHODS = (
    "box_random",
    "box_uncertainty",
    "box_coreset",
    "image_random",
    "image_uncertainty",
    "image_coreset",
)
COST_SECONDS = {"draw": 7.0, "verify": 1.6, "fix": 8.6, "background": 1.6}
ACCEPT_IOU = 0.7


@dataclass(frozen=True)
class ActiveConfig:
    initial_fraction: float = 0.1  # of the units, fully labeled at random (the paper: 5-10%)
    episodes: int = 4
    # ground-truth boxes obtained per episode (the paper's measure of effort), as a fraction
    # of the training part's; the box-level methods ask until their answers obtained as many
    # (background answers obtain none), the image-level baselines label images until they
    # reach as many. Four episodes of 10% end at half the boxes (with the initial 10%).
    episode_fraction: float = 0.1
    # t_d: a prediction joins the pool (and is a noisy label) from here; low, for recall (the
    # paper), where 0.3 left the second episode of bccd 30 boxes to ask about
    score_threshold: float = 0.2
    noisy_weight: float = NOISY_WEIGHT  # lambda_d
    background_weight: float = UNLABELED_WEIGHT  # a partly labeled image's cells of no box
    initial_steps: int = 300  # the initial model (from scratch): the app's minute
    # each episode warm-starts from the last model and trains this many steps on everything
    # labeled so far (chosen on a validation split: benchmarks/active.py's QUICK)
    episode_steps: int = 150
    # each episode predicts the pool on a random subset of at most this many unlabeled units
    # (and on every partly labeled one, for its noisy labels), as active learning on large
    # pools does (Yoo and Kweon, CVPR 2019: a random 10,000 of the unlabeled images)
    candidates: int = 100
    # 1e-3 knocked the model about: image_random 0.86 -> 0.68 -> 0.86 on a validation split
    # of bccd's training part, 0.86 -> 0.80 -> 0.83 at 3e-4
    episode_lr: float = 3e-4
    max_detections: int = 100  # per unit


@dataclass
class Curve:
    """One run: after the initial model and after every episode, the ground-truth ``boxes``
    obtained so far, the boxes asked (``questions``, background answers included), the test
    ``mAP`` and the ``seconds`` of labeling under the cost model; plus the answers per
    episode and the wall-clock seconds each episode took."""

    boxes: list[int] = field(default_factory=list)
    questions: list[int] = field(default_factory=list)
    mAP: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    episode_seconds: list[float] = field(default_factory=list)


def initial_units(count: int, fraction: float, seed: int) -> np.ndarray:
    """``int64[m]``: the units fully labeled at the start, at random (at least one)."""
    rng = np.random.default_rng(seed)
    m = max(int(round(count * fraction)), 1)
    return np.sort(rng.permutation(count)[:m]).astype(np.int64)


def train_initial(learner, chosen: np.ndarray, out: Path, config: ActiveConfig, seed: int) -> Path:
    """The initial model M on the fully labeled ``chosen`` units."""
    objects = {int(u): learner.ground_truth[int(u)] for u in chosen}
    return learner.train(objects, out, Fit(steps=config.initial_steps, seed=seed))


def decode_config(config: ActiveConfig) -> DecodeConfig:
    """Every detection down to 0.01 (the pool's t_d is applied after), no size check."""
    return DecodeConfig(score_threshold=0.01, max_detections=config.max_detections, size_factor=None)


def run_method(
    method: str,
    learner,
    initial: tuple[np.ndarray, Path],
    config: ActiveConfig,
    seed: int,
    work: Path,
    log: Callable[[str], None] = logger.info,
) -> Curve:
    """Episodes of ``method`` (one of :data:`METHODS`) from the initial model, with the
    ``learner``'s detector (:mod:`fewclick.active.learners`)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    level, measure = method.split("_", 1)
    chosen, model = initial
    rng = np.random.default_rng(seed)
    truth = learner.ground_truth
    state = LabelState(truth)
    for u in chosen:
        state.label_unit(int(u))
    total = sum(int((~o.ignore).sum()) for o in truth)
    decode = decode_config(config)
    per_episode = max(int(round(config.episode_fraction * total)), 1)
    curve = Curve()
    seconds = state.boxes_labeled * COST_SECONDS["draw"]
    curve.boxes.append(state.boxes_labeled)
    curve.questions.append(state.questions)
    curve.seconds.append(seconds)
    curve.mAP.append(test_map(learner, model, decode))
    for episode in range(1, config.episodes + 1):
        started = time.perf_counter()
        # the image-level baselines label in full: only uncertainty needs the predictions
        open_units = [i for i in range(len(truth)) if i not in state.full]
        candidates = sorted(
            set(rng.permutation(open_units)[: config.candidates].tolist()) | set(state.partial_units)
        )
        needed = level == "box" or measure == "uncertainty"
        preds = learner.predict(model, candidates, decode) if needed else {}
        preds = {u: one_box_per_object(det, config.score_threshold) for u, det in preds.items()}
        pool = BoxPool.from_detections(
            {u: det[state.unanswered(u, det)] for u, det in preds.items()}, config.score_threshold
        )
        if level == "box":
            if not len(pool):
                log(f"{method} episode {episode}: no box scores >= t_d = {config.score_threshold}; stopping")
                break
            answers, cost = _ask_boxes(measure, pool, per_episode, rng, learner, model, state)
        else:
            answers, cost = _ask_images(measure, pool, per_episode, rng, learner, model, state)
        seconds += cost
        objects = {
            u: state.training_objects(
                u, preds.get(u), config.score_threshold, config.noisy_weight, config.background_weight
            )
            for u in state.labeled_units
        }
        fit = Fit(config.episode_steps, seed * 1000 + episode, model, config.episode_lr)
        model = learner.train(objects, work / f"{method}_seed{seed}" / f"episode{episode}", fit)
        curve.boxes.append(state.boxes_labeled)
        curve.questions.append(state.questions)
        curve.seconds.append(round(seconds, 1))
        curve.mAP.append(test_map(learner, model, decode))
        curve.answers.append(answers)
        curve.episode_seconds.append(round(time.perf_counter() - started, 1))
        log(
            f"{method} seed {seed} episode {episode}: {state.boxes_labeled} boxes, "
            f"mAP {curve.mAP[-1]:.3f}, {answers}, {curve.episode_seconds[-1]:.0f} s"
        )
    return curve


def _ask_boxes(measure, pool, k, rng, learner, model, state) -> tuple[dict, float]:
    """Ask the oracle about pooled boxes, most informative first, until they obtained ``k``
    ground-truth boxes (or the pool ran out): the image-level baselines label until ``k``
    boxes too. Each round asks as many boxes as are still missing, since one answer obtains
    at most one box. Returns the answer counts and their cost."""
    features = labeled = None
    if measure == "coreset":
        features, labeled = _box_features(pool, learner, model, state)
    order = pick_boxes(measure, pool, len(pool), rng, features, labeled)
    counts = {"accepted": 0, "fixed": 0, "background": 0, "obtained": 0}
    start = 0
    while counts["obtained"] < k and start < len(order):
        stop = start + k - counts["obtained"]
        _answer(pool[order[start:stop]], state, counts)
        start = stop
    cost = (
        counts["accepted"] * COST_SECONDS["verify"]
        + counts["fixed"] * COST_SECONDS["fix"]
        + counts["background"] * COST_SECONDS["background"]
    )
    return counts, cost


def _answer(picked: BoxPool, state: LabelState, counts: dict) -> None:
    """The oracle's answers to the ``picked`` boxes, image by image, added to ``counts``."""
    for u in np.unique(picked.unit):
        asked = picked.on(int(u))
        answer = oracle(asked.boxes, asked.labels, state.ground_truth[int(u)])
        counts["obtained"] += state.answer(int(u), answer)
        good = ~answer.background & (answer.labels == asked.labels) & (answer.iou >= ACCEPT_IOU)
        counts["accepted"] += int(good.sum())
        counts["fixed"] += int((~answer.background & ~good).sum())
        counts["background"] += int(answer.background.sum())


def _ask_images(measure, pool, k, rng, learner, model, state) -> tuple[dict, float]:
    """Label whole images, in the measure's order, until ``k`` boxes are labeled."""
    candidates = np.array([u for u in range(len(state.ground_truth)) if u not in state.full], np.int64)
    if not len(candidates):
        return {"images": 0, "boxes": 0}, 0.0
    features = labeled = None
    if measure == "coreset":
        features = np.stack([learner.image_feature(model, int(u)) for u in candidates])
        labeled = np.stack([learner.image_feature(model, u) for u in sorted(state.full)])
    order = pick_images(measure, candidates, len(candidates), rng, pool, features, labeled)
    images = boxes = 0
    for u in order:
        if boxes >= k:
            break
        boxes += state.label_unit(int(u))
        images += 1
    return {"images": images, "boxes": boxes}, boxes * COST_SECONDS["draw"]


def _box_features(pool: BoxPool, learner, model: Path, state: LabelState) -> tuple[np.ndarray, np.ndarray]:
    """Features of the pooled boxes and of every labeled box (background answers included)."""
    pooled, labeled = [], []
    for u in range(len(state.ground_truth)):
        mine = np.flatnonzero(pool.unit == u)
        known = _labeled_geometry(state, u)
        if not len(mine) and not len(known):
            continue
        f = learner.box_features(model, u, np.concatenate([pool.boxes[mine], known]))
        pooled.append((mine, f[: len(mine)]))
        labeled.append(f[len(mine) :])
    features = np.zeros((len(pool), labeled[0].shape[1]), np.float32)
    for mine, f in pooled:
        features[mine] = f
    return features, np.concatenate(labeled)


def _labeled_geometry(state: LabelState, unit: int) -> np.ndarray:
    if unit in state.full:
        gt = state.ground_truth[unit]
        return gt.boxes[~gt.ignore & np.isfinite(gt.boxes).all(1)]
    done = state.answers.get(unit)
    return done.boxes if done is not None else np.zeros((0, 4), np.float32)
