"""The review queue's boxes (``BoxQuery`` rows): the next open one, answers and their counts,
and the boxes a queue job proposes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fewclick.server.db import BoxQuery, User, now


def next_open(session: Session, project_id: int) -> BoxQuery | None:
    """The open box of lowest probability (None: the queue is empty)."""
    return session.scalars(
        select(BoxQuery)
        .where(BoxQuery.project_id == project_id, BoxQuery.status == "open")
        .order_by(BoxQuery.score, BoxQuery.id)
        .limit(1)
    ).first()


def counts(session: Session, project_id: int) -> list:
    """``(status, answer, boxes, their seconds summed)`` per status and answer."""
    return session.execute(
        select(BoxQuery.status, BoxQuery.answer, func.count(), func.sum(BoxQuery.seconds))
        .where(BoxQuery.project_id == project_id)
        .group_by(BoxQuery.status, BoxQuery.answer)
    ).all()


def take(session: Session, query: BoxQuery, user: User, answer: str, seconds: float) -> bool:
    """Record ``answer`` to the box in one conditional UPDATE; False when it was answered
    already (nothing is written then)."""
    taken = session.execute(
        update(BoxQuery)
        .where(BoxQuery.id == query.id, BoxQuery.status == "open")
        .values(status="answered", answer=answer, seconds=seconds, answered_at=now(), answered_by=user.id)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def link_annotation(session: Session, query: BoxQuery, annotation_id: int) -> None:
    """The annotation the box's answer made."""
    session.execute(update(BoxQuery).where(BoxQuery.id == query.id).values(annotation_id=annotation_id))


def answered_by(session: Session, query: BoxQuery) -> tuple[str, str] | None:
    """``(answer, user name)`` of the box's answer; None when the box is gone."""
    return session.execute(
        select(BoxQuery.answer, User.name)
        .join(User, User.id == BoxQuery.answered_by)
        .where(BoxQuery.id == query.id)
    ).first()


def answers_since(session: Session, project_id: int, since: datetime | None) -> int:
    """The project's answers given after ``since`` (None: all of them)."""
    query = select(func.count()).where(BoxQuery.project_id == project_id, BoxQuery.status == "answered")
    if since is not None:
        query = query.where(BoxQuery.answered_at > since)
    return session.scalar(query) or 0


def background_answers(session: Session, project_id: int) -> int | None:
    """How many of the project's boxes were answered background."""
    return session.scalar(
        select(func.count(BoxQuery.id)).where(
            BoxQuery.project_id == project_id, BoxQuery.status == "answered", BoxQuery.answer == "background"
        )
    )


def answered_boxes(session: Session, image_id: int) -> Sequence[list]:
    """The boxes of the image's answered queries."""
    return session.scalars(
        select(BoxQuery.box).where(BoxQuery.image_id == image_id, BoxQuery.status == "answered")
    ).all()


def of_image(session: Session, image_id: int) -> Sequence[BoxQuery]:
    """The image's queries, open and answered, oldest first."""
    return session.scalars(select(BoxQuery).where(BoxQuery.image_id == image_id).order_by(BoxQuery.id)).all()


def replace_open(session: Session, project_id: int, found: list[BoxQuery]) -> None:
    """The project's open queries become ``found``; the answered ones stay."""
    session.query(BoxQuery).filter_by(project_id=project_id, status="open").delete()
    session.add_all(found)
