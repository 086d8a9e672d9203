"""What is labeled so far: fully labeled images, answered boxes, and the training set
they make with the unqueried predictions as noisy labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.simulate.oracle import OracleAnswer
from fewclick.train.detect_data import BACKGROUND_WEIGHT, LOSS_WEIGHT, NEGATIVE
from fewclick.types import Detections, Objects

#: a prediction overlapping an answered box at this IoU is that box (not pooled again, no noisy label)
SAME_BOX_IOU = 0.5
#: lambda_d, the loss weight of a noisy label (the paper's default)
NOISY_WEIGHT = 0.5
#: the loss weight of a partly labeled image's cells of no box (the paper's loss has no anchor there)
UNLABELED_WEIGHT = 0.0


@dataclass
class UnitLabels:
    """One unit's answers: ``boxes float32[A, 4]``, ``labels int64[A]`` (-1: background),
    ``gt_index int64[A]`` (the matched ground truth, -1 for background or a person's own
    box) and ``ignore bool[A]`` (an ignore-type object: crowd, DontCare)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gt_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ignore: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


class LabelState:
    """The labeled image pool L_I and the labeled box pool L_B of one active-learning run.

    ``label_unit(u)`` marks a unit fully labeled (the initial images, the image-level
    baselines); ``answer(u, answers)`` records answered boxes; ``draw_missed(u)`` draws
    every object no answer named and marks the unit *complete*. ``boxes_labeled`` counts
    the ground-truth boxes obtained, the paper's measure of effort ("the number of ground
    truth bounding boxes obtained"): a fully labeled unit's boxes (ignore-type ones
    excluded), every object an answer named for the first time, and every drawn box.
    ``questions`` counts every box asked, background answers included (they obtain no box;
    their seconds are in the cost model).

    A complete unit trains as a fully labeled one: every object of it is a labeled box,
    so its cells of no box are known background (weight 1), no prediction is left to be a
    noisy label, and its background answers add nothing to that (they are dropped, so that
    its training data equal the image-level path's object for object).
    """

    def __init__(self, ground_truth: list[Objects]) -> None:
        self.ground_truth = ground_truth
        self.full: set[int] = set()
        self.complete: set[int] = set()
        self.answers: dict[int, UnitLabels] = {}
        self.boxes_labeled = 0
        self.questions = 0

    def label_unit(self, unit: int) -> int:
        """Label every box of ``unit``; returns how many boxes that counted."""
        if unit in self.full:
            return 0
        gt = self.ground_truth[unit]
        counted = int((~gt.ignore).sum())
        self.full.add(unit)
        self.boxes_labeled += counted
        return counted

    def answer(self, unit: int, answer: OracleAnswer) -> int:
        """Record answers to boxes asked on ``unit``; returns how many ground-truth boxes
        they obtained (objects no earlier answer named; background and ignore-type answers
        obtain none)."""
        named = self.answers.get(unit, UnitLabels()).gt_index
        found = answer.gt_index[~answer.background & ~answer.ignore & (answer.gt_index >= 0)]
        obtained = len(np.setdiff1d(found, named))
        self._record(unit, answer)
        self.questions += len(answer)
        self.boxes_labeled += obtained
        return obtained

    def _record(self, unit: int, answer: OracleAnswer) -> None:
        old = self.answers.get(unit, UnitLabels())
        self.answers[unit] = UnitLabels(
            np.concatenate([old.boxes, answer.boxes]).astype(np.float32),
            np.concatenate([old.labels, answer.labels]).astype(np.int64),
            np.concatenate([old.gt_index, answer.gt_index]).astype(np.int64),
            np.concatenate([old.ignore, answer.ignore]).astype(bool),
        )

    def draw_missed(self, unit: int) -> int:
        """The person draws every object of ``unit`` that no answer named (ignore-type ones
        too, not counted: a crowd region is marked, not drawn box by box) and says the unit
        is complete; returns how many boxes that drew."""
        gt = self.ground_truth[unit]
        named = self.answers.get(unit, UnitLabels()).gt_index
        missed = np.setdiff1d(np.arange(len(gt)), named)
        drawn = OracleAnswer(
            missed.astype(np.int64),
            gt.boxes[missed].astype(np.float32),
            gt.labels[missed].astype(np.int64),
            np.ones(len(missed), np.float32),
            gt.ignore[missed],
        )
        self._record(unit, drawn)
        self.complete.add(unit)
        counted = int((~drawn.ignore).sum())
        self.boxes_labeled += counted
        return counted

    @property
    def labeled_units(self) -> list[int]:
        """L_I: every unit fully labeled or with an answered box, in order."""
        return sorted(self.full | set(self.answers))

    @property
    def partial_units(self) -> list[int]:
        """Units with answered boxes that are neither fully labeled nor complete."""
        return sorted(set(self.answers) - self.full - self.complete)

    def unanswered(self, unit: int, det: Detections) -> np.ndarray:
        """``bool[len(det)]``: predictions on ``unit`` that are not an answered box (IoU <
        :data:`SAME_BOX_IOU` with every answer, background ones included)."""
        done = self.answers.get(unit)
        if unit in self.full or unit in self.complete:
            return np.zeros(len(det), bool)
        if done is None or not len(done.boxes) or not len(det):
            return np.ones(len(det), bool)
        return box_iou(det.boxes, done.boxes).max(1) < SAME_BOX_IOU

    def labeled_boxes(self, unit: int) -> Objects:
        """The unit's labeled objects (loss weight 1): its ground truth when fully labeled,
        else its answered boxes that are objects (an object answered twice counts once;
        ignore-type objects stay ignore regions), in the ground truth's order when complete."""
        if unit in self.full:
            return self.ground_truth[unit]
        done = self.answers.get(unit, UnitLabels())
        keep = done.labels >= 0
        _, first = np.unique(
            np.where(done.gt_index >= 0, done.gt_index, -1 - np.arange(len(done.gt_index))), return_index=True
        )
        once = np.zeros(len(done.labels), bool)
        once[first] = True
        keep &= once
        order = np.flatnonzero(keep)
        if unit in self.complete:
            order = order[np.argsort(done.gt_index[order], kind="stable")]
        return Objects(done.labels[order], done.boxes[order], ignore=done.ignore[order])

    def training_objects(
        self,
        unit: int,
        predictions: Detections | None,
        threshold: float,
        noisy_weight: float = NOISY_WEIGHT,
        background_weight: float = UNLABELED_WEIGHT,
    ) -> Objects:
        """What ``unit`` trains on: its ground truth when fully labeled (every cell at
        weight 1), else :func:`partly_labeled_objects` of its answers and its unanswered
        predictions scoring >= ``threshold``; a complete unit's labeled boxes alone."""
        labeled = self.labeled_boxes(unit)
        if unit in self.full or unit in self.complete:
            return labeled
        done = self.answers.get(unit, UnitLabels())
        noisy = Objects.empty()
        if predictions is not None and len(predictions):
            kept = predictions[(predictions.scores >= threshold) & self.unanswered(unit, predictions)]
            noisy = Objects(kept.labels, kept.boxes)
        return partly_labeled_objects(
            labeled, done.boxes[done.labels < 0], noisy, noisy_weight, background_weight
        )


def partly_labeled_objects(
    labeled: Objects,
    background: np.ndarray,
    noisy: Objects,
    noisy_weight: float = NOISY_WEIGHT,
    background_weight: float = UNLABELED_WEIGHT,
) -> Objects:
    """A partly labeled image's training objects. The paper's loss averages over the anchors
    assigned to a labeled or a noisy box only; here (:mod:`fewclick.train.detect_data`): the
    ``labeled`` objects at weight 1, the boxes answered ``background`` (``float[B, 4]``) as
    labeled negatives at weight 1 (ignore-type objects flagged :data:`NEGATIVE`), the
    ``noisy`` labels (unanswered predictions) at ``noisy_weight`` (lambda_d), and the cells
    of no box, background nobody labeled, at ``background_weight``."""
    background = np.asarray(background, np.float32).reshape(-1, 4)
    b = len(background)
    parts = [labeled, Objects(np.zeros(b, np.int64), background, ignore=np.ones(b, bool)), noisy]
    objects = Objects(
        np.concatenate([p.labels for p in parts]).astype(np.int64),
        np.concatenate([p.boxes for p in parts]).astype(np.float32),
        ignore=np.concatenate([p.ignore for p in parts]),
        difficult=np.concatenate([p.difficult for p in parts]),
    )
    objects.extra[LOSS_WEIGHT] = np.concatenate(
        [np.ones(len(labeled) + b, np.float32), np.full(len(noisy), noisy_weight, np.float32)]
    )
    objects.extra[NEGATIVE] = np.concatenate(
        [np.zeros(len(labeled)), np.ones(b), np.zeros(len(noisy))]
    ).astype(bool)
    objects.extra[BACKGROUND_WEIGHT] = float(background_weight)
    return objects
