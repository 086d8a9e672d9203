"""Active-learning episodes against the simulated oracle: one method, one seed.

``run_method(method, units, test, classes, initial, config, seed, work)`` starts from the
initial model (trained on ``initial``, the fully labeled units), then each episode
predicts the pool with the current model, asks the oracle about K boxes (or about whole
images, for the image-level baselines), fine-tunes the model from the last episode's on
the labeled units with their noisy labels, and scores it on ``test``. Units are
:class:`fewclick.train.detect_pretrained.FeatureTile` (the encoder's maps in memory and
the ground truth in encoder input pixels).

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fewclick.active.labels import LabelState
from fewclick.active.measures import pick_boxes, pick_images
from fewclick.active.pool import BoxPool, box_features, image_feature, one_box_per_object
from fewclick.metrics.detection import evaluate_detections
from fewclick.models.backbone import PRETRAINED_MAPS
from fewclick.models.detector import DetectorConfig, load_detector
from fewclick.predict.detect import DecodeConfig, detect_feature_maps
from fewclick.simulate.oracle import oracle
from fewclick.train.detect_pretrained import FeatureTile, PretrainedTrainConfig, train_pretrained_detector
from fewclick.types import Detections

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
    # boxes asked per episode, as a fraction of the training part's ground-truth boxes; the
    # image-level baselines label images until they reach as many boxes. Four episodes of
    # 10% end at half the boxes (with the initial 10%).
    episode_fraction: float = 0.1
    # t_d: a prediction joins the pool (and is a noisy label) from here; low, for recall (the
    # paper), where 0.3 left the second episode of bccd 30 boxes to ask about
    score_threshold: float = 0.2
    noisy_weight: float = 0.5  # lambda_d
    initial_steps: int = 300  # the initial model (from scratch): the app's minute
    episode_steps: int = 80  # each episode fine-tunes the last model this many steps
    # each episode predicts the pool on a random subset of at most this many unlabeled units
    # (and on every partly labeled one, for its noisy labels), as active learning on large
    # pools does (Yoo and Kweon, CVPR 2019: a random 10,000 of the unlabeled images)
    candidates: int = 100
    episode_lr: float = 1e-3
    max_detections: int = 100  # per unit


@dataclass
class Curve:
    """One run: after the initial model and after every episode, the ``boxes`` labeled so
    far, the test ``mAP`` and the ``seconds`` of labeling under the cost model; plus the
    answers per episode and the wall-clock seconds each episode took."""

    boxes: list[int] = field(default_factory=list)
    mAP: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    episode_seconds: list[float] = field(default_factory=list)


def initial_units(count: int, fraction: float, seed: int) -> np.ndarray:
    """``int64[m]``: the units fully labeled at the start, at random (at least one)."""
    rng = np.random.default_rng(seed)
    m = max(int(round(count * fraction)), 1)
    return np.sort(rng.permutation(count)[:m]).astype(np.int64)


def train_initial(
    units: list[FeatureTile],
    chosen: np.ndarray,
    classes: list[str],
    out: Path,
    config: ActiveConfig,
    seed: int,
    log: Callable[[str], None] = print,
) -> Path:
    """The initial model M on the fully labeled ``chosen`` units."""
    tiles = [units[i] for i in chosen]
    return train_pretrained_detector(
        tiles,
        classes,
        out,
        plain_config(len(classes)),
        PretrainedTrainConfig(steps=config.initial_steps, seed=seed),
        log=log,
    )


def plain_config(num_classes: int) -> DetectorConfig:
    """The detector active learning trains: no clicks, on the pretrained maps."""
    return DetectorConfig(num_classes=num_classes, method="plain", backbone="pretrained", uel=False)


def predict_units(
    model: Path, units: list[FeatureTile], which: list[int], config: ActiveConfig
) -> dict[int, Detections]:
    """The detections of ``model`` on the ``which`` units (encoder input pixels)."""
    net, _ = load_detector(model)
    net = net.to(memory_format=torch.channels_last)
    decode = DecodeConfig(score_threshold=0.01, max_detections=config.max_detections, size_factor=None)
    out = {}
    for u in which:
        (det,) = detect_feature_maps(net, valid_maps(units[u]), [units[u].valid], decode)
        out[u] = det
    return out


def valid_maps(unit: FeatureTile) -> list[torch.Tensor]:
    """A unit's maps (``[1, C, h, w]`` float32, channels last) cut to the input it fills,
    rounded up to the coarsest stride: the padding costs the head as much as the image."""
    vh, vw = (-(-side // 16) * 16 for side in unit.valid)
    out = []
    for (stride, _), m in zip(PRETRAINED_MAPS, unit.maps):
        part = torch.from_numpy(np.ascontiguousarray(m[:, : vh // stride, : vw // stride])).float()[None]
        out.append(part.contiguous(memory_format=torch.channels_last))
    return out


def test_map(model: Path, test: list[FeatureTile], num_classes: int, config: ActiveConfig) -> float:
    """VOC07 mAP@0.5 of ``model`` on the ``test`` units."""
    preds = predict_units(model, test, list(range(len(test))), config)
    result = evaluate_detections([t.objects for t in test], [preds[i] for i in range(len(test))], num_classes)
    return float(np.nan_to_num(result.map))


def run_method(
    method: str,
    units: list[FeatureTile],
    test: list[FeatureTile],
    classes: list[str],
    initial: tuple[np.ndarray, Path],
    config: ActiveConfig,
    seed: int,
    work: Path,
    log: Callable[[str], None] = print,
) -> Curve:
    """Episodes of ``method`` (one of :data:`METHODS`) from the initial model."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    level, measure = method.split("_", 1)
    chosen, model = initial
    rng = np.random.default_rng(seed)
    state = LabelState([u.objects for u in units])
    for u in chosen:
        state.label_unit(int(u))
    total = sum(int((~u.objects.ignore).sum()) for u in units)
    per_episode = max(int(round(config.episode_fraction * total)), 1)
    curve = Curve()
    seconds = state.boxes_labeled * COST_SECONDS["draw"]
    curve.boxes.append(state.boxes_labeled)
    curve.seconds.append(seconds)
    curve.mAP.append(test_map(model, test, len(classes), config))
    features = _image_features(units) if method == "image_coreset" else None
    for episode in range(1, config.episodes + 1):
        started = time.perf_counter()
        # the image-level baselines label in full: only uncertainty needs the predictions
        open_units = [i for i in range(len(units)) if i not in state.full]
        candidates = sorted(
            set(rng.permutation(open_units)[: config.candidates].tolist()) | set(state.partial_units)
        )
        needed = level == "box" or measure == "uncertainty"
        preds = predict_units(model, units, candidates, config) if needed else {}
        preds = {u: one_box_per_object(det, config.score_threshold) for u, det in preds.items()}
        pool = BoxPool.from_detections(
            {u: det[state.unanswered(u, det)] for u, det in preds.items()}, config.score_threshold
        )
        if level == "box":
            if not len(pool):
                log(f"{method} episode {episode}: no box scores >= t_d = {config.score_threshold}; stopping")
                break
            answers, cost = _ask_boxes(measure, pool, per_episode, rng, units, state)
        else:
            answers, cost = _ask_images(measure, pool, per_episode, rng, state, features)
        seconds += cost
        tiles = [
            replace(
                units[u],
                objects=state.training_objects(u, preds.get(u), config.score_threshold, config.noisy_weight),
            )
            for u in state.labeled_units
        ]
        model = train_pretrained_detector(
            tiles,
            classes,
            work / f"{method}_seed{seed}" / f"episode{episode}",
            plain_config(len(classes)),
            PretrainedTrainConfig(
                steps=config.episode_steps,
                lr=config.episode_lr,
                warmup_steps=10,
                seed=seed * 1000 + episode,
                init=str(model),
            ),
            log=lambda _: None,
        )
        curve.boxes.append(state.boxes_labeled)
        curve.seconds.append(round(seconds, 1))
        curve.mAP.append(test_map(model, test, len(classes), config))
        curve.answers.append(answers)
        curve.episode_seconds.append(round(time.perf_counter() - started, 1))
        log(
            f"{method} seed {seed} episode {episode}: {state.boxes_labeled} boxes, "
            f"mAP {curve.mAP[-1]:.3f}, {answers}, {curve.episode_seconds[-1]:.0f} s"
        )
    return curve


def _ask_boxes(measure, pool, k, rng, units, state) -> tuple[dict, float]:
    """Ask the oracle about ``k`` pooled boxes; returns the answer counts and their cost."""
    features = labeled = None
    if measure == "coreset":
        features, labeled = _box_features(pool, units, state)
    picked = pool[pick_boxes(measure, pool, k, rng, features, labeled)]
    counts = {"accepted": 0, "fixed": 0, "background": 0}
    for u in np.unique(picked.unit):
        asked = picked.on(int(u))
        answer = oracle(asked.boxes, asked.labels, units[int(u)].objects)
        state.answer(int(u), answer)
        good = ~answer.background & (answer.labels == asked.labels) & (answer.iou >= ACCEPT_IOU)
        counts["accepted"] += int(good.sum())
        counts["fixed"] += int((~answer.background & ~good).sum())
        counts["background"] += int(answer.background.sum())
    cost = (
        counts["accepted"] * COST_SECONDS["verify"]
        + counts["fixed"] * COST_SECONDS["fix"]
        + counts["background"] * COST_SECONDS["background"]
    )
    return counts, cost


def _ask_images(measure, pool, k, rng, state, features) -> tuple[dict, float]:
    """Label whole images, in the measure's order, until ``k`` boxes are labeled."""
    candidates = np.array([u for u in range(len(state.ground_truth)) if u not in state.full], np.int64)
    if not len(candidates):
        return {"images": 0, "boxes": 0}, 0.0
    cand_features = labeled = None
    if measure == "coreset":
        cand_features = features[candidates]
        labeled = features[sorted(state.full)]
    order = pick_images(measure, candidates, len(candidates), rng, pool, cand_features, labeled)
    images = boxes = 0
    for u in order:
        if boxes >= k:
            break
        boxes += state.label_unit(int(u))
        images += 1
    return {"images": images, "boxes": boxes}, boxes * COST_SECONDS["draw"]


def _box_features(
    pool: BoxPool, units: list[FeatureTile], state: LabelState
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the pooled boxes and of every labeled box (background answers included)."""
    pooled, labeled = [], []
    for u in range(len(units)):
        mine = np.flatnonzero(pool.unit == u)
        known = _labeled_geometry(state, u)
        if not len(mine) and not len(known):
            continue
        maps = [torch.from_numpy(m[None]) for m in units[u].maps]
        f = box_features(maps, np.concatenate([pool.boxes[mine], known]))
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


def _image_features(units: list[FeatureTile]) -> np.ndarray:
    return np.stack([image_feature([torch.from_numpy(m[None]) for m in u.maps], u.valid) for u in units])
