"""The review queue at request time: box-level active learning in the labeling loop
(:mod:`fewclick.active`). The queue is built, and its answers train the detector, in jobs
(:mod:`fewclick.server.jobs.queue`).

- **Next** (:func:`fewclick.server.storage.box_queries.next_open`): the open box of lowest
  probability, i.e. highest classification uncertainty 1 - P, the measure the paper and our
  benchmark rank by.
- **Answer** (:func:`answer_query`): accept (the box becomes an annotation of its class),
  fix (another box or class), or background (no annotation). A box is answered once: a
  second answer, from another user or tab, is a 409 and changes nothing. The annotation
  moves the image's revision like any edit, every answer is logged as an event with its
  seconds, and after every ``Project.queue_train_every`` answers the project's background
  trainer learns from them (started by itself when it is not live).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fewclick.server import store
from fewclick.server.db import Annotation, BoxQuery, Image, User
from fewclick.server.storage import box_queries, events, images, rows, versions


def summary(session: Session, project_id: int) -> dict:
    """Open and answered boxes, answers by kind, and the answers' seconds."""
    out = {"open": 0, "answered": 0, "answers": {}, "seconds": 0.0}
    for status, answer, count, seconds in box_queries.counts(session, project_id):
        out[status] += count
        if answer is not None:
            out["answers"][answer] = count
            out["seconds"] += float(seconds or 0.0)
    return out


def answer_query(
    session: Session,
    user: User,
    query: BoxQuery,
    answer: str,
    seconds: float,
    class_id: int | None = None,
    box: list[float] | None = None,
    how: str | None = None,
) -> Annotation | None:
    """Record ``answer`` to ``query`` (module docstring); the annotation it made, if any.
    ``how`` a fixed box was given (a dragged corner, extreme points, a new drag) goes to
    the event log.
    :class:`store.Conflict` when the box was answered already; :class:`store.StoreError`
    for a fix without a box or class, or a box outside the image. Nothing is written then."""
    image = rows.find(session, Image, query.image_id)
    if answer == "fix" and class_id is None and box is None:
        raise store.StoreError("a fix needs the corrected box, class, or both")
    if not box_queries.take(session, query, user, answer, seconds):
        raise store.Conflict(
            f"box {query.id} was answered already ({_answered(session, query)}): take the next one"
        )
    annotation = None
    if answer in ("accept", "fix"):
        images.claim_revision(session, image, image.revision, user)
        data = {
            "class_id": class_id if class_id is not None else query.class_id,
            "kind": "box",
            "geometry": {"box": list(box if box is not None else query.box)},
            "score": query.score if answer == "accept" else None,
            "source": "queue",
        }
        annotation = store.add_annotation(session, user, image, data)
        box_queries.link_annotation(session, query, annotation.id)
    events.add_event(
        session,
        project_id=query.project_id,
        image_id=image.id,
        user_id=user.id,
        action=f"queue_{answer}",
        duration_ms=seconds * 1000.0,
        detail={"query": query.id, "score": query.score, **({"how": how} if how else {})},
    )
    return annotation


def _answered(session: Session, query: BoxQuery) -> str:
    row = box_queries.answered_by(session, query)
    return f"{row[0]} by {row[1]}" if row else "it is gone"


def answers_since_training(session: Session, project_id: int) -> int:
    """Answers given since the newest detector was trained (all of them before the first)."""
    version = versions.newest_model(session, project_id, "detect")
    return box_queries.answers_since(session, project_id, None if version is None else version.created_at)
