"""The review queue (:mod:`fewclick.server.box_queue`): build it from the serving detector,
take the box it is least sure of, answer it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from fewclick.server import box_queue, views
from fewclick.server.db import QUERY_ANSWERS, BoxQuery, Image, Project, local_user
from fewclick.server.deps import DB, Config
from fewclick.server.jobs.control import queue_train_if_due, start_queue
from fewclick.server.storage import box_queries, rows
from fewclick.wire import answers

router = APIRouter(prefix="/api")

EMPTY = "no boxes left to review: build the queue again after the next training, or annotate images"


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: Literal[QUERY_ANSWERS]
    seconds: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]
    class_id: Annotated[int, Field(ge=1, le=rows.MAX_ID)] | None = None  # fix: the right class
    box: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None  # fix: the right box
    how: Literal["corner", "extreme", "drag"] | None = None  # how the fixed box was given


@router.post("/projects/{project_id}/queue", status_code=202, response_model=answers.Job)
def build(project_id: int, session: DB, config: Config):
    project = rows.get(session, Project, project_id, "project")
    return views.job(start_queue(session, config, project))


@router.get("/projects/{project_id}/queue", response_model=answers.Queue, response_model_exclude_unset=True)
def queue(project_id: int, session: DB):
    """The queue's counts and the next box (None, with a message, when none is left)."""
    rows.get(session, Project, project_id, "project")
    return {**box_queue.summary(session, project_id), **_next(session, project_id)}


@router.post(
    "/queries/{query_id}/answer", response_model=answers.QueueAnswer, response_model_exclude_unset=True
)
def answer(query_id: int, body: AnswerIn, session: DB, config: Config):
    query = rows.get(session, BoxQuery, query_id, "box query")
    user = local_user(session)
    box = list(body.box) if body.box is not None else None
    annotation = box_queue.answer_query(
        session, user, query, body.answer, body.seconds, body.class_id, box, body.how
    )
    session.commit()
    session.refresh(query)  # the answer was written by a conditional UPDATE
    project = rows.find(session, Project, query.project_id)
    job = queue_train_if_due(session, config, project)
    image = rows.find(session, Image, query.image_id)
    return {
        "query": views.box_query(query),
        "annotation": views.annotation(annotation) if annotation is not None else None,
        "revision": image.revision,
        "training": views.job(job) if job is not None else None,
        **_next(session, project.id),
    }


def _next(session, project_id: int) -> dict:
    found = box_queries.next_open(session, project_id)
    if found is None:
        return {"next": None, "message": EMPTY}
    image = rows.find(session, Image, found.image_id)
    return {"next": {**views.box_query(found), "image": {"width": image.width, "height": image.height}}}
