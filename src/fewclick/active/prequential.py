"""Test, then train (issue 68): every finished image scores each source of proposals that
never saw it, before anything trains on it, and a source serves a class once it has saved the
person more than the serving one on the images it never saw, paired image by image.

**The score** (:func:`savings`) is the work a source's proposals on open would have saved on
the image, by the campaign's cost rule (:mod:`fewclick.simulate.annotator`): drawing the
class's objects by hand, against finishing from the proposals the source shows (those
scoring at least its threshold for the class), where a proposal matches an object at IoU >=
0.7, a near miss is drawn over, a wrong one is rejected, and every one shown is looked at
(``verify``). Seconds and interactions both; a source that shows nothing saves 0.

**The threshold** a source is scored at for a class is read off the images before
(:func:`best_threshold`): the score above which its proposals would have saved the most on
them, together. On its first image a source shows nothing.

**The test** (:func:`beats`): the paired differences of the challenger's savings less the
serving source's, on the images both were scored on (the latest :data:`WINDOW`), must have
a mean above ``margin`` seconds an image by more than ``z`` standard errors, with at least
:data:`MIN_PAIRS` pairs. The margin is the least gain worth a change: sources that save
nearly the same take turns on noise alone, and a turn among them gains the person nothing.
``z`` and ``margin`` are chosen by how often they promote a worse source
(``benchmarks/prequential.py``: a promotion is false when the source promoted saves less
than the one it replaced on the next block of images).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fewclick.simulate.annotator import COST_SECONDS, finish, finish_cost, required
from fewclick.types import Detections, Objects

NONE = "none"  # the source that shows nothing: what serves a class before any other has won
NONE_SHOWN = float("inf")  # a threshold no proposal reaches
MIN_PAIRS = 2  # images scored on both sources before one can win over the other
CUTS = 32  # scores a threshold is looked for among (best_threshold)
WINDOW = 16  # the latest images a test reads: a source that learns is judged as it is now
Z = 1.5  # the test's level (module docstring); measured in docs/benchmarks/prequential.md
MARGIN = 0.5  # seconds an image a challenger must save beyond the serving source (ditto)


@dataclass(frozen=True)
class Saved:
    """What a source's proposals saved on one image's class: ``seconds`` and
    ``interactions`` (negative: they cost more than drawing), with ``shown`` proposals."""

    seconds: float
    interactions: int
    shown: int


def class_objects(gt: Objects, label: int) -> Objects:
    """``gt``'s objects of class ``label``."""
    return gt[np.asarray(gt.labels) == label]


def savings(gt: Objects, shown: Detections, label: int) -> Saved:
    """What ``shown`` (the proposals of class ``label`` on the page at open) saves on the
    class's objects of ``gt`` against drawing each by hand (module docstring)."""
    mine = class_objects(gt, label)
    boxes = np.asarray(shown.boxes, np.float32).reshape(-1, 4)[np.asarray(shown.labels) == label]
    labels = np.full(len(boxes), label, np.int64)
    hand_actions, hand_seconds = finish_cost(finish(mine, np.zeros((0, 4), np.float32), labels[:0], label), 0)
    actions, seconds = finish_cost(finish(mine, boxes, labels, label), len(boxes))
    seconds += len(boxes) * COST_SECONDS["verify"]  # each shown is looked at
    return Saved(round(hand_seconds - seconds, 3), hand_actions - actions, len(boxes))


def at_threshold(found: Detections, label: int, threshold: float) -> Detections:
    """``found``'s proposals of class ``label`` scoring at least ``threshold``."""
    keep = (np.asarray(found.labels) == label) & (np.asarray(found.scores) >= threshold)
    return found[keep]


def best_threshold(history: Sequence[tuple[Objects, Detections]], label: int, cuts: int = CUTS) -> float:
    """The score from which a source's proposals of class ``label`` saved the most seconds
    over the images of ``history`` (their objects, the source's scored proposals on them),
    together; :data:`NONE_SHOWN` when none saves anything (or there is no history). Of
    equal savings the higher score wins: fewer boxes to look over. At most ``cuts`` scores
    are tried, evenly spaced in rank among the proposals' scores."""
    scores = np.unique(
        np.concatenate([np.asarray(f.scores)[np.asarray(f.labels) == label] for _, f in history] or [[]])
    )[::-1]
    if len(scores) > cuts:
        scores = scores[np.linspace(0, len(scores) - 1, cuts).round().astype(int)]
    best, best_saved = NONE_SHOWN, 0.0
    for cut in scores:
        saved = sum(savings(gt, at_threshold(found, label, cut), label).seconds for gt, found in history)
        if saved > best_saved + 1e-6:
            best, best_saved = cut, saved
    return best


def beats(
    mine: Sequence[float],
    theirs: Sequence[float],
    z: float = Z,
    pairs: int = MIN_PAIRS,
    margin: float = MARGIN,
) -> bool:
    """Whether savings ``mine`` beat ``theirs`` (paired, one per image, oldest first) beyond
    the noise: over the latest :data:`WINDOW` pairs, at least ``pairs``, the mean
    difference is above ``margin`` by more than ``z`` standard errors."""
    d = (np.asarray(mine, float) - np.asarray(theirs, float))[-WINDOW:]
    if len(d) < max(pairs, 2) or d.mean() <= margin:
        return False
    spread = d.std(ddof=1) / np.sqrt(len(d))
    return bool(d.mean() - margin > z * spread)


@dataclass
class Record:
    """The prequential record of a project's sources, per class: for every image finished,
    what each source scored there (seconds saved), the source serving each class, and why.
    ``sources`` is fixed at start; a source not scored on an image (not yet able to propose,
    or trained on it) has no entry for it."""

    sources: tuple[str, ...]
    z: float = Z
    pairs: int = MIN_PAIRS
    margin: float = MARGIN
    # class -> source -> image -> seconds saved
    scored: dict[int, dict[str, dict[int, float]]] = field(default_factory=dict)
    serving: dict[int, str] = field(default_factory=dict)  # class -> source
    why: dict[int, str] = field(default_factory=dict)
    promotions: list[dict] = field(default_factory=list)  # {"image", "class", "from", "to"}

    def serves(self, label: int) -> str:
        return self.serving.get(label, NONE)

    def add(self, image: int, label: int, saved: Mapping[str, float]) -> str | None:
        """Record image ``image``'s savings (source -> seconds) on class ``label``, then let
        the best challenger beating the serving source take its place. The source promoted,
        or None."""
        per_source = self.scored.setdefault(label, {})
        for source, seconds in saved.items():
            per_source.setdefault(source, {})[image] = float(seconds)
        return self._promote(image, label)

    def paired(self, label: int, a: str, b: str) -> tuple[list[float], list[float]]:
        """Sources ``a`` and ``b``'s savings on the images of class ``label`` both were
        scored on, oldest first (the source ``none`` saves 0 on every image scored)."""
        per_source = self.scored.get(label, {})
        images = sorted(set().union(*(s.keys() for s in per_source.values())) if per_source else ())

        def of(name: str) -> dict[int, float]:
            return dict.fromkeys(images, 0.0) if name == NONE else per_source.get(name, {})

        mine, theirs = of(a), of(b)
        both = [i for i in images if i in mine and i in theirs]
        return [mine[i] for i in both], [theirs[i] for i in both]

    def _standing(self, label: int, current: str) -> str:
        """Why ``current`` serves class ``label`` now: its savings on the latest images it was
        scored on, and how much more than the next best source on the same images."""
        mine = self.paired(label, current, NONE)[0][-WINDOW:]
        said = f"saved {np.mean(mine):.1f} s an image on the last {len(mine)} images it had not seen"
        others = []
        for source in (*self.sources, NONE):
            if source != current:
                a, b = self.paired(label, current, source)
                if a:
                    others.append((float(np.mean(np.subtract(a, b)[-WINDOW:])), source))
        if not others:
            return said
        gain, runner = min(others)
        return f"{said}, {gain:.1f} s more than {'showing nothing' if runner == NONE else runner}"

    def _promote(self, image: int, label: int) -> str | None:
        current = self.serves(label)
        best, best_mean = None, 0.0
        for source in (*self.sources, NONE):
            if source == current:
                continue
            mine, theirs = self.paired(label, source, current)
            if beats(mine, theirs, self.z, self.pairs, self.margin):
                gain = float(np.mean(np.subtract(mine, theirs)[-WINDOW:]))
                if best is None or gain > best_mean:
                    best, best_mean = source, gain
        if best is None:
            if current == NONE:
                self.why.setdefault(label, "nothing has saved work yet on the images it had not seen")
            else:  # the reason as it stands now, not as it stood at the promotion
                self.why[label] = self._standing(label, current)
            return None
        mine, theirs = self.paired(label, best, current)
        n = min(len(mine), WINDOW)
        self.serving[label] = best
        self.why[label] = (
            f"saved {np.mean(mine[-n:]):.1f} s an image on the last {n} images it had not seen, "
            f"{best_mean:.1f} s more than {'showing nothing' if current == NONE else current}"
        )
        self.promotions.append({"image": image, "class": label, "from": current, "to": best})
        return best


def objects_of(gt: Objects) -> Objects:
    """``gt``'s objects a person must draw (:func:`~fewclick.simulate.annotator.required`)."""
    return gt[required(gt)]
