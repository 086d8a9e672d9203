"""Model versions and mask-backend comparisons: what a project trained, and what serves it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fewclick.server.db import BackendComparison, ModelVersion


def newest_model(session: Session, project_id: int, task: str) -> ModelVersion | None:
    """The project's newest version of ``task`` (detect, segment or points), if any."""
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.task == task)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )


def detector(session: Session, project_id: int, version: int) -> ModelVersion | None:
    """The project's detector ``version``, if there is one."""
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.task == "detect",
            ModelVersion.version == version,
        )
    )


def detector_numbers(session: Session, project_id: int) -> Sequence[int]:
    """The version numbers of the project's detectors."""
    return session.scalars(
        select(ModelVersion.version).where(
            ModelVersion.project_id == project_id, ModelVersion.task == "detect"
        )
    ).all()


def detectors(session: Session, project_id: int) -> Sequence[ModelVersion]:
    """The project's detector versions, oldest first."""
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.task == "detect")
        .order_by(ModelVersion.version)
    ).all()


def model_versions(session: Session, project_id: int) -> Sequence[ModelVersion]:
    """Every model version trained for the project, oldest first."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id)
    ).all()


def next_version(session: Session, project_id: int, task: str) -> int:
    """The number the project's next version of ``task`` gets (1 for the first)."""
    newest = select(func.max(ModelVersion.version)).where(
        ModelVersion.project_id == project_id, ModelVersion.task == task
    )
    return (session.scalar(newest) or 0) + 1


def trained_on(session: Session, project_id: int, tasks: tuple[str, ...] | None = None) -> int:
    """The finished images the project's newest model (of ``tasks``: None, any) was trained
    on; 0 before any. Every model of one job learns from the same images."""
    of = () if tasks is None else (ModelVersion.task.in_(tasks),)
    return (
        session.scalar(
            select(ModelVersion.images)
            .where(ModelVersion.project_id == project_id, *of)
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        or 0
    )


def add_version(session: Session, **fields) -> ModelVersion:
    """A new model version (the :class:`~fewclick.server.db.ModelVersion` fields): it serves
    once committed."""
    version = ModelVersion(**fields)
    session.add(version)
    return version


def newest_comparison(session: Session, project_id: int) -> BackendComparison | None:
    return session.scalar(
        select(BackendComparison)
        .where(BackendComparison.project_id == project_id)
        .order_by(BackendComparison.id.desc())
        .limit(1)
    )


def comparisons(session: Session, project_id: int) -> int:
    """How many backend comparisons the project has."""
    return session.scalar(
        select(func.count()).select_from(BackendComparison).where(BackendComparison.project_id == project_id)
    )


def add_comparison(session: Session, **fields) -> BackendComparison:
    """A new backend comparison (the :class:`~fewclick.server.db.BackendComparison` fields)."""
    comparison = BackendComparison(**fields)
    session.add(comparison)
    return comparison
