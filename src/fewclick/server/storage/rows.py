"""Any row by its id, the project a row belongs to, and writing what a session holds so far."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fewclick.server.db import Annotation, BoxQuery, Image, Job, ProjectClass
from fewclick.server.errors import NotFound

MAX_ID = 2**31 - 1  # the largest row id or revision every database holds (PostgreSQL's INTEGER)
# a path id -> the query of the project its row belongs to
_OWNER = {
    "image_id": lambda i: select(Image.project_id).where(Image.id == i),
    "annotation_id": lambda i: (
        select(Image.project_id).join(Annotation, Annotation.image_id == Image.id).where(Annotation.id == i)
    ),
    "job_id": lambda i: select(Job.project_id).where(Job.id == i),
    "query_id": lambda i: select(BoxQuery.project_id).where(BoxQuery.id == i),
    "class_id": lambda i: select(ProjectClass.project_id).where(ProjectClass.id == i),
}
#: the path ids whose row belongs to a project, in the order they are looked for
OWNED = tuple(_OWNER)


def get(session: Session, model, key: int, what: str):
    """The row of ``model`` with id ``key``, or NotFound naming ``what`` (an id beyond any
    the database can hold included)."""
    row = session.get(model, key) if 0 < key <= MAX_ID else None
    if row is None:
        raise NotFound(f"no {what} with id {key}")
    return row


def find(session: Session, model, key: int | None):
    """The row of ``model`` with id ``key``, or None."""
    return session.get(model, key)


def project_of(session: Session, name: str, key: int | None) -> int | None:
    """The id of the project that the row named by path id ``name`` (one of :data:`OWNED`)
    with id ``key`` belongs to; None when there is no such row."""
    return session.scalar(_OWNER[name](key))


def write(session: Session) -> None:
    """Send what the session added or changed so far to the database, in the caller's
    transaction: new rows get their ids, and the database's constraints are checked."""
    session.flush()
