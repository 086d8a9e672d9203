"""The interaction log: one ``Event`` row per user action."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fewclick.server.db import Event, now

MAX_EVENTS = 10000  # the most events one request lists


def add_events(session: Session, project_id: int, user_id: int, events: Sequence[dict[str, Any]]) -> None:
    """Log the user's actions (dicts of :class:`Event` fields; ``at`` without time zone, now
    when missing)."""
    for e in events:
        at = e.get("at")
        session.add(
            Event(
                project_id=project_id,
                image_id=e.get("image_id"),
                user_id=user_id,
                action=e["action"],
                at=at.replace(tzinfo=None) if at else now(),
                duration_ms=e.get("duration_ms"),
                detail=e.get("detail"),
            )
        )


def add_event(session: Session, **fields) -> Event:
    """One event (the :class:`Event` fields), logged by the server itself."""
    event = Event(**fields)
    session.add(event)
    return event


def newest(session: Session, project_id: int, limit: int) -> Sequence[Event]:
    """The project's newest ``limit`` events (at most ``MAX_EVENTS``), newest first."""
    return session.scalars(
        select(Event)
        .where(Event.project_id == project_id)
        .order_by(Event.id.desc())
        .limit(min(limit, MAX_EVENTS))
    ).all()


def in_order(session: Session, project_id: int) -> Sequence[Event]:
    """Every event of the project, in the order they happened."""
    return session.scalars(
        select(Event).where(Event.project_id == project_id).order_by(Event.at, Event.id)
    ).all()
