"""The check that partial labels teach what full labels teach.

Ask the oracle about every predicted box of some images, a box at a time, through the
box-level path (:class:`~fewclick.active.labels.LabelState`: partial labels, noisy labels
at lambda_d, background answers), then draw every object no answer named: the images are
then as labeled as the image-level path labels them. Their training data must equal the
image-level path's, object for object and dense target for dense target
(:func:`~fewclick.train.detect_data.build_targets`), and the two detectors, trained from
the same model with the same seed and steps, must score alike.

Before the images are complete they cannot be equal, by design: a partly labeled image's
cells of no box are nobody's word (weight 0), its unanswered predictions are noisy labels
at lambda_d, and its missed objects are missing. :func:`consistency` reports that too
(``equal_targets_before_drawing``), so the check is seen to tell the two apart.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fewclick.active.labels import LabelState
from fewclick.active.learners import Fit, test_map
from fewclick.active.loop import decode_config
from fewclick.active.pool import one_box_per_object
from fewclick.simulate.oracle import oracle
from fewclick.train.detect_data import build_targets
from fewclick.types import Detections, Objects

#: the share of the units that are not labeled at the start that the check asks about
CHECKED_FRACTION = 0.1


def ask_pooled(state: LabelState, unit: int, predictions: Detections, threshold: float) -> dict:
    """Ask about every box of ``unit``'s ``predictions`` that would join the pool (one per
    object, scoring >= ``threshold``), one box at a time; returns the answer counts."""
    pooled = one_box_per_object(predictions, threshold)
    background = 0
    for i in range(len(pooled)):
        answer = oracle(pooled.boxes[i : i + 1], pooled.labels[i : i + 1], state.ground_truth[unit])
        state.answer(unit, answer)
        background += int(answer.background.sum())
    return {"asked": len(pooled), "background": background}


def ask_everything(state: LabelState, unit: int, predictions: Detections, threshold: float) -> dict:
    """:func:`ask_pooled`, then draw the missed objects; returns the answer counts."""
    return {**ask_pooled(state, unit, predictions, threshold), "drawn": state.draw_missed(unit)}


def training_data(state: LabelState, predictions: dict[int, Detections], config) -> dict[int, Objects]:
    """What every labeled unit of ``state`` trains on, as an episode of
    :func:`fewclick.active.loop.run_method` builds it."""
    return {
        u: state.training_objects(
            u, predictions.get(u), config.score_threshold, config.noisy_weight, config.background_weight
        )
        for u in state.labeled_units
    }


def same_targets(
    a: dict[int, Objects], b: dict[int, Objects], shapes: dict[int, tuple], classes: int
) -> bool:
    """Whether two training sets hold the same units, the same objects in the same order
    (classes, boxes, ignore flags, loss weights) and the same dense targets."""
    if sorted(a) != sorted(b):
        return False
    return all(_same_objects(a[u], b[u]) and _same_dense(a[u], b[u], shapes[u], classes) for u in a)


def consistency(learner, initial: tuple[np.ndarray, Path], config, seed: int, work: Path) -> dict:
    """The check on a random :data:`CHECKED_FRACTION` of the units not labeled at the
    start, asked about with the initial model's predictions: ``{"box_all": mAP, "image":
    mAP, "equal_targets": bool, ...}`` (``equal_targets_lambda0``: the same with lambda_d
    = 0; ``equal_targets_before_drawing``: before the missed objects are drawn)."""
    chosen, model = initial
    truth = learner.ground_truth
    rng = np.random.default_rng(seed + 7919)
    open_units = np.setdiff1d(np.arange(len(truth)), chosen)
    checked = np.sort(rng.permutation(open_units)[: max(int(round(CHECKED_FRACTION * len(truth))), 1)])
    predictions = learner.predict(model, checked.tolist(), decode_config(config))
    box, image, before = LabelState(truth), LabelState(truth), LabelState(truth)
    for state in (box, image, before):
        for u in chosen:
            state.label_unit(int(u))
    counts = {"asked": 0, "background": 0, "drawn": 0}
    for u in checked.tolist():
        image.label_unit(u)
        for key, n in ask_everything(box, u, predictions[u], config.score_threshold).items():
            counts[key] += n
        ask_pooled(before, u, predictions[u], config.score_threshold)
    shapes = {u: learner.shape(u) for u in box.labeled_units}
    classes = len(learner.classes)
    box_data, image_data = training_data(box, predictions, config), training_data(image, predictions, config)
    lambda0 = replace(config, noisy_weight=0.0)
    fit = Fit(config.episode_steps, seed * 1000 + 1, model, config.episode_lr)
    return {
        "box_all": test_map(
            learner, learner.train(box_data, work / "consistency_box_all", fit), decode_config(config)
        ),
        "image": test_map(
            learner, learner.train(image_data, work / "consistency_image", fit), decode_config(config)
        ),
        "equal_targets": same_targets(box_data, image_data, shapes, classes),
        "equal_targets_lambda0": same_targets(
            training_data(box, predictions, lambda0),
            training_data(image, predictions, lambda0),
            shapes,
            classes,
        ),
        "equal_targets_before_drawing": same_targets(
            training_data(before, predictions, config), image_data, shapes, classes
        ),
        "units": len(checked),
        "boxes": int(sum((~truth[u].ignore).sum() for u in checked)),
        "answers": counts,
        "steps": config.episode_steps,
    }


def _same_objects(a: Objects, b: Objects) -> bool:
    if len(a) != len(b):
        return False
    same = np.array_equal(a.labels, b.labels) and np.array_equal(a.ignore, b.ignore)
    same = same and np.allclose(a.boxes, b.boxes, equal_nan=True)
    return same and all(_extra(a, k) == _extra(b, k) for k in set(a.extra) | set(b.extra))


def _extra(objects: Objects, key: str):
    value = objects.extra.get(key)
    return None if value is None else np.asarray(value).tolist()


def _same_dense(a: Objects, b: Objects, shape: tuple, classes: int) -> bool:
    ta, tb = build_targets(a, shape, classes), build_targets(b, shape, classes)
    return all(np.array_equal(getattr(ta, f), getattr(tb, f)) for f in ta.__dataclass_fields__)
