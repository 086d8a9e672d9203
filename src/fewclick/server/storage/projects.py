"""Projects and their classes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from fewclick.server.convert import colour
from fewclick.server.db import Project, ProjectClass, User


def all_projects(session: Session) -> Sequence[Project]:
    return session.scalars(select(Project).order_by(Project.id)).all()


def named(session: Session, name: str) -> Project | None:
    """The project called ``name``, if any."""
    return session.scalar(select(Project).where(Project.name == name))


def add_project(session: Session, user: User, name: str, source: str | None) -> Project:
    """A new project ``name`` made by ``user`` from ``source`` (the folder or dataset; None:
    empty, for uploads)."""
    project = Project(name=name, created_by=user.id, source=source)
    session.add(project)
    return project


def set_classes(session: Session, project: Project, names: Sequence[str]) -> None:
    """Give the project these classes (appended to the ones it has; names stay unique)."""
    have = {c.name for c in project.classes}
    for name in names:
        if name in have:
            continue
        position = len(project.classes)
        project.classes.append(
            ProjectClass(
                name=name,
                color=colour(position),
                key=position + 1 if position < 9 else None,
                position=position,
            )
        )
        have.add(name)
    session.flush()


def pinned_detector(session: Session, project_id: int) -> int | None:
    """The detector version the project's users pinned (0: the training-free start; None:
    none pinned, the newest serves)."""
    return session.scalar(select(Project.pinned_detector).where(Project.id == project_id))
