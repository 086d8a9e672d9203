"""A detector that keeps learning while people work (issue 32, part 2; scored by test, then
train since issue 68): rounds of training, each warm-started from the round before, on every
finished image as it is at that moment.

A round trains ``round_steps`` steps (a short warm-up, then cosine decay: warm restarts)
starting from the newest round's weights, or from ``start`` (the serving model) before any
round. None of the finished images is held out: each trains. What tells a round's worth is
**test, then train** (:mod:`fewclick.active.prequential`): once a round is trained, each
image finished while it trained (it never saw them, and nothing has trained on them yet) is
opened with the round's detector, before any click, and scored by the seconds its boxes
would have saved the person there, per class, at the thresholds the images before chose;
beside it whatever else the caller can show on open (the look-alikes among SAM's
proposals). A :class:`~fewclick.active.prequential.Record` keeps every source's savings per
class, image by image; the trainer (its newest round each time) serves the classes where its
savings beat the serving source's beyond the noise, paired image by image. A round is
promoted when the trainer serves some class after its images are scored, or a source the
caller names ``versioned`` does (the app's fast learner: the version carries which source
serves each class), or a class a promoted round's version named changed source (a round
scored on no image, none finished while it trained, is not); its thresholds show each class the
trainer serves from the score that saved most, and hide the others on open
(:data:`~fewclick.metrics.thresholds.NONE_SHOWN`). An image scored once is scored again
(its new labels) only while nothing has trained on it.

Everything the trainer knows is in ``work/state.json`` and the rounds' folders, written
after each round: a trainer made again on the same folder (after a restart) goes on from
the newest finished round. Every round trains into a folder of its own name, never one a
round before had, so nothing any reader holds is ever written over; a round cut short or
failed (a full disk) removes its folder, and a round killed outright leaves it to
:meth:`ContinualTrainer.collect`. Nothing is deleted while anything names it: the trainer
keeps what serves, its warm start and its newest round, and the caller names the rest (the
app: every model version's file); :meth:`~ContinualTrainer.collect` removes the other
rounds' folders. A round warm-starts from the newest readable checkpoint it knows (a
truncated one is passed over). :func:`held_out` (one finished image in four, by id) is what
the app's SAM box-tightening still learns on.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from fewclick.active.prequential import (
    MARGIN,
    WINDOW,
    Record,
    Z,
    at_threshold,
    best_threshold,
    objects_of,
    savings,
)
from fewclick.io.dataset import Dataset
from fewclick.metrics.thresholds import NONE_SHOWN
from fewclick.types import Clicks, Detections, Objects

STATE = "state.json"
ROUND_PREFIX = "round"  # a round's folder: round<number>-<random>
TRAINER = "trainer"  # the trainer's name among the sources of proposals on open
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContinualConfig:
    round_steps: int = 200
    lr: float = 1e-3  # a third of the from-scratch rate: each round refines the last
    warmup_steps: int = 10
    #: the paired test's level and least gain (:func:`fewclick.active.prequential.beats`),
    #: chosen by its false promotions on the train parts (docs/benchmarks/prequential.md)
    z: float = Z
    margin: float = MARGIN
    pairs: int = 2  # images scored on both before the trainer can win over what serves
    seed: int = 0
    threads: int = 1  # the trainer's share: one core, the other stays free for clicks
    crop: int = 256
    batch_size: int = 8
    # the first round's input scale (later rounds keep their start's): "auto" enlarges small
    # objects (:func:`fewclick.train.detect.auto_input_scale`)
    input_scale: float | str = "auto"


@dataclass(frozen=True)
class Fresh:
    """A finished image no round has trained on: its id, pixels and the person's objects."""

    image_id: int
    image: np.ndarray
    objects: Objects


@dataclass
class Round:
    """What one round did: its number, the images it trained on (and their ids), its steps,
    the finished images scored after it (``scored``: ids of images it never saw), the
    seconds an image each source saved there (``saved``: source -> mean over those images,
    classes summed), the class positions the trainer serves after them, whether it was
    promoted, and per class the score from which its proposals on open saved most (None: a
    class never finished; :data:`~fewclick.metrics.thresholds.NONE_SHOWN` for a class the
    trainer does not serve). ``note`` says why it serves or not."""

    number: int
    train_images: int
    steps: int
    promoted: bool
    path: str
    trained: list[int] = field(default_factory=list)
    scored: list[int] = field(default_factory=list)
    saved: dict[str, float] = field(default_factory=dict)
    serves: list[int] = field(default_factory=list)
    thresholds: list[float | None] | None = None
    note: str | None = None


@dataclass
class TrainerState:
    rounds: list[Round] = field(default_factory=list)
    serving: str | None = None  # what serves on open (None: nothing the trainer made)
    serving_round: int | None = None  # None: a model from outside the trainer
    total_steps: int = 0
    start: str | None = None  # the weights the first round starts from (None: the config's)
    #: the prequential record (:class:`~fewclick.active.prequential.Record` as a dict)
    record: dict | None = None
    #: per source, its latest :data:`~fewclick.active.prequential.WINDOW` scored images:
    #: ``{"id", "objects": [[class, x0, y0, x1, y1], ...], "found": [[class, score, x0, ...]]}``
    history: dict[str, list[dict]] = field(default_factory=dict)
    #: per class (as a string), the source the last version registered names (None: none
    #: registered yet): a round changing it is registered, though the trainer serves nothing
    registered: dict[str, str] | None = None

    @classmethod
    def read(cls, work: Path) -> TrainerState:
        path = work / STATE
        if not path.is_file():
            return cls()
        try:
            raw = json.loads(path.read_text())
            # a round written before issue 68 has held-out scores, which nothing reads now
            known = {f.name for f in fields(Round)}
            rounds = [Round(**{k: v for k, v in r.items() if k in known}) for r in raw.pop("rounds")]
            return cls(rounds, **raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # torn or foreign: start again
            _logger.warning("%s is unreadable (%s): the trainer starts afresh", path, exc)
            return cls()

    def named(self) -> set[str]:
        """The checkpoints the trainer needs: what serves, where it started and its newest
        round (the next one's warm start)."""
        paths = {self.serving, self.start} | {r.path for r in self.rounds[-1:]}
        return {p for p in paths if p is not None and not p.startswith("training-free:")}

    def trained(self) -> set[int]:
        """The ids of the images some round trained on."""
        return {i for r in self.rounds for i in r.trained}

    def write(self, work: Path) -> None:
        tmp = work / (STATE + ".part")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(work / STATE)  # a crash leaves the old state or the new, never half


def held_out(image_id: int) -> bool:
    """Whether a finished image is held out for the app's SAM box-tightening to learn on:
    fixed by its id, one in four. The id is hashed (Fibonacci hashing: the top two bits of
    id x 2^32/phi), so that images taken with a stride (every 4th by name, say) are held out
    one in four as well, not all or none."""
    return (image_id * 2654435761) % 2**32 >> 30 == 3


#: what the caller shows on open beside the trainer: ``others(fresh)`` -> source name ->
#: one :class:`~fewclick.types.Detections` per fresh image (None: not scored there)
Others = Callable[[Sequence[Fresh]], Mapping[str, Sequence[Detections | None]]]


class ContinualTrainer:
    """Rounds of training in ``work`` (module docstring). ``detector_config``: the
    :class:`~fewclick.models.detector.DetectorConfig` every round trains; ``start``: a
    checkpoint of that configuration the first round begins from (None: the ImageNet
    weights or scratch, per the config), whose detector serves until the record says
    otherwise unless ``state.serving`` is set to another model; ``load``: makes a predictor
    from a round's path (the app's loader knows its encoder)."""

    def __init__(
        self,
        work: str | Path,
        detector_config,
        config: ContinualConfig | None = None,
        start: str | Path | None = None,
        load: Callable | None = None,
        versioned: Sequence[str] = (),
    ) -> None:
        self.work = Path(work)
        self.versioned = tuple(versioned)
        self.work.mkdir(parents=True, exist_ok=True)
        self.detector_config = detector_config
        self.config = config or ContinualConfig()
        self.load = load or _load
        self.state = TrainerState.read(self.work)
        if not self.state.rounds and start is not None:
            self.state.start = str(start)
        if self.state.serving is None and start is not None:
            self.state.serving = str(start)

    @property
    def serving(self) -> str | None:
        return self.state.serving

    def record(self, others: Sequence[str] = ()) -> Record:
        """The prequential record so far, its sources the trainer and ``others``."""
        raw = self.state.record or {}
        sources = tuple(dict.fromkeys([TRAINER, *raw.get("sources", []), *others]))
        record = Record(sources, self.config.z, self.config.pairs, self.config.margin)
        record.scored = {
            int(c): {src: {int(i): v for i, v in per.items()} for src, per in by.items()}
            for c, by in raw.get("scored", {}).items()
        }
        record.serving = {int(c): v for c, v in raw.get("serving", {}).items()}
        record.why = {int(c): v for c, v in raw.get("why", {}).items()}
        record.promotions = list(raw.get("promotions", []))
        return record

    def round(
        self,
        train: Dataset,
        fresh: Sequence[Fresh] | Callable[[set[int]], Sequence[Fresh]] = (),
        others: Others | None = None,
        log=print,
        progress=None,
    ) -> Round:
        """Train one round on ``train``, then score it on the ``fresh`` finished images it
        did not train on (a sequence, or called with the ids it trained on once it has: the
        images finished meanwhile), beside ``others``' proposals on them, and promote it when
        the record says the trainer serves a class; the state is saved. ``progress(step,
        total)`` is called after every step; an exception it raises cuts the round short
        (nothing of it is kept but its folder, trained again next time)."""
        from fewclick.train.detect import TrainConfig, train_detector

        if not len(train):
            raise ValueError("no finished image to train on yet")
        number = len(self.state.rounds) + 1
        out = self.work / f"{ROUND_PREFIX}{number}-{uuid.uuid4().hex[:8]}"  # a name never used before
        config = TrainConfig(
            steps=self.config.round_steps,
            lr=self.config.lr,
            warmup_steps=self.config.warmup_steps,
            init=self._warm_start(),
            seed=self.config.seed + number,
            threads=self.config.threads,
            crop=self.config.crop,
            batch_size=self.config.batch_size,
            val_every=10**9,
            input_scale=self.config.input_scale,
        )
        before = copy.deepcopy(self.state)
        trained = sorted({int(r.id) for r in train.images if getattr(r, "id", None) is not None})
        try:
            path = train_detector(
                train, out, self.detector_config, config, log=lambda _: None, progress=progress
            )
            seen = self.state.trained() | set(trained)
            images = fresh(seen) if callable(fresh) else [f for f in fresh if f.image_id not in seen]
            done = self._record(number, path, len(train), trained, images, others)
        except BaseException:  # cut short, or failed (a full disk): nothing of it is kept
            self.state = before
            shutil.rmtree(out, ignore_errors=True)
            raise
        log(_describe(done))
        return done

    def _record(self, number: int, path: Path, count: int, trained: list[int], fresh, others) -> Round:
        """Score the round on ``fresh`` (test, then train), promote it or not, and write the
        state with it (a failure to write leaves the state on disk as it was, and the caller
        restores it in memory)."""
        shown = {TRAINER: _opened(self.load(path), fresh)}
        shown.update({k: list(v) for k, v in (others(fresh) if others and fresh else {}).items()})
        record = self.record(list(shown))
        saved = self._score(record, fresh, shown)
        serves = sorted(c for c in record.serving if record.serves(c) == TRAINER)
        sources = named_sources(record)
        versioned = any(v in self.versioned for v in sources.values())
        moved = sources != (self.state.registered or {})
        # a round never serves untested; it is the version that names which source serves
        # each class, so a round is registered too when the sources it would name differ from
        # the last registered version's, where a source the app needs a version for serves
        # (the fast learner) or a version was registered before
        registers = moved and (versioned or self.state.registered is not None)
        promoted = bool(fresh) and bool(serves or registers)
        thresholds = self._thresholds(serves)
        note = "; ".join(f"class {c}: {record.why[c]}" for c in sorted(record.why))
        done = Round(
            number, count, self.config.round_steps, promoted, str(path), trained,
            [f.image_id for f in fresh], saved, serves, thresholds, note or None,
        )  # fmt: skip
        if promoted:
            self.state.serving, self.state.serving_round = str(path), number
        self.state.record = _as_dict(record)
        self.state.rounds.append(done)
        self.state.total_steps += self.config.round_steps
        self.state.write(self.work)
        return done

    def _score(self, record: Record, fresh: Sequence[Fresh], shown: dict) -> dict[str, float]:
        """Each ``fresh`` image scored by every source that showed something there, at the
        thresholds its images before chose, into ``record`` and the sources' histories;
        per source, the mean seconds an image it saved."""
        totals: dict[str, list[float]] = {}
        for k, f in enumerate(fresh):
            gt = objects_of(f.objects)
            classes = sorted({int(c) for c in gt.labels})
            per_class: dict[int, dict[str, float]] = {c: {} for c in classes}
            for source, found in shown.items():
                if found[k] is None:
                    continue
                history = [
                    (_objects(h["objects"]), _found(h["found"])) for h in self.state.history.get(source, [])
                ]
                for c in classes:
                    cut = best_threshold(history, c)
                    per_class[c][source] = savings(gt, at_threshold(found[k], c, cut), c).seconds
                totals.setdefault(source, []).append(sum(per_class[c][source] for c in classes))
                kept = self.state.history.setdefault(source, [])
                kept[:] = [h for h in kept if h["id"] != f.image_id][-(WINDOW - 1) :]
                kept.append({"id": f.image_id, "objects": _rows(gt), "found": _found_rows(found[k])})
            for c in classes:
                record.add(f.image_id, c, per_class[c])
        return {k: round(float(np.mean(v)), 2) for k, v in totals.items()}

    def _thresholds(self, serves: list[int]) -> list[float | None]:
        """Per class position: where the trainer's proposals on open start for a class it
        serves (the score that saved most on its scored images), :data:`NONE_SHOWN` for a
        class it does not serve, None for a class never scored."""
        history = [(_objects(h["objects"]), _found(h["found"])) for h in self.state.history.get(TRAINER, [])]
        seen = {int(c) for objects, _ in history for c in objects.labels}
        out: list[float | None] = []
        for c in range(self.detector_config.num_classes):
            if c not in seen:
                out.append(None)
            elif c in serves:
                cut = best_threshold(history, c)
                out.append(NONE_SHOWN if not np.isfinite(cut) else float(cut))
            else:
                out.append(NONE_SHOWN)
        return out

    def registered(self) -> None:
        """The app registered the promoted round as a version: the sources it names per class
        (the record's now) are kept in the state, and the next rounds are registered only
        where theirs differ (or the trainer serves a class)."""
        self.state.registered = named_sources(self.record())
        self.state.write(self.work)

    def source_thresholds(self, source: str, classes: Sequence[int]) -> dict[int, float]:
        """Per class of ``classes``, the score from which ``source``'s proposals saved the
        most on the images it was scored on (:func:`~fewclick.active.prequential.best_threshold`;
        :data:`NONE_SHOWN` when nothing saved)."""
        history = [(_objects(h["objects"]), _found(h["found"])) for h in self.state.history.get(source, [])]
        cuts = {int(c): best_threshold(history, int(c)) for c in classes}
        return {c: float(cut) if np.isfinite(cut) else NONE_SHOWN for c, cut in cuts.items()}

    def named(self) -> set[str]:
        """The checkpoints the trainer itself needs (:meth:`TrainerState.named`)."""
        return self.state.named()

    def collect(self, named_elsewhere: set[str] = frozenset()) -> list[Path]:
        """Remove the rounds' folders in ``work`` that neither the trainer (:meth:`named`) nor
        ``named_elsewhere`` (checkpoint paths) names; the ones removed. Only for the trainer's
        own process between rounds: a round being trained is named by nothing yet."""
        keep = {Path(p).resolve().parent for p in self.named() | set(named_elsewhere)}
        gone = []
        for folder in sorted(self.work.glob(f"{ROUND_PREFIX}*")):
            if folder.is_dir() and folder.resolve() not in keep:  # paths as stored may be relative
                shutil.rmtree(folder, ignore_errors=True)
                gone.append(folder)
        return gone

    def _warm_start(self) -> str | None:
        """The newest readable checkpoint among the rounds (promoted or not) and the start;
        None (the config's weights) when none can be read."""
        for path in [r.path for r in reversed(self.state.rounds)] + [self.state.start]:
            if path is not None and _readable(path):
                return path
        return None


def named_sources(record: Record) -> dict[str, str]:
    """Per class the record has served (as a string), its source now."""
    return {str(c): record.serves(c) for c in sorted(record.serving)}


def _opened(predictor, fresh: Sequence[Fresh]) -> list[Detections]:
    """What ``predictor`` shows on each fresh image as it opens: no click."""
    out = []
    for f in fresh:
        predictor.set_image(f.image)
        out.append(predictor.predict(Clicks.empty()))
    return out


def _as_dict(record: Record) -> dict:
    return {
        "sources": list(record.sources),
        "scored": {
            str(c): {s: {str(i): v for i, v in per.items()} for s, per in by.items()}
            for c, by in record.scored.items()
        },
        "serving": {str(c): v for c, v in record.serving.items()},
        "why": {str(c): v for c, v in record.why.items()},
        "promotions": record.promotions,
    }


def _rows(gt: Objects) -> list[list[float]]:
    return [[int(c), *np.round(b, 2).tolist()] for c, b in zip(gt.labels, gt.boxes)]


def _found_rows(found: Detections) -> list[list[float]]:
    return [
        [int(c), round(float(s), 4), *np.round(b, 2).tolist()]
        for c, s, b in zip(found.labels, found.scores, found.boxes)
    ]


def _objects(rows: list) -> Objects:
    a = np.asarray(rows, np.float32).reshape(-1, 5)
    return Objects(a[:, 0].astype(np.int64), a[:, 1:])


def _found(rows: list) -> Detections:
    a = np.asarray(rows, np.float32).reshape(-1, 6)
    return Detections(a[:, 2:], a[:, 1], a[:, 0].astype(np.int64))


def _readable(path: str) -> bool:
    """Whether the detector checkpoint at ``path`` can be read (a missing or torn file cannot)."""
    from fewclick.models.detector import load_detector

    try:
        load_detector(path)
    except (FileNotFoundError, ValueError) as exc:
        _logger.warning("passing over %s: %s", path, exc)
        return False
    return True


def _load(path):
    from fewclick.predict.detect import ClickDetector

    return ClickDetector.load(path)


def _describe(r: Round) -> str:
    if not r.scored:
        scored = "no finished image it never saw to score it on yet"
    else:
        each = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(r.saved.items()))
        scored = f"on {len(r.scored)} image(s) it never saw, saved an image: {each}"
    if r.promoted:
        verdict = f"serves classes {r.serves}: promoted" if r.serves else "other sources serve: registered"
    else:
        verdict = "serves no class yet: kept training"
    return f"round {r.number} on {r.train_images} images: {scored}; {verdict}"
