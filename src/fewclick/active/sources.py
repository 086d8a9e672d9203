"""The sources of proposals on open that the finished images teach (issue 68), each with the
same two steps: ``fit(history)`` on the finished images (oldest first, each its candidates
and the person's objects) and ``propose(found)``, the scored boxes it would show on a new
image from that image's candidates. :mod:`fewclick.active.prequential` scores them.

- :class:`LookAlikes`: today's nearest-neighbour matcher: each finished object's best
  candidate (IoU >= :data:`EXEMPLAR_IOU`) is an exemplar of its class, and a candidate
  scores by its likeness to the nearest (:func:`fewclick.predict.lookalike.look_alikes`).
- :class:`LookAlikes` with ``edges``: the same, each box moved by its class's edge offsets
  as the page's E key moves them (:class:`~fewclick.predict.own_box.EdgeOffsets`).
- :class:`Learned`: the fast learner (:mod:`fewclick.predict.learner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.predict.learner import FastLearner, LearnerConfig
from fewclick.predict.lookalike import look_alikes
from fewclick.predict.own_box import EdgeOffsets
from fewclick.predict.proposals import Proposals
from fewclick.types import Detections, Objects

EXEMPLAR_IOU = 0.7
History = Sequence[tuple[Proposals, Objects]]


def _kept(gt: Objects) -> Objects:
    keep = ~np.asarray(gt.ignore, bool) & np.isfinite(gt.boxes).all(1)
    return gt[keep]


@dataclass
class LookAlikes:
    """Today's matcher (module docstring); ``edges``: boxes moved by the E key's offsets."""

    edges: bool = False
    exemplars: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    offsets: EdgeOffsets = field(default_factory=lambda: EdgeOffsets({}))

    @property
    def name(self) -> str:
        return "look-alikes + E" if self.edges else "look-alikes"

    def fit(self, history: History) -> LookAlikes:
        vectors: dict[int, list] = {}
        areas: dict[int, list] = {}
        labels, theirs, sam = [], [], []
        for found, gt in history:
            gt = _kept(gt)
            if not len(found) or not len(gt):
                continue
            overlap = box_iou(gt.boxes, found.boxes)
            best = overlap.argmax(1)
            labels.append(gt.labels)
            theirs.append(gt.boxes)
            sam.append(found.boxes[best])
            good = overlap.max(1) >= EXEMPLAR_IOU
            for c in np.unique(gt.labels[good]).astype(int):
                picked = best[good & (gt.labels == c)]
                vectors.setdefault(c, []).append(found.vectors[picked])
                areas.setdefault(c, []).append(found.areas()[picked])
        self.exemplars = {c: (np.concatenate(vectors[c]), np.concatenate(areas[c])) for c in vectors}
        if self.edges and labels:
            self.offsets = EdgeOffsets.fit(
                np.concatenate(labels), np.concatenate(theirs), np.concatenate(sam)
            )
        return self

    def propose(self, found: Proposals) -> Detections:
        if not self.exemplars or not len(found):
            return Detections.empty()
        positives = {c: v for c, (v, _) in self.exemplars.items()}
        areas = {c: a for c, (_, a) in self.exemplars.items()}
        alike = look_alikes(found, positives, thresholds=dict.fromkeys(positives, -np.inf), areas=areas)
        if self.edges and self.offsets:
            alike = Detections(self.offsets.apply(alike.boxes, alike.labels), alike.scores, alike.labels)
        return alike


@dataclass
class Learned:
    """The fast learner as a source; ``label`` names the variant (e.g. its features)."""

    config: LearnerConfig = field(default_factory=LearnerConfig)
    label: str = "learner"
    learner: FastLearner | None = None

    @property
    def name(self) -> str:
        return self.label

    def fit(self, history: History) -> Learned:
        self.learner = FastLearner(self.config).fit(history)
        return self

    def propose(self, found: Proposals) -> Detections:
        return Detections.empty() if self.learner is None else self.learner.predict(found)

    @property
    def fit_s(self) -> float:
        return 0.0 if self.learner is None else self.learner.fit_s
