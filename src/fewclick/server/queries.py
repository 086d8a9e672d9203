"""Read-only queries the API answers from: counts, lists and sizes over a project's rows.

Changes are in :mod:`fewclick.server.store`; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fewclick.server.db import Annotation, Event, Image, Job, ModelVersion, Project

MAX_EVENTS = 10000  # the most events one request lists


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
    """Median box side in pixels per class id over the project's boxes (for the
    training-free detector); classes without boxes are left out."""
    sides: dict[int, list[float]] = {}
    rows = session.execute(
        select(Annotation.class_id, Annotation.geometry).join(Image).where(Image.project_id == project_id)
    ).all()
    for class_id, g in rows:
        if "box" in g:
            x0, y0, x1, y1 = g["box"]
            sides.setdefault(class_id, []).append(float(np.sqrt(max(x1 - x0, 1) * max(y1 - y0, 1))))
    return {k: float(np.median(v)) for k, v in sides.items()}


def running_job(session: Session, project_id: int) -> Job | None:
    """The project's queued or running job, if any."""
    return session.scalar(
        select(Job).where(Job.project_id == project_id, Job.status.in_(("queued", "running")))
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
