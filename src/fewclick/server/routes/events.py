"""The interaction log: the browser posts the user's actions, analytics reads them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field, FiniteFloat, field_validator

from fewclick.server import store, views
from fewclick.server.db import Project, local_user
from fewclick.server.deps import DB
from fewclick.server.limits import MAX_EVENT_DETAIL, MAX_EVENTS_PER_POST
from fewclick.server.storage import events as event_log
from fewclick.server.storage import rows
from fewclick.wire import answers

router = APIRouter(prefix="/api")


MAX_EVENTS = 10000  # the most events one list request answers with


class EventIn(BaseModel):
    action: str = Field(min_length=1, max_length=40)
    image_id: int | None = Field(default=None, ge=1, le=rows.MAX_ID)
    at: datetime | None = None
    duration_ms: FiniteFloat | None = Field(default=None, ge=0)
    detail: dict[str, Any] | None = None

    @field_validator("detail")
    @classmethod
    def _finite_and_short(cls, detail: dict[str, Any] | None) -> dict[str, Any] | None:
        """Refuse a detail that JSON cannot answer with (Infinity or NaN anywhere in it), or
        one over :data:`MAX_EVENT_DETAIL` characters as JSON."""
        try:
            text = json.dumps(detail, allow_nan=False)
        except ValueError:
            raise ValueError("expected finite numbers in detail, got Infinity or NaN") from None
        if len(text) > MAX_EVENT_DETAIL:
            raise ValueError(
                f"expected a detail of at most {MAX_EVENT_DETAIL:,} characters as JSON, got {len(text):,}"
            )
        return detail


@router.post("/projects/{project_id}/events", status_code=201, response_model=answers.Logged)
def log_events(
    project_id: int, events: Annotated[list[EventIn], Body(max_length=MAX_EVENTS_PER_POST)], session: DB
):
    """Log the user's actions, at most ``MAX_EVENTS_PER_POST`` in one request (422 beyond)."""
    project = rows.get(session, Project, project_id, "project")
    store.log_events(session, local_user(session), project, [e.model_dump() for e in events])
    session.commit()
    return {"logged": len(events)}


@router.get("/projects/{project_id}/events", response_model=list[answers.Event])
def list_events(project_id: int, session: DB, limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 1000):
    rows.get(session, Project, project_id, "project")
    return [views.event(e) for e in event_log.newest(session, project_id, limit)]
