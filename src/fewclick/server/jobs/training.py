"""Training a project's mask and point models on its finished images, as a job.

A job trains, on the images whose status is ``done`` or ``reviewed``, every model of these
their annotations allow: the box-to-mask models (M_b, M_b+c, the ranker and SAM's decoder
tuned: :mod:`fewclick.server.jobs.masks`) when they hold at least ``MIN_MASKS`` masks, and
CPRNet when they hold at least ``MIN_POINTS`` points (refined from the clicks as made). The
click detector is not among them: the project's background trainer is the one way the app
trains detectors (:mod:`fewclick.server.jobs.trainer`; :func:`fewclick.server.jobs.control.start_training`
starts it beside this job). Each model gets its share of the budget, is written under
``<models>/<project>/<task>/v<N>/`` and registered as version N of its task; the newest point
model serves from then on. With at least ten finished masks the job ends by comparing the
mask backends, whose best serves masks (:mod:`fewclick.server.jobs.comparison`). A person
may pause, resume and stop it from the project page at any training step
(:mod:`fewclick.server.jobs.pause`). Progress goes to the job row about once a second.
Runs in its own process (:func:`fewclick.server.jobs.run.run_training`).

Where the project holds reference annotations (imported ground truth, hidden from the
annotator), the trainer's new detector versions are scored without clicks against them on up
to ``REFERENCE_IMAGES`` images nobody has labeled yet (:func:`reference_score`): the project
page's curve of mAP against boxes labeled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewclick.server.db import Job, Project, make_engine, session_factory
from fewclick.server.jobs.masks import MIN_MASKS, train_masks
from fewclick.server.jobs.status import DONE, RUNNING, update_job
from fewclick.server.serving import Trained, TrainingRun, file_key, project_encoder
from fewclick.server.storage import annotations, box_queries, images, rows
from fewclick.server.storage.versions import add_version, next_version

log = logging.getLogger(__name__)
MIN_POINTS = 10
NO_TASK = (
    f"the finished images hold fewer than {MIN_MASKS} masks and fewer than {MIN_POINTS} points: "
    "nothing for a training job (the background trainer learns the boxes)"
)

REFERENCE_IMAGES = 20  # unlabeled images with reference annotations a new detector is scored on


def tasks_for(kinds: dict[str, int]) -> list[str]:
    """The tasks of a training job that finished images holding ``kinds`` (annotations
    counted by kind: :func:`fewclick.server.storage.annotations.finished_kinds`) allow."""
    tasks = ["segment"] if kinds.get("masks", 0) >= MIN_MASKS else []
    return tasks + (["points"] if kinds.get("point", 0) >= MIN_POINTS else [])


def _plan(data) -> list[str]:
    """The tasks the finished images allow."""
    masks = points = 0
    for rec in data.images:
        o = rec.objects
        masks += sum(1 for s in (o.segmentations or []) if s is not None)
        points += 0 if o.points is None else int(np.isfinite(o.points).all(1).sum())
    return tasks_for({"masks": masks, "point": points})


@dataclass
class _Plan:
    """What a job reads of its project before it trains: the finished images with
    annotations (``data``), the tasks they allow, each task's next version, and whether the
    mask backends are compared after."""

    data: object
    tasks: list[str]
    versions: dict[str, int]
    project_id: int
    user_id: int | None
    compare: bool


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
        trained = {"segment": train_masks, "points": _cpr}[task](run)
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
    """Read job ``job_id``'s project (see :class:`_Plan`); ValueError when its finished
    images allow no model of a job (:data:`NO_TASK`)."""
    from fewclick.server.exports import to_dataset
    from fewclick.server.jobs.comparison import too_few
    from fewclick.server.serving import finished_masks

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = rows.find(session, Job, job_id)
        project = rows.find(session, Project, job.project_id)
        data = to_dataset(project, images=images.finished(session, project.id))
        data.images = [r for r in data.images if len(r.objects)]
        tasks = _plan(data)
        if not tasks:
            raise ValueError(NO_TASK)
        plan = _Plan(
            data,
            tasks,
            {task: next_version(session, project.id, task) for task in tasks},
            project.id,
            job.created_by,
            embeddings is not None and too_few(finished_masks(session, project.id)) is None,
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
            metrics=trained.metrics,
            created_by=plan.user_id,
        )
        session.commit()
    engine.dispose()


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
