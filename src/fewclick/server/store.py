"""The rules of a project's changes: annotations checked against their image and classes,
images moved through their statuses by the roles that may, a project's settings checked, and
the user's actions logged. The statements behind them are in :mod:`fewclick.server.storage`;
making projects, uploads and imports are in :mod:`fewclick.server.imports`, exports in
:mod:`fewclick.server.exports`.

Errors a user can cause raise :class:`StoreError` (or a subclass) with a message that says
what is wrong; the app turns them into 4xx responses. Nothing is written unless the whole
operation succeeds (the caller commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, object_session

from fewclick.server import accounts, model_files
from fewclick.server.convert import GeometryError, check_geometry
from fewclick.server.db import (
    FINISHED,
    IMAGE_STATUSES,
    REVIEW_STATES,
    Annotation,
    Image,
    Project,
    ProjectClass,
    User,
    now,
)
from fewclick.server.errors import Conflict, Forbidden, StoreError, shown
from fewclick.server.storage import annotations, rows, versions
from fewclick.server.storage.events import add_events

MAX_AUTO_TRAIN_EVERY = 1000
# (status, new status) -> the action (accounts.MAY says whose) that moves an image so:
# annotators finish images; reviewers review finished ones, or send them back to work
MOVES = {
    ("new", "done"): "annotate",
    ("in_progress", "done"): "annotate",
    ("done", "reviewed"): "review",
    ("done", "in_progress"): "review",
    ("reviewed", "in_progress"): "review",
}


def class_of(project: Project, class_id: int) -> ProjectClass:
    for c in project.classes:
        if c.id == class_id:
            return c
    raise StoreError(f"class id {class_id} is not a class of project {project.name!r}")


def add_annotation(session: Session, user: User, image: Image, data: dict) -> Annotation:
    project = image.project
    cls = class_of(project, data.get("class_id"))
    kind = data.get("kind", "box")
    try:
        geometry = check_geometry(kind, data.get("geometry") or {}, image.width, image.height)
    except GeometryError as exc:
        raise StoreError(str(exc)) from None
    ann = Annotation(
        class_id=cls.id,
        kind=kind,
        geometry=geometry,
        score=data.get("score"),
        quality=data.get("quality"),
        source=data.get("source", "manual"),
        backend=data.get("backend"),
        created_by=user.id,
        updated_by=user.id,
    )
    ann.image = image  # the backref does not load the image's other annotations to add this one
    return annotations.add(session, ann)


def update_annotation(session: Session, user: User, ann: Annotation, data: dict) -> Annotation:
    image = ann.image
    if "class_id" in data:
        ann.class_id = class_of(image.project, data["class_id"]).id
    if "geometry" in data:
        kind = data.get("kind", ann.kind)
        try:
            ann.geometry = check_geometry(kind, data["geometry"], image.width, image.height)
        except GeometryError as exc:
            raise StoreError(str(exc)) from None
        ann.kind = kind
    if "review" in data:
        if data["review"] not in REVIEW_STATES:
            raise StoreError(f"review must be one of {REVIEW_STATES}, got {data['review']!r}")
        ann.review = data["review"]
    for key in ("score", "quality"):
        if key in data:
            setattr(ann, key, data[key])
    ann.updated_at = now()
    ann.updated_by = user.id
    rows.write(session)
    return ann


def set_auto_train(project: Project, every: object) -> None:
    """Train by itself after every ``every`` newly finished images (0: never)."""
    project.auto_train_every = _interval("auto_train_every", every)


def set_queue_train(project: Project, every: object) -> None:
    """Train by itself after every ``every`` answers of the review queue (0: never)."""
    project.queue_train_every = _interval("queue_train_every", every)


def set_ask_empty(project: Project, ask: object) -> None:
    """Whether the page asks before an image is finished with no objects."""
    if type(ask) is not bool:
        raise StoreError(f"ask_empty must be true or false, got {ask!r}")
    project.ask_empty = ask


def finish_check(image: Image, status: str, objects: int, empty: bool) -> None:
    """Conflict when ``image`` is about to be finished with no objects and the request did
    not say that it is empty: such an image teaches the detector that nothing is there."""
    if status in FINISHED and image.status not in FINISHED and not objects and not empty:
        raise Conflict(
            f"image {image.file_name!r} has no objects: finishing it says that nothing is there, "
            'and the detector learns that. Send {"status": "done", "empty": true} if it really is empty'
        )


def set_pinned_detector(project: Project, version: object) -> None:
    """Serve this detector version to everyone, whatever is trained after it (0: the
    training-free start; None: the newest, as versions come)."""
    if version is not None and (type(version) is not int or version < 0):
        raise StoreError(
            "pinned_detector must be a detector version, 0 (the training-free start) or null "
            f"(the newest serves), got {version!r}"
        )
    if version:
        numbers = versions.detector_numbers(object_session(project), project.id)
        if version not in numbers:
            has = ", ".join(f"v{v}" for v in sorted(numbers)) or "none yet"
            raise StoreError(f"project {project.name!r} has no detector v{version} (its versions: {has})")
        why = _cannot_serve(versions.detector(object_session(project), project.id, version))
        if why:
            raise StoreError(f"detector v{version} cannot serve: {why}")
    project.pinned_detector = version
    model_files.forget(object_session(project))  # what serves is decided anew


def _cannot_serve(version) -> str | None:
    from fewclick.server import model_files

    if model_files.collected(version):
        return f"its files were removed to keep the {model_files.KEEP_VERSIONS} newest versions"
    why = model_files.unreadable(version)
    return None if why is None else f"its file could not be read ({why})"


def _interval(name: str, every: object) -> int:
    if type(every) is not int or not 0 <= every <= MAX_AUTO_TRAIN_EVERY:
        raise StoreError(f"{name} must be an integer from 0 to {MAX_AUTO_TRAIN_EVERY}, got {every!r}")
    return every


def finish_annotated(session: Session, user: User, role: str, project: Project, status: str) -> int:
    """Set ``status`` (done, or reviewed: done, then reviewed) on every image of the project
    that holds the user's annotations and is not finished yet, as ``user`` acting with
    ``role`` (who may make each move is :data:`MOVES`); returns how many changed."""
    if status not in FINISHED:
        raise StoreError(f"status must be one of {FINISHED}, got {status!r}")
    steps = FINISHED[: FINISHED.index(status) + 1]
    for step in steps:
        _check_role(user, role, step)
    images = annotations.annotated_unfinished(session, project.id)
    for image in images:
        for step in steps:
            set_status(image, step, user, role)
    rows.write(session)
    return len(images)


def set_status(image: Image, status: str, user: User, role: str) -> str | None:
    """Move the image to ``status`` as ``user`` acting with ``role`` (their role on its
    project), one step of :data:`MOVES`; returns the move's action ("annotate": the image was
    finished), None when the image has that status already. Forbidden when the role makes no
    move to ``status``, Conflict (naming the image's status) when the image is not where such
    a move starts."""
    if status not in IMAGE_STATUSES:
        raise StoreError(f"status must be one of {IMAGE_STATUSES}, got {shown(status)}")
    _check_role(user, role, status)
    if status == image.status:
        return None
    action = MOVES.get((image.status, status))
    if action is None or role not in accounts.MAY[action]:
        sources = " or ".join(s for (s, to), a in MOVES.items() if to == status and role in accounts.MAY[a])
        raise Conflict(
            f"image {image.file_name!r} is {image.status.replace('_', ' ')}: an image moves to "
            f"{status} only from {sources}"
        )
    image.status = status
    image.updated_at = now()
    image.updated_by = user.id
    return action


def _check_role(user: User, role: str, status: str) -> None:
    """Forbidden unless ``role`` makes some move to ``status``."""
    actions = {a for (_, to), a in MOVES.items() if to == status}
    roles = sorted(set().union(*(accounts.MAY[a] for a in actions)))
    if role not in roles:
        needs = " or ".join(roles) if roles else "no role: an image is new only until its first change"
        raise Forbidden(f"{user.name} is {role} here, and moving an image to {status} needs {needs}")


def log_events(session: Session, user: User, project: Project, events: Sequence[dict[str, Any]]) -> None:
    """Add the user's actions (dicts of :class:`Event` fields; ``at`` without time zone, now
    when missing) to the project's log; an event on an image of another project refuses all."""
    image_ids = {im.id for im in project.images}
    for i, e in enumerate(events):
        if e.get("image_id") is not None and e["image_id"] not in image_ids:
            raise StoreError(f"event {i}: image {e['image_id']} is not in project {project.name!r}")
    add_events(session, project.id, user.id, events)
