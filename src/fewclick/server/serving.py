"""Which box-to-mask backend serves a project, and what it needs from the worker.

The user's pick (``Project.mask_backend``) serves when it is available (``sam_tuned``: when
the newest mask model's job tuned SAM's decoder and it beat the pretrained one on held-out
finished masks); else the winner of
the project's newest backend comparison (:mod:`fewclick.server.jobs.comparison`); else, before
any comparison, the pretrained SAM when its files are present and GrabCut when they are
not. The quality estimate comes from the ranker trained on the serving backend's own
sessions; until one exists there is none.

SAM needs the image's embedding: it is computed in the worker ahead of the click and kept
as ``<data>/embeddings/<project>-<image id>-<file mtime ns>.npz``, so a changed file gets a
new one and a restart finds the old ones (:mod:`fewclick.server.embeddings`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from fewclick.active.continual import TRAINER
from fewclick.metrics.thresholds import NONE_SHOWN
from fewclick.predict.backends import BACKENDS
from fewclick.protocols.segment_choice import MIN_MASKS
from fewclick.server import model_files
from fewclick.server.db import Image, ModelVersion, Project
from fewclick.server.errors import NotFound, StoreError
from fewclick.server.storage import annotations, projects, versions
from fewclick.server.storage.versions import newest_model

__all__ = ["BACKENDS", "MIN_MASKS", "Serving", "serving", "sam_available"]
RANKER_FILE = "ranker.pkl"  # a ranker's file in its mask model's folder
_GOOD_SAM: set[str] = set()  # model folders whose pretrained pair checked out


def sam_available() -> bool:
    """Whether the pretrained SAM pair is set up (checked by sha256 once per folder)."""
    from fewclick.predict.pretrained import PretrainedModelError, default_model_files, models_dir

    folder = str(models_dir())
    if folder in _GOOD_SAM:
        return True
    try:
        default_model_files()
    except PretrainedModelError:
        return False
    _GOOD_SAM.add(folder)
    return True


def check_backend(name: str | None) -> str | None:
    """``name`` if it is None or a mask backend's name; else a StoreError naming them."""
    if name is not None and name not in BACKENDS:
        raise StoreError(f"unknown mask backend {name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def unavailable(session: Session, project: Project, name: str) -> str | None:
    """Why backend ``name`` cannot serve ``project`` now, or None when it can."""
    if name in ("sam", "sam_tuned") and not sam_available():
        return "the pretrained SAM files are not set up: run `fewclick models fetch`"
    if name == "sam_tuned":
        return tuned_unavailable(newest_model(session, project.id, "segment"))
    if name == "model" and newest_model(session, project.id, "segment") is None:
        return "the project has no trained mask model yet: train on finished images first"
    return None


def tuned_unavailable(model) -> str | None:
    """Why the mask model ``model`` (a ModelVersion or None) brings no tuned SAM decoder."""
    from fewclick.predict.backends import TUNED_DECODER

    if model is not None and (Path(model.path) / TUNED_DECODER).is_file():
        return None
    why = "SAM's decoder is tuned with the project's mask model, once 10 masks are finished: train first"
    if model is not None:
        tuning = (model.metrics or {}).get("sam_decoder")
        why = "the newest mask model brings no tuned SAM decoder"
        if tuning and tuning.get("why"):
            why += f": it {tuning['why']}"
        elif tuning:
            why += (
                f": tuned, it scored {_scores(tuning['tuned'])} on {tuning['held_out_masks']} held-out "
                f"masks against {_scores(tuning['pretrained'])} for the pretrained one, which serves"
            )
    return why


def _scores(s: dict) -> str:
    click = f", {s['click_mIoU']:.3f} from one click" if "click_mIoU" in s else ""  # older jobs: none
    return f"mIoU {s['box_mIoU']:.3f} from the box, {s['clicks_mIoU']:.3f} after 2 clicks{click}"


def available(session: Session, project: Project) -> list[str]:
    return [name for name in BACKENDS if unavailable(session, project, name) is None]


def serving(session: Session, project: Project) -> Serving:
    """The backend that serves ``project``'s masks now (module docstring)."""
    comparison = versions.newest_comparison(session, project.id)
    if project.mask_backend and unavailable(session, project, project.mask_backend) is None:
        name, by = project.mask_backend, "you"
    elif comparison is not None and unavailable(session, project, comparison.chosen) is None:
        name, by = comparison.chosen, "comparison"
    else:
        name, by = ("sam" if sam_available() else "grabcut"), "default"
    model = newest_model(session, project.id, "segment") if name in ("model", "sam_tuned") else None
    rankers = [Path(comparison.path) / f"ranker_{name}.pkl"] if comparison is not None else []
    if name == "model" and model is not None:
        rankers.append(Path(model.path) / RANKER_FILE)  # the one trained with the model
    ranker = next((str(f) for f in rankers if f.is_file()), None)
    return Serving(name, by, model.path if model else None, ranker)


def finished_masks(session: Session, project_id: int) -> int:
    """The user's masks (not rejected) on the project's finished images; an oriented box
    imported with its mask counts as one."""
    return sum(1 for g in annotations.finished_mask_geometries(session, project_id) if "mask" in g)


def image_file(image: Image) -> Path:
    """The image's file; :class:`NotFound` naming it when it is gone."""
    path = Path(image.path)
    if not path.is_file():
        raise NotFound(f"the file of image {image.file_name!r} is gone from {path}")
    return path


def embedding_key(image: Image) -> str:
    """The cache key of the image's SAM embedding: project, image and file time."""
    return file_key(image.project_id, image.id, image_file(image))


def file_key(project_id: int, image_id: int, path: str | Path) -> str:
    """:func:`embedding_key` from the project id, the image id and the file's path."""
    return f"{project_id}-{image_id}-{os.stat(path).st_mtime_ns}"


def embedding_ready(folder: Path, key: str) -> bool:
    return (folder / f"{key}.npz").is_file()


@dataclass(frozen=True)
class Serving:
    """The backend serving a project's masks: ``name``; ``chosen_by`` "you" (the user's
    pick), "comparison" (the best measured) or "default" (no comparison yet); ``model``
    the mask model's folder when ``name`` is "model"; ``ranker`` the quality ranker's file
    for this backend, or None."""

    name: str
    chosen_by: str
    model: str | None = None
    ranker: str | None = None


@dataclass(frozen=True)
class Decision:
    """What serves a project's click-to-detect, read once per request (issue 68, item 4):
    its detector versions (oldest first), the pin, and the version that serves (None: the
    training-free start or the look-alikes); from the version, which source serves each
    class on open (its test, then train record: the trainer, the look-alikes, the learner)."""

    detectors: tuple[ModelVersion, ...]
    pin: int | None
    version: ModelVersion | None

    @property
    def model(self) -> ModelVersion | None:
        """The trained version that serves (None: the training-free start or the look-alikes)."""
        v = self.version
        return v if v is not None and v.method != "training-free" else None

    @property
    def look_alikes(self) -> tuple[int, ...]:
        """The class positions the look-alikes serve beside it (:func:`look_alike_classes`)."""
        return look_alike_classes(self.model)

    @property
    def learner(self) -> tuple[tuple[int, float], ...]:
        """The class positions the fast learner serves beside it, each with its floor
        (:func:`learner_classes`)."""
        return learner_classes(self.model)

    @property
    def proposes(self) -> bool:
        """Whether the images' SAM proposals are made as they open: before a trained version;
        beside it while some class is not the trainer's (the look-alikes or the learner serve
        it, or nothing does yet): the sources over them are scored on every image finished,
        and can win a class back only so (test, then train)."""
        if self.model is None or self.look_alikes or self.learner:
            return True
        return any(source != TRAINER for source in class_sources(self.model).values())


def decision(session, project_id: int) -> Decision:
    """The :class:`Decision` for ``project_id``, made once per session: every later call in
    the request reads it, until the session writes (a flush) or
    :func:`~fewclick.server.model_files.forget` is called (a pin or a version found
    unreadable, set in memory)."""
    memo = session.info.setdefault(model_files.DECISION, {})
    found = memo.get(project_id)
    if found is None:
        pin = projects.pinned_detector(session, project_id)
        detectors = tuple(versions.detectors(session, project_id))
        version = None if pin == 0 else model_files.serving_version(list(detectors), pin)
        found = memo[project_id] = Decision(detectors, pin, version)
    return found


forget = model_files.forget
event.listen(Session, "after_flush", lambda session, _: forget(session))


def serving_detector(session, project_id: int) -> ModelVersion | None:
    """The detector version that serves click-to-detect: the one the project's users pinned,
    else the newest; a version whose file was collected or found unreadable is passed over
    for the newest usable one (:func:`fewclick.server.model_files.serving_version`). None:
    nothing trained (or usable) yet, or the training-free start pinned."""
    return decision(session, project_id).version


#: the source names the background trainer's record gives the sources over SAM's proposals
#: (:mod:`fewclick.server.jobs.trainer_scored`): the look-alikes, and the fast learner
LOOK_ALIKES = "look-alikes"
LEARNER = "learner"


def class_sources(version: ModelVersion | None) -> dict[int, str]:
    """Per class position, the source a trained ``version``'s test, then train record serves
    it with on open ("trainer", :data:`LOOK_ALIKES`, :data:`LEARNER` or "none"). Empty for the
    training-free start, or a version registered before the record named a source per class."""
    if version is None or version.method == "training-free":
        return {}
    sources = ((version.metrics or {}).get("prequential") or {}).get("sources") or {}
    return {int(c): str(source) for c, source in sources.items()}


def look_alike_classes(version: ModelVersion | None) -> tuple[int, ...]:
    """The class positions where a trained ``version``'s record found the look-alikes among
    SAM's proposals save more than it: they keep serving those classes beside it (one
    source per class)."""
    return tuple(sorted(c for c, source in class_sources(version).items() if source == LOOK_ALIKES))


def learner_classes(version: ModelVersion | None) -> tuple[tuple[int, float], ...]:
    """The class positions the fast learner serves beside a trained ``version`` (its record
    found it saves the most there), each with the score its proposals show from (the one
    that saved most on the images it was scored on)."""
    record = ((version.metrics or {}).get("prequential") or {}) if version is not None else {}
    cuts = record.get("learner_thresholds") or {}
    return tuple(
        (c, float(cuts.get(str(c), NONE_SHOWN)))
        for c, source in sorted(class_sources(version).items())
        if source == LEARNER
    )


def fallback_detectors(session, project_id: int, serving: ModelVersion, most: int = 2) -> list[ModelVersion]:
    """The trained detector versions that answer when ``serving``'s file cannot be read:
    the newest usable ones before it, at most ``most``."""
    older = [
        v
        for v in reversed(decision(session, project_id).detectors)
        if v.id != serving.id and v.method != "training-free" and model_files.usable(v)
    ]
    return older[:most]


CLASS_IDS = "class_ids"  # a detector version's metrics: the project's class ids it learnt, in order


def class_ids(project: Project) -> list[int]:
    """The project's class ids in their order (a detector's class positions)."""
    return [c.id for c in project.classes]


def same_classes(versions_: list[ModelVersion], project: Project) -> tuple[str, ...]:
    """The files of ``versions_`` trained for ``project``'s classes as they are now, known by
    id: a class renamed since is still the class they learnt, under its new name. A version
    that did not record its classes' ids (made before they were) is not among them: its
    class names are compared instead."""
    ids = class_ids(project)
    return tuple(v.path for v in versions_ if v is not None and (v.metrics or {}).get(CLASS_IDS) == ids)


def unreadable_detector(session, project_id: int) -> ModelVersion | None:
    """The newest trained detector version found unreadable, when no version serves for
    that reason (none pinned to the training-free start, none usable): what the page names
    in place of "no trained detector yet"."""
    made = decision(session, project_id)
    if made.pin == 0:
        return None
    found = [v for v in made.detectors if v.method != "training-free"]
    bad = [v for v in found if not model_files.collected(v) and model_files.unreadable(v) is not None]
    return max(bad, key=lambda v: v.version, default=None)


def trained_detector(session, project_id: int) -> ModelVersion | None:
    """The detector version that serves when it is a trained one; None while the
    training-free start serves (it is not a trained detector)."""
    version = serving_detector(session, project_id)
    return None if version is None or version.method == "training-free" else version


# ------------------------------------------------ what a job needs to run a project's models
def project_encoder(folder: str | None):
    """The pretrained encoder caching in the app's ``folder``, or None without its files."""
    if folder is None:
        return None
    from fewclick.predict.pretrained import PretrainedModelError
    from fewclick.server import embeddings

    try:
        encoder = embeddings.cache_encoder(folder, threads=2)
    except (PretrainedModelError, FileNotFoundError):
        return None
    return encoder if encoder.has_features else None


def imagenet_available() -> bool:
    """Whether the ImageNet EfficientNet-Lite0 weights are installed and check out."""
    from fewclick.models.imagenet import ImageNetWeightsError, weights_file

    try:
        weights_file("lite0")
    except ImageNetWeightsError:
        return False
    return True


def record_key(project_id: int | None, rec) -> str | None:
    """The app's cache key of a finished image's encoding (None outside a project)."""
    return None if project_id is None else file_key(project_id, rec.id, rec.path)


class Keyed:
    """A detector that sets each image under its cache key (the protocol knows only pixels)."""

    def __init__(self, predictor, keys: dict[int, str | None]) -> None:
        self.predictor, self.keys = predictor, keys
        self.config = getattr(predictor, "config", None)

    def set_image(self, image) -> None:
        self.predictor.set_image(image, key=self.keys.get(id(image)))

    def predict(self, clicks):
        return self.predictor.predict(clicks)


@dataclass(frozen=True)
class TrainingRun:
    """What a task's training is given: the finished images (``data``, a Dataset), the
    folder its model goes to, its share of the job's ``minutes`` (or fixed ``steps``, in
    tests), ``progress(step, total)``, the app's embedding cache (None without SAM's files)
    and the project's id."""

    data: object
    out: Path
    minutes: float
    progress: Callable[[int, int | None], None]
    steps: int | None = None
    embeddings: str | None = None
    project_id: int | None = None


@dataclass(frozen=True)
class Trained:
    """What a task's training made: the model's folder or file, how it was made (e.g.
    ``"pretrained"`` or ``"scratch"`` for the detector; None where there is one way) and
    what training measured (e.g. ``{"held_out_mAP": {"pretrained": 0.61, "scratch": 0.42}}``)."""

    path: Path
    method: str | None = None
    metrics: dict | None = None
