"""Training a project's models on its finished images, as a background job.

A job trains, on the images whose status is ``done`` or ``reviewed``, every model their
annotations allow: the click detector (C3Det on the pretrained encoder's features or from
scratch, whichever scores better on held-out finished images:
:mod:`fewclick.server.jobs.detectors`) when they hold boxes, the box-to-mask models (M_b,
M_b+c, the ranker and SAM's decoder tuned: :mod:`fewclick.server.jobs.masks`) when they hold
at least ``MIN_MASKS`` masks, and CPRNet when they hold at least ``MIN_POINTS`` points
(refined from the clicks as made). Each model gets its share of the budget, is written under
``<models>/<project>/<task>/v<N>/`` and registered as version N of its task; the newest
detector and point model serve from then on. With at least ten finished masks the job ends
by comparing the mask backends, whose best serves masks
(:mod:`fewclick.server.jobs.comparison`). Where the project holds reference annotations
(imported ground truth, hidden from the annotator), a new detector is scored without clicks
against them on up to ``REFERENCE_IMAGES`` images nobody has labeled yet (none of its
training images), and its version records that mAP with the boxes labeled so far: the
project page's curve of mAP against boxes labeled. Progress goes to the job row about once a
second.
Runs in its own process (:func:`fewclick.server.jobs.run.run_training`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from fewclick.server.db import Job, Project, make_engine, session_factory
from fewclick.server.jobs.detectors import train_detectors
from fewclick.server.jobs.masks import MIN_MASKS, train_masks
from fewclick.server.jobs.status import DONE, RUNNING, update_job
from fewclick.server.serving import (
    CLASS_IDS,
    Trained,
    TrainingRun,
    class_ids,
    file_key,
    project_encoder,
)
from fewclick.server.storage import annotations, box_queries, images, rows
from fewclick.server.storage.versions import add_version, next_version

log = logging.getLogger(__name__)
MIN_POINTS = 10

REFERENCE_IMAGES = 20  # unlabeled images with reference annotations a new detector is scored on


def _plan(data) -> list[str]:
    """The tasks the finished images allow."""
    boxes = masks = points = 0
    for rec in data.images:
        o = rec.objects
        boxes += int(np.isfinite(o.boxes).all(1).sum())
        masks += sum(1 for s in (o.segmentations or []) if s is not None)
        points += 0 if o.points is None else int(np.isfinite(o.points).all(1).sum())
    tasks = ["detect"] if boxes else []
    if masks >= MIN_MASKS:
        tasks.append("segment")
    if points >= MIN_POINTS:
        tasks.append("points")
    return tasks


@dataclass
class _Plan:
    """What a job reads of its project before it trains: the finished images with
    annotations (``data``), the tasks they allow, each task's next version, and what the
    detector and the comparison need."""

    data: object
    tasks: list[str]
    versions: dict[str, int]
    project_id: int
    user_id: int | None
    compare: bool
    partly: list
    reference: Reference | None
    class_ids: list[int]  # the project's classes as read, by id (a detector serves them renamed)


def train_project(
    db_url: str,
    job_id: int,
    models_dir: Path,
    minutes: float,
    steps: int | None = None,
    embeddings: str | None = None,
) -> None:
    """Run job ``job_id``; ``steps`` fixes every model's steps instead of the minutes (tests).
    With ``embeddings`` (the app's SAM embedding folder) and enough finished masks, the job
    ends by comparing the mask backends (:mod:`fewclick.server.jobs.comparison`)."""
    plan = _read_plan(db_url, job_id, embeddings)
    data, tasks, versions = plan.data, plan.tasks, plan.versions
    share = minutes / len(tasks)
    parts = len(tasks) + plan.compare
    done = []
    for i, task in enumerate(tasks):
        out = Path(models_dir) / str(plan.project_id) / task / f"v{versions[task]}"
        message = f"training {task} v{versions[task]} on {len(data.images)} images ({i + 1} of {parts})"
        update_job(db_url, job_id, status=RUNNING, message=message, progress=i / parts)
        progress = _reporter(db_url, job_id, i, parts)
        run = TrainingRun(data, out, share, progress, steps, embeddings, plan.project_id)
        detector = partial(train_detectors, partly=plan.partly)
        trained = {"detect": detector, "segment": train_masks, "points": _cpr}[task](run)
        if task == "detect" and (plan.partly or plan.reference):
            extra = {"partly_labeled_images": len(plan.partly)} if plan.partly else {}
            if plan.reference and trained.method in ("scratch", "pretrained", "imagenet"):
                update_job(db_url, job_id, message=f"scoring detect v{versions[task]} against the reference")
                extra.update(
                    reference_score(trained.path, plan.reference, data.classes, embeddings, plan.project_id)
                )
            trained = replace(trained, metrics={**(trained.metrics or {}), **extra})
        _register(db_url, plan, task, trained)
        done.append(f"{task} v{versions[task]}")
    message = f"trained {', '.join(done)} on {len(data.images)} images"
    if plan.compare:
        from fewclick.server.jobs.comparison import compare as compare_backends

        summary = compare_backends(db_url, job_id, models_dir, embeddings, progress=(len(tasks) / parts, 1.0))
        message += f"; {summary}"
    _collect(db_url, plan.project_id, models_dir)
    update_job(db_url, job_id, status=DONE, progress=1.0, message=message)


def _collect(db_url: str, project_id: int, models_dir: Path) -> None:
    """The project's model files that nothing names any more go, now that the new versions
    serve (:func:`fewclick.server.model_files.collect`; the trainer's rounds are its own)."""
    from fewclick.server import model_files

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            model_files.collect(session, project_id, models_dir)
    except OSError as exc:
        log.warning("collecting project %s's model files: %s", project_id, exc)
    finally:
        engine.dispose()


def _read_plan(db_url: str, job_id: int, embeddings: str | None) -> _Plan:
    """Read job ``job_id``'s project (see :class:`_Plan`); ValueError when it has no
    finished image with annotations."""
    from fewclick.server.exports import to_dataset
    from fewclick.server.jobs.comparison import too_few
    from fewclick.server.jobs.queue import partly_labeled
    from fewclick.server.serving import finished_masks

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = rows.find(session, Job, job_id)
        project = rows.find(session, Project, job.project_id)
        data = to_dataset(project, images=images.finished(session, project.id))
        data.images = [r for r in data.images if len(r.objects)]
        tasks = _plan(data)
        if not tasks:
            raise ValueError("no finished image with annotations yet: mark annotated images done, then train")
        plan = _Plan(
            data,
            tasks,
            {task: next_version(session, project.id, task) for task in tasks},
            project.id,
            job.created_by,
            embeddings is not None and too_few(finished_masks(session, project.id)) is None,
            partly_labeled(session, project) if "detect" in tasks else [],
            reference_images(session, project) if "detect" in tasks else None,
            class_ids(project),
        )
    engine.dispose()
    return plan


def _register(db_url: str, plan: _Plan, task: str, trained: Trained) -> None:
    """Record ``trained`` as the next version of ``task``: it serves from now on."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        add_version(
            session,
            project_id=plan.project_id,
            task=task,
            version=plan.versions[task],
            path=str(trained.path),
            images=len(plan.data.images),
            method=trained.method,
            metrics=_with_classes(trained.metrics, plan) if task == "detect" else trained.metrics,
            created_by=plan.user_id,
        )
        session.commit()
    engine.dispose()


def _with_classes(metrics: dict | None, plan: _Plan) -> dict:
    """A detector's ``metrics`` with the class ids it learnt (it serves them renamed)."""
    return {**(metrics or {}), CLASS_IDS: plan.class_ids}


@dataclass(frozen=True)
class Reference:
    """What a new detector is scored on: ``records`` (unlabeled images, their reference
    annotations as objects) and ``boxes_labeled``, every box a person labeled in the project
    when the job started (their own box annotations and the review queue's background
    answers)."""

    records: list
    boxes_labeled: int


def reference_images(session, project: Project) -> Reference | None:
    """Up to :data:`REFERENCE_IMAGES` of the project's images that hold reference boxes and
    that nobody has labeled (not finished, no annotation of a person's, no answered box of
    the review queue), evenly spread by file name; None when there are none."""
    from fewclick.server.convert import to_objects

    unlabeled = images.unlabeled_with_reference(session, project.id)
    if not unlabeled:
        return None
    step = max(len(unlabeled) / REFERENCE_IMAGES, 1.0)
    picked = [unlabeled[int(i * step)] for i in range(min(len(unlabeled), REFERENCE_IMAGES))]
    position_of = {c.id: c.position for c in project.classes}
    records = []
    for image in picked:
        anns = [a for a in image.annotations if a.reference and "box" in a.geometry]
        records.append((image.id, image.path, to_objects(anns, position_of, False)))
    boxes = annotations.users_work_count(session, project.id)
    background = box_queries.background_answers(session, project.id)
    return Reference(records, int(boxes or 0) + int(background or 0))


def reference_score(model: Path, reference: Reference, classes, embeddings, project_id) -> dict:
    """mAP@0.5 of ``model`` without clicks on the reference images (VOC07, as everywhere)."""
    from fewclick.io.images import load_image
    from fewclick.metrics.detection import evaluate_detections
    from fewclick.predict.detect import ClickDetector

    detector = ClickDetector.load(model, encoder=project_encoder(embeddings))
    gts, preds = [], []
    for image_id, path, objects in reference.records:
        detector.set_image(load_image(path), key=file_key(project_id, image_id, path))
        preds.append(detector.predict([]))
        gts.append(objects)
    result = evaluate_detections(gts, preds, len(classes))
    return {
        "reference_mAP": None if np.isnan(result.map) else round(float(result.map), 4),
        "reference_images": len(gts),
        "boxes_labeled": reference.boxes_labeled,
    }


def _reporter(db_url: str, job_id: int, index: int, count: int):
    last = [0.0]

    def progress(step: int, total: int | None) -> None:
        if total is None or time.monotonic() - last[0] < 1.0:
            return
        last[0] = time.monotonic()
        update_job(db_url, job_id, progress=round((index + step / total) / count, 4))

    return progress


def _cpr(run: TrainingRun) -> Trained:
    from fewclick.io.images import load_image
    from fewclick.train.cpr import CPRConfig, PointImage, train_cpr

    images = []
    for rec in run.data.images:
        o = rec.objects
        if o.points is None:
            continue
        keep = np.isfinite(o.points).all(1)
        original = o.extra.get("original")
        xy = original[keep] if original is not None else o.points[keep]
        images.append(PointImage(load_image(rec.path), xy, o.labels[keep]))
    run.progress(0, 1)
    config = CPRConfig(budget_minutes=run.minutes, steps=run.steps)
    path = train_cpr(images, run.data.classes, run.out, config)
    run.progress(1, 1)
    return Trained(path)
