"""The review queue's jobs (the queue at request time: :mod:`fewclick.server.box_queue`).

- **Build** (a job in its own process, :func:`build_queue`): the serving detector runs
  without clicks on every image of the project that is not finished; its boxes with
  probability >= t_d (:func:`pool_threshold`), one per object across classes, join the
  queue unless a person already labeled them (IoU >= 0.5 with an annotation of the image
  or with an answered box). The project's open queries are replaced; answered ones stay.
- **Train** (:func:`partly_labeled`): an image that is not finished but holds answers trains
  the detector with the dampened loss (:func:`fewclick.active.labels.partly_labeled_objects`):
  its annotations at weight 1, its boxes answered background as labeled negatives, its
  unanswered boxes as noisy labels at lambda_d, and no loss where no box is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from fewclick.server import exports, serving
from fewclick.server.db import BoxQuery, Image, Job, Project, make_engine, session_factory
from fewclick.server.jobs.status import DONE, RUNNING, update_job
from fewclick.server.storage import box_queries, images, rows

NO_DETECTOR = "no trained detector yet: finish a few images and train first"
OTHER_CLASSES = "detector v{version} knows other classes than the project's: train again"
SCORE_THRESHOLD = 0.2  # t_d at most, as the active-learning benchmark runs
SAME_BOX_IOU = 0.5
MAX_PER_IMAGE = 300  # proposals an image adds at most


def build_queue(db_url: str, job_id: int, models_dir: Path, embeddings: str | None = None) -> None:
    """Run job ``job_id``: the queue of its project from its serving detector."""
    from fewclick.active.pool import one_box_per_object
    from fewclick.predict.detect import ClickDetector, DecodeConfig
    from fewclick.server.worker_detect import knows_classes

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job, project, version = job_detector(session, job_id)
        unfinished = images.unfinished(session, project.id)
        encoder = _encoder(embeddings)
        threshold = pool_threshold(version.metrics)
        decode = DecodeConfig(score_threshold=threshold, max_detections=MAX_PER_IMAGE)
        detector = ClickDetector.load(version.path, decode=decode, encoder=encoder)
        same_ids = version.path in serving.same_classes([version], project)
        if not knows_classes(detector, [c.name for c in project.classes], same_ids):
            raise ValueError(OTHER_CLASSES.format(version=version.version))
        class_ids = [c.id for c in project.classes]
        update_job(db_url, job_id, status=RUNNING, message=f"proposing boxes on {len(unfinished)} images")
        found = []
        for done, image in enumerate(unfinished, 1):
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
            update_job(db_url, job_id, progress=done / max(len(unfinished), 1) * 0.99)
        box_queries.replace_open(session, project.id, found)
        session.commit()
        message = (
            f"{len(found)} boxes to review on {len(unfinished)} images "
            f"(detector v{version.version}, probability >= {threshold:.2f})"
        )
    update_job(db_url, job_id, status=DONE, progress=1.0, message=message)
    engine.dispose()


def job_detector(session: Session, job_id: int):
    """A detector job's row, its project and the project's trained detector version
    (ValueError before one is trained): what the queue and pre-annotation start from."""
    from fewclick.server.serving import trained_detector

    job = rows.find(session, Job, job_id)
    project = rows.find(session, Project, job.project_id)
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
    known += box_queries.answered_boxes(session, image.id)
    if not known or not len(boxes):
        return np.zeros(len(boxes), bool)
    return box_iou(boxes, np.asarray(known, np.float32)).max(1) >= SAME_BOX_IOU


def partly_labeled(session: Session, project: Project) -> list:
    """:class:`~fewclick.io.dataset.ImageRecord` of every image of ``project`` that is not
    finished and holds an answered box, its objects weighted as the module says: its box
    annotations, its boxes answered background, its open queries as noisy labels."""
    from fewclick.active.labels import partly_labeled_objects
    from fewclick.types import Objects

    answered = images.unfinished_with_answers(session, project.id)
    position_of = {c.id: c.position for c in project.classes}
    records = exports.to_dataset(project, images=answered).images
    for record, image in zip(records, answered):
        own = record.objects
        keep = np.isfinite(own.boxes).all(1)
        queries = box_queries.of_image(session, image.id)
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
