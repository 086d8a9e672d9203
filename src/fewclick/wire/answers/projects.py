"""Projects: their classes, model versions, mask backends, analytics and event log."""

from __future__ import annotations

from typing import Any

from fewclick.wire.answers.base import Answer, Job, Trainer


class ProjectClass(Answer):
    """A class: ``position`` is its class id in exports and in the models (the order of the
    project's classes); ``key`` the number key 1-9 that picks it; ``isthing`` False: stuff."""

    id: int
    name: str
    color: str  # "#rrggbb"
    key: int | None
    position: int
    isthing: bool


class ModelVersion(Answer):
    task: str  # detect | segment | points | ...
    version: int
    images: int  # finished images it was trained on
    method: str | None
    metrics: dict[str, Any] | None  # what training measured
    created_at: str
    file: str | None = None  # its file, relative to the project's models folder
    collected: bool = False  # its files were removed (older than the versions kept)
    unreadable: str | None = None  # why its file could not be read when last tried


class TrainerRound(Answer):
    """One of the trainer's rounds whose files no model version names: ``finished`` it is
    in the trainer's state (not a version: it did not beat what serves, or was too few
    held-out objects to score), else it is being trained or scored now."""

    round: int
    bytes: int
    finished: bool


class ModelFiles(Answer):
    """The disk a project's model files take (``bytes``) against their budget, how many
    versions per task are kept beside the serving and the pinned one, and what the bytes
    hold: the versions not collected (``versions``), the trainer's rounds that are no
    version (``rounds``), mask backend ``comparisons`` and the ``other`` files (the
    trainer's state); the parts add up to ``bytes``."""

    bytes: int
    budget_bytes: int
    kept_per_task: int
    versions: int = 0
    rounds: list[TrainerRound] = []
    comparisons: int = 0
    other: int = 0


class ProjectSummary(Answer):
    """A project in the list: ``images`` counted, and per status in ``by_status``;
    ``progress`` the share of its images finished."""

    id: int
    name: str
    oriented: bool
    source: str | None
    images: int
    by_status: dict[str, int]
    auto_train_every: int
    queue_train_every: int
    pinned_detector: int | None
    ask_empty: bool  # whether the page asks before an image is finished with no objects
    progress: float


class Project(ProjectSummary):
    """A project with its classes, trained model versions, the ``detector`` that serves
    click-to-detect (None: the training-free start) and its live background ``trainer``."""

    classes: list[ProjectClass]
    models: list[ModelVersion]
    detector: ModelVersion | None
    trainer: Trainer | None
    model_files: ModelFiles | None = None


class ProjectWithWarnings(Answer):
    """A project made or imported into, and the warnings (e.g. files skipped)."""

    project: Project
    warnings: list[str]


class ImportedFile(ProjectWithWarnings):
    """An annotation file uploaded and imported: its ``annotations`` on ``images`` of the
    project's images, the classes it added (``classes_added``), and the ``warnings`` (the
    reader's repairs, images not in the project, objects skipped)."""

    name: str
    format: str
    annotations: int
    images: int
    classes_added: list[str]


class UnknownClasses(Answer):
    """The 409 to an annotation file whose objects are of classes the project does not
    have: nothing was imported; ``unknown_classes`` names them, ``detail`` says so in words
    (sent again with ``add_classes``, the file adds them and is imported)."""

    detail: str
    unknown_classes: list[str]


class Finished(Answer):
    """How many images a finish marked, and the training job it started (None: none)."""

    finished: int
    job: Job | None


class ImageTime(Answer):
    image_id: int
    file_name: str
    seconds: float
    interactions: int
    finished: int | None  # the order in which it was first submitted (1: first)


class MapAtTime(Answer):
    seconds: float
    mAP: float | None


class MapAtBoxes(Answer):
    version: int
    boxes: int
    mAP: float
    images: int | None


class Analytics(Answer):
    """Time and interactions per image, and mAP against the reference annotations by time
    spent and by boxes labeled (None without reference annotations)."""

    images: list[ImageTime]
    total_seconds: float | int  # 0, an int, before any event with a duration
    mean_seconds_per_image: float | None
    mean_interactions_per_image: float | None
    objects_per_minute: float | None
    map_vs_time: list[MapAtTime] | None
    map_vs_boxes: list[MapAtBoxes] | None


class Comparison(Answer):
    table: dict[str, Any]
    chosen: str
    masks: int
    created_at: str


class Backends(Answer):
    """The mask backend that ``serving`` and why, the user's ``override``, the ``available``
    ones, the newest ``comparison`` (None before one), and why ``sam_tuned`` cannot serve
    (None when it can)."""

    serving: str
    chosen_by: str
    quality_ranker: bool
    override: str | None
    available: list[str]
    finished_masks: int
    masks_needed: int
    comparison: Comparison | None
    sam_tuned: str | None


class Logged(Answer):
    logged: int


class Event(Answer):
    id: int
    image_id: int | None
    user_id: int
    action: str
    at: str
    duration_ms: float | None
    detail: dict[str, Any] | None
