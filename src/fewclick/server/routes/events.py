"""The interaction log: the browser posts the user's actions, analytics reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fewclick.server import queries, store, views
from fewclick.server.db import Project, local_user
from fewclick.server.deps import DB

router = APIRouter(prefix="/api")


class EventIn(BaseModel):
    action: str = Field(min_length=1, max_length=40)
    image_id: int | None = None
    at: datetime | None = None
    duration_ms: float | None = None
    detail: dict[str, Any] | None = None


@router.post("/projects/{project_id}/events", status_code=201)
def log_events(project_id: int, events: list[EventIn], session: DB):
    project = store.get(session, Project, project_id, "project")
    store.log_events(session, local_user(session), project, [e.model_dump() for e in events])
    session.commit()
    return {"logged": len(events)}


@router.get("/projects/{project_id}/events")
def list_events(project_id: int, session: DB, limit: int = 1000):
    store.get(session, Project, project_id, "project")
    return [views.event(e) for e in queries.events(session, project_id, limit)]
