"""Read-only queries the API answers from: counts, lists and sizes over a project's rows.

Changes are in :mod:`fewclick.server.store`; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fewclick.server.db import FINISHED, Annotation, Event, Image, Job, ModelVersion, Project
from fewclick.server.jobs.status import LIVE_TRAINER

MAX_EVENTS = 10000  # the most events one request lists
TRAINER = "trainer"  # the job kind of a project's background trainer (fewclick.server.jobs.trainer)
# the user's own work: not imported reference (ground truth), not rejected in review
USERS_WORK = (Annotation.reference.is_(False), Annotation.review != "rejected")
# what a person made or looked at: USERS_WORK without a detector's pre-annotations still pending
PERSONS_WORK = (*USERS_WORK, ~((Annotation.source == "preannotate") & (Annotation.review == "pending")))


def projects(session: Session) -> Sequence[Project]:
    return session.scalars(select(Project).order_by(Project.id)).all()


def status_counts(session: Session, project_id: int) -> dict[str, int]:
    """The number of the project's images per status (statuses without images left out)."""
    return dict(
        session.execute(
            select(Image.status, func.count()).where(Image.project_id == project_id).group_by(Image.status)
        ).all()
    )


def model_versions(session: Session, project_id: int) -> Sequence[ModelVersion]:
    """Every model version trained for the project, oldest first."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id)
    ).all()


def annotation_counts(session: Session, project_id: int) -> dict[int, int]:
    """The number of the user's annotations (reference ones left out) per image id; images
    without any are left out."""
    return dict(
        session.execute(
            select(Annotation.image_id, func.count())
            .join(Image)
            .where(Image.project_id == project_id, Annotation.reference.is_(False))
            .group_by(Annotation.image_id)
        ).all()
    )


def class_sizes(session: Session, project_id: int) -> dict[int, float]:
    """Median box side in pixels per class id over the user's boxes in the project (for the
    training-free detector; hidden reference boxes stay hidden, rejected ones are wrong);
    classes without boxes are left out."""
    sides: dict[int, list[float]] = {}
    rows = session.execute(
        select(Annotation.class_id, Annotation.geometry)
        .join(Image)
        .where(Image.project_id == project_id, *USERS_WORK)
    ).all()
    for class_id, g in rows:
        if "box" in g:
            x0, y0, x1, y1 = g["box"]
            sides.setdefault(class_id, []).append(float(np.sqrt(max(x1 - x0, 1) * max(y1 - y0, 1))))
    return {k: float(np.median(v)) for k, v in sides.items()}


def finished_boxes(session: Session, project_id: int, images: int = 10) -> list[tuple[Image, list]]:
    """The user's boxes on the project's ``images`` most recently finished images that hold
    some: per image ``(image, [[class id, x0, y0, x1, y1], ...])``, newest first (what SAM's
    click boxes learn the person's box edges from)."""
    return [(image, user_boxes(session, image)) for image in newest_finished(session, project_id, images)]


def user_boxes(session: Session, image: Image) -> list[list[float]]:
    """The user's boxes on ``image``: ``[[class id, x0, y0, x1, y1], ...]``."""
    rows = session.execute(
        select(Annotation.class_id, Annotation.geometry)
        .where(Annotation.image_id == image.id, Annotation.kind == "box", *USERS_WORK)
        .order_by(Annotation.id)
    ).all()
    return [[class_id, *map(float, g["box"])] for class_id, g in rows if "box" in g]


def newest_finished(session: Session, project_id: int, images: int = 10) -> list[Image]:
    """The project's ``images`` most recently finished images that hold some of the user's
    boxes, newest first."""
    return session.scalars(
        select(Image)
        .where(
            Image.project_id == project_id,
            Image.status.in_(FINISHED),
            select(Annotation.id)
            .where(Annotation.image_id == Image.id, Annotation.kind == "box", *USERS_WORK)
            .exists(),
        )
        .order_by(Image.updated_at.desc(), Image.id.desc())
        .limit(images)
    ).all()


def most_objects_finished(session: Session, project_id: int) -> int | None:
    """The most of the user's boxes any finished image of the project holds (None before an
    image is finished): the training-free start shows a few times that at most."""
    per_image = (
        select(func.count().label("n"))
        .select_from(Annotation)
        .join(Image)
        .where(Image.project_id == project_id, Image.status.in_(FINISHED), *USERS_WORK)
        .group_by(Annotation.image_id)
        .subquery()
    )
    return session.scalar(select(func.max(per_image.c.n)))


def _annotated(project_id: int, work=USERS_WORK):
    """The project's images holding at least one of the user's annotations (reference and
    rejected ones left out, as training leaves them out): the ones training learns from once
    finished."""
    return select(Image.id).where(
        Image.project_id == project_id,
        select(Annotation.id).where(Annotation.image_id == Image.id, *work).exists(),
    )


def annotated_unfinished(session: Session, project_id: int) -> Sequence[Image]:
    """The project's images that hold a person's annotations and are not finished yet (an
    image holding only pre-annotations nobody reviewed is not finished by "mark done")."""
    ids = _annotated(project_id, PERSONS_WORK).where(Image.status.not_in(FINISHED))
    return session.scalars(select(Image).where(Image.id.in_(ids)).order_by(Image.id)).all()


def finished_annotated(session: Session, project_id: int) -> int:
    """The number of the project's finished images that hold the user's annotations."""
    ids = _annotated(project_id).where(Image.status.in_(FINISHED))
    return session.scalar(select(func.count()).select_from(ids.subquery()))


def trained_on(session: Session, project_id: int) -> int:
    """The finished images the project's newest model was trained on; 0 before any. Every
    model of one job learns from the same images, and a points-only project trains no
    detector, so this is the newest model of any task."""
    return (
        session.scalar(
            select(ModelVersion.images)
            .where(ModelVersion.project_id == project_id)
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        or 0
    )


def running_job(session: Session, project_id: int) -> Job | None:
    """The project's queued or running job, if any; its background trainer runs beside the
    other jobs and is not one (:func:`trainer_job`)."""
    return session.scalar(
        select(Job).where(
            Job.project_id == project_id, Job.status.in_(("queued", "running")), Job.kind != TRAINER
        )
    )


def trainer_job(session: Session, project_id: int) -> Job | None:
    """The project's background trainer while it is queued, running, paused or stopping."""
    return session.scalar(
        select(Job)
        .where(Job.project_id == project_id, Job.kind == TRAINER, Job.status.in_(LIVE_TRAINER))
        .order_by(Job.id.desc())
        .limit(1)
    )


def jobs(session: Session, project_id: int) -> Sequence[Job]:
    """The project's jobs, oldest first."""
    return session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id)).all()


def events(session: Session, project_id: int, limit: int) -> Sequence[Event]:
    """The project's newest ``limit`` events (at most ``MAX_EVENTS``), newest first."""
    return session.scalars(
        select(Event)
        .where(Event.project_id == project_id)
        .order_by(Event.id.desc())
        .limit(min(limit, MAX_EVENTS))
    ).all()
