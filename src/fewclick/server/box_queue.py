"""The review queue: box-level active learning in the labeling loop (:mod:`fewclick.active`).

- **Build** (a job in its own process, :func:`build_queue`): the serving detector runs
  without clicks on every image of the project that is not finished; its boxes with
  probability >= t_d (:func:`pool_threshold`), one per object across classes, join the
  queue unless a person already labeled them (IoU >= 0.5 with an annotation of the image
  or with an answered box). The project's open queries are replaced; answered ones stay.
- **Next** (:func:`next_query`): the open box of lowest probability, i.e. highest
  classification uncertainty 1 - P, the measure the paper and our benchmark rank by.
- **Train** (:func:`partly_labeled`): an image that is not finished but holds answers trains
  the detector with the dampened loss (:func:`fewclick.active.labels.partly_labeled_objects`):
  its annotations at weight 1, its boxes answered background as labeled negatives, its
  unanswered boxes as noisy labels at lambda_d, and no loss where no box is.
- **Answer** (:func:`answer_query`): accept (the box becomes an annotation of its class),
  fix (another box or class), or background (no annotation). A box is answered once: a
  second answer, from another user or tab, is a 409 and changes nothing. The annotation
  moves the image's revision like any edit, every answer is logged as an event with its
  seconds, and after every ``Project.queue_train_every`` answers a training job starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fewclick.server import store
from fewclick.server.db import (
    FINISHED,
    Annotation,
    BoxQuery,
    Event,
    Image,
    Job,
    Project,
    User,
    make_engine,
    now,
    session_factory,
)

NO_DETECTOR = "no trained detector yet: finish a few images and train first"
OTHER_CLASSES = "detector v{version} knows other classes than the project's: train again"
SCORE_THRESHOLD = 0.2  # t_d at most, as the active-learning benchmark runs
SAME_BOX_IOU = 0.5
MAX_PER_IMAGE = 300  # proposals an image adds at most


def build_queue(db_url: str, job_id: int, models_dir: Path, embeddings: str | None = None) -> None:
    """Run job ``job_id``: the queue of its project from its serving detector."""
    from fewclick.active.pool import one_box_per_object
    from fewclick.predict.detect import ClickDetector, DecodeConfig
    from fewclick.server.training import update_job

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job, project, version = job_detector(session, job_id)
        images = session.scalars(
            select(Image).where(Image.project_id == project.id, Image.status.not_in(FINISHED))
        ).all()
        encoder = _encoder(embeddings)
        threshold = pool_threshold(version.metrics)
        decode = DecodeConfig(score_threshold=threshold, max_detections=MAX_PER_IMAGE)
        detector = ClickDetector.load(version.path, decode=decode, encoder=encoder)
        if list(detector.classes) != [c.name for c in project.classes]:
            raise ValueError(OTHER_CLASSES.format(version=version.version))
        class_ids = [c.id for c in project.classes]
        update_job(db_url, job_id, status="running", message=f"proposing boxes on {len(images)} images")
        found = []
        for done, image in enumerate(images, 1):
            detector.set_image(_pixels(image), key=None)
            det = one_box_per_object(detector.predict(), threshold)
            det = det[~_labeled(session, image, det.boxes)]
            found += [
                BoxQuery(
                    project_id=project.id,
                    image_id=image.id,
                    class_id=class_ids[int(label)],
                    box=[round(float(v), 2) for v in box],
                    score=float(score),
                    model_version=version.version,
                )
                for box, label, score in zip(det.boxes, det.labels, det.scores)
            ]
            update_job(db_url, job_id, progress=done / max(len(images), 1) * 0.99)
        session.query(BoxQuery).filter_by(project_id=project.id, status="open").delete()
        session.add_all(found)
        session.commit()
        message = (
            f"{len(found)} boxes to review on {len(images)} images "
            f"(detector v{version.version}, probability >= {threshold:.2f})"
        )
    update_job(db_url, job_id, status="done", progress=1.0, message=message)
    engine.dispose()


def job_detector(session: Session, job_id: int):
    """A detector job's row, its project and the project's trained detector version
    (ValueError before one is trained): what the queue and pre-annotation start from."""
    from fewclick.server.training import trained_detector

    job = session.get(Job, job_id)
    project = session.get(Project, job.project_id)
    version = trained_detector(session, project.id)
    if version is None:
        raise ValueError(NO_DETECTOR)
    return job, project, version


def pool_threshold(metrics: dict | None) -> float:
    """t_d for a detector version: :data:`SCORE_THRESHOLD`, or half the score of its best
    F1 on held-out finished images where that is lower. Low, for recall, as the paper
    asks: a detector trained on 5 bccd images had its best F1 at 0.13, and at 0.2 it
    offered 3 boxes on 11 images."""
    best = (metrics or {}).get("score_threshold")
    return SCORE_THRESHOLD if best is None else min(SCORE_THRESHOLD, 0.5 * float(best))


def _encoder(embeddings: str | None):
    """The app's pretrained encoder on its embedding cache (None without SAM's files: a
    detector from scratch needs none)."""
    from fewclick.server import embeddings as cache
    from fewclick.server.serving import sam_available

    return cache.encoder(embeddings) if embeddings is not None and sam_available() else None


def _pixels(image: Image) -> np.ndarray:
    from fewclick.io.images import load_image

    return load_image(image.path)


def _labeled(session: Session, image: Image, boxes: np.ndarray) -> np.ndarray:
    """``bool[N]``: the boxes a person already labeled on ``image`` (an annotation's box or
    an answered query's box at IoU >= :data:`SAME_BOX_IOU`); imported reference annotations
    are hidden from the annotator and count for nothing here."""
    from fewclick.metrics.detection import box_iou

    known = [a.geometry["box"] for a in image.annotations if "box" in a.geometry and not a.reference]
    known += session.scalars(
        select(BoxQuery.box).where(BoxQuery.image_id == image.id, BoxQuery.status == "answered")
    ).all()
    if not known or not len(boxes):
        return np.zeros(len(boxes), bool)
    return box_iou(boxes, np.asarray(known, np.float32)).max(1) >= SAME_BOX_IOU


def partly_labeled(session: Session, project: Project) -> list:
    """:class:`~fewclick.io.dataset.ImageRecord` of every image of ``project`` that is not
    finished and holds an answered box, its objects weighted as the module says: its box
    annotations, its boxes answered background, its open queries as noisy labels."""
    from fewclick.active.labels import partly_labeled_objects
    from fewclick.types import Objects

    answered = select(BoxQuery.image_id).where(
        BoxQuery.project_id == project.id, BoxQuery.status == "answered"
    )
    images = session.scalars(
        select(Image).where(Image.id.in_(answered), Image.status.not_in(FINISHED)).order_by(Image.file_name)
    ).all()
    position_of = {c.id: c.position for c in project.classes}
    records = store.to_dataset(project, images=images).images
    for record, image in zip(records, images):
        own = record.objects
        keep = np.isfinite(own.boxes).all(1)
        queries = session.scalars(
            select(BoxQuery).where(BoxQuery.image_id == image.id).order_by(BoxQuery.id)
        ).all()
        noisy = [q for q in queries if q.status == "open"]
        background = [q.box for q in queries if q.status == "answered" and q.answer == "background"]
        record.objects = partly_labeled_objects(
            Objects(own.labels[keep], own.boxes[keep], ignore=own.ignore[keep]),
            np.asarray(background, np.float32).reshape(-1, 4),
            Objects(
                np.asarray([position_of[q.class_id] for q in noisy], np.int64),
                np.asarray([q.box for q in noisy], np.float32).reshape(-1, 4),
            ),
        )
    return records


def next_query(session: Session, project_id: int) -> BoxQuery | None:
    """The open box of lowest probability (None: the queue is empty)."""
    return session.scalars(
        select(BoxQuery)
        .where(BoxQuery.project_id == project_id, BoxQuery.status == "open")
        .order_by(BoxQuery.score, BoxQuery.id)
        .limit(1)
    ).first()


def summary(session: Session, project_id: int) -> dict:
    """Open and answered boxes, answers by kind, and the answers' seconds."""
    rows = session.execute(
        select(BoxQuery.status, BoxQuery.answer, func.count(), func.sum(BoxQuery.seconds))
        .where(BoxQuery.project_id == project_id)
        .group_by(BoxQuery.status, BoxQuery.answer)
    ).all()
    out = {"open": 0, "answered": 0, "answers": {}, "seconds": 0.0}
    for status, answer, count, seconds in rows:
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
    image = session.get(Image, query.image_id)
    if answer == "fix" and class_id is None and box is None:
        raise store.StoreError("a fix needs the corrected box, class, or both")
    taken = session.execute(
        update(BoxQuery)
        .where(BoxQuery.id == query.id, BoxQuery.status == "open")
        .values(status="answered", answer=answer, seconds=seconds, answered_at=now(), answered_by=user.id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise store.Conflict(
            f"box {query.id} was answered already ({_answered(session, query)}): take the next one"
        )
    annotation = None
    if answer in ("accept", "fix"):
        store.claim_revision(session, image, image.revision, user)
        data = {
            "class_id": class_id if class_id is not None else query.class_id,
            "kind": "box",
            "geometry": {"box": list(box if box is not None else query.box)},
            "score": query.score if answer == "accept" else None,
            "source": "queue",
        }
        annotation = store.add_annotation(session, user, image, data)
        session.execute(update(BoxQuery).where(BoxQuery.id == query.id).values(annotation_id=annotation.id))
    session.add(
        Event(
            project_id=query.project_id,
            image_id=image.id,
            user_id=user.id,
            action=f"queue_{answer}",
            duration_ms=seconds * 1000.0,
            detail={"query": query.id, "score": query.score, **({"how": how} if how else {})},
        )
    )
    return annotation


def _answered(session: Session, query: BoxQuery) -> str:
    row = session.execute(
        select(BoxQuery.answer, User.name)
        .join(User, User.id == BoxQuery.answered_by)
        .where(BoxQuery.id == query.id)
    ).first()
    return f"{row[0]} by {row[1]}" if row else "it is gone"


def answers_since_training(session: Session, project_id: int) -> int:
    """Answers given since the newest detector was trained (all of them before the first)."""
    from fewclick.server.training import newest_model

    version = newest_model(session, project_id, "detect")
    query = select(func.count()).where(BoxQuery.project_id == project_id, BoxQuery.status == "answered")
    if version is not None:
        query = query.where(BoxQuery.answered_at > version.created_at)
    return session.scalar(query) or 0
