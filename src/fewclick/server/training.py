"""Training a project's models on its finished images, as a background job.

A job trains, on the images whose status is ``done`` or ``reviewed``, every model their
annotations allow: the click detector (C3Det) when they hold boxes, the box-to-mask models
(M_b, M_b+c) when they hold at least ``MIN_MASKS`` masks, and CPRNet when they hold at least
``MIN_POINTS`` points (refined from the clicks as made). Each model gets its share of the
budget, is written under ``<models>/<project>/<task>/v<N>/`` and registered as version N of
its task; the newest detector and point model serve from then on. With at least ten
finished masks the job ends by comparing the mask backends, whose best serves masks
(:mod:`fewclick.server.comparison`). Progress goes to the job row about once a second.
Runs in its own process (:func:`fewclick.server.worker.run_training`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from fewclick.server.db import FINISHED, Image, Job, ModelVersion, Project, make_engine, now, session_factory

log = logging.getLogger(__name__)

MIN_MASKS = 8
MIN_POINTS = 10
RANKER_INSTANCES = 300
RANKER_FILE = "ranker.pkl"


@dataclass(frozen=True)
class Trained:
    """What a task's training made: the model's folder or file, how it was made (e.g.
    ``"pretrained"`` or ``"scratch"`` for the detector; None where there is one way) and
    what training measured (e.g. ``{"held_out_mAP": {"pretrained": 0.61, "scratch": 0.42}}``)."""

    path: Path
    method: str | None = None
    metrics: dict | None = None


def update_job(db_url: str, job_id: int, **values) -> None:
    """Set these fields of the job row; the first change to ``running`` stamps ``started_at``."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = now()
        if job.status == "running" and job.started_at is None:
            job.started_at = job.updated_at
        session.commit()
    engine.dispose()


def fail(db_url: str, job_id: int, message: str) -> None:
    """Mark the job failed. The row keeps the whole ``message`` (a traceback may follow its
    first line, which is all the job's view shows); the server log gets it too."""
    log.error("job %d failed: %s", job_id, message)
    update_job(db_url, job_id, status="failed", message=message[:2000])


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
    ends by comparing the mask backends (:mod:`fewclick.server.comparison`)."""
    from fewclick.server.comparison import too_few
    from fewclick.server.serving import finished_masks
    from fewclick.server.store import to_dataset

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        images = session.scalars(
            select(Image).where(Image.project_id == project.id, Image.status.in_(FINISHED))
        ).all()
        data = to_dataset(project, images=images)
        data.images = [r for r in data.images if len(r.objects)]
        tasks = _plan(data)
        if not tasks:
            raise ValueError("no finished image with annotations yet: mark annotated images done, then train")
        versions = {
            task: (
                session.scalar(
                    select(func.max(ModelVersion.version)).where(
                        ModelVersion.project_id == project.id, ModelVersion.task == task
                    )
                )
                or 0
            )
            + 1
            for task in tasks
        }
        project_id, user_id = project.id, job.created_by
        compare = embeddings is not None and too_few(finished_masks(session, project.id)) is None
    engine.dispose()
    share = minutes / len(tasks)
    parts = len(tasks) + compare
    done = []
    for i, task in enumerate(tasks):
        out = Path(models_dir) / str(project_id) / task / f"v{versions[task]}"
        message = f"training {task} v{versions[task]} on {len(data.images)} images ({i + 1} of {parts})"
        update_job(db_url, job_id, status="running", message=message, progress=i / parts)
        progress = _reporter(db_url, job_id, i, parts)
        trained = {"detect": _detector, "segment": _segmenter, "points": _cpr}[task](
            data, out, share, progress, steps
        )
        engine = make_engine(db_url)
        with session_factory(engine)() as session:
            session.add(
                ModelVersion(
                    project_id=project_id,
                    task=task,
                    version=versions[task],
                    path=str(trained.path),
                    images=len(data.images),
                    method=trained.method,
                    metrics=trained.metrics,
                    created_by=user_id,
                )
            )
            session.commit()
        engine.dispose()
        done.append(f"{task} v{versions[task]}")
    message = f"trained {', '.join(done)} on {len(data.images)} images"
    if compare:
        from fewclick.server.comparison import compare as compare_backends

        summary = compare_backends(db_url, job_id, models_dir, embeddings, progress=(len(tasks) / parts, 1.0))
        message += f"; {summary}"
    update_job(db_url, job_id, status="done", progress=1.0, message=message)


def _reporter(db_url: str, job_id: int, index: int, count: int):
    last = [0.0]

    def progress(step: int, total: int | None) -> None:
        if total is None or time.monotonic() - last[0] < 1.0:
            return
        last[0] = time.monotonic()
        update_job(db_url, job_id, progress=round((index + step / total) / count, 4))

    return progress


def _detector(data, out: Path, minutes: float, progress, steps: int | None) -> Trained:
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    boxed = []
    for rec in data.images:  # the detector learns from boxes; points-mode objects are CPR's
        keep = np.isfinite(rec.objects.boxes).all(1)
        if keep.any():
            boxed.append(replace(rec, objects=rec.objects[keep]))
    subset = type(data)(data.classes, boxed, data.format)
    path = train_detector(
        subset,
        out,
        detector_config_for(subset, "c3det"),
        TrainConfig(budget_minutes=minutes, steps=steps),
        log=lambda _: None,
        progress=progress,
    )
    return Trained(path, "scratch")


def _segmenter(data, out: Path, minutes: float, progress, steps: int | None) -> Trained:
    """M_b and M_b+c, then the mask-quality ranker on simulated sessions over the finished
    masks (one click per round, as the app re-predicts after every click; the annotator
    stops when no error is over 5% of the object). The finished masks are the models'
    training masks too, so its estimates lean high until more images are finished."""
    from fewclick.predict.segment import MaskPredictor
    from fewclick.protocols.segment import RoundsConfig, run_rounds
    from fewclick.protocols.segment_run import InstanceItems
    from fewclick.quality.ranker import QualityRanker
    from fewclick.train.segment import SegmentTrainConfig, train_segmenter

    progress(0, 1)
    train_segmenter(
        data, out, train=SegmentTrainConfig(budget_minutes=minutes, steps=steps), log=lambda _: None
    )
    sessions = run_rounds(
        MaskPredictor.load(out),
        InstanceItems(data),
        RoundsConfig(rounds=6, clicks_per_round=1, min_region_fraction=0.05, max_instances=RANKER_INSTANCES),
        progress=False,
    )
    if len(sessions.final_ious) >= MIN_MASKS:
        ranker = QualityRanker(with_score=True).fit(sessions.features, sessions.final_ious, sessions.scores)
        ranker.save(out / RANKER_FILE)
    progress(1, 1)
    return Trained(out)


def _cpr(data, out: Path, minutes: float, progress, steps: int | None) -> Trained:
    from fewclick.io.images import load_image
    from fewclick.train.cpr import CPRConfig, PointImage, train_cpr

    images = []
    for rec in data.images:
        o = rec.objects
        if o.points is None:
            continue
        keep = np.isfinite(o.points).all(1)
        original = o.extra.get("original")
        xy = original[keep] if original is not None else o.points[keep]
        images.append(PointImage(load_image(rec.path), xy, o.labels[keep]))
    progress(0, 1)
    path = train_cpr(
        images, data.classes, out, CPRConfig(budget_minutes=minutes, steps=steps), log=lambda _: None
    )
    progress(1, 1)
    return Trained(path)


def newest_model(session, project_id: int, task: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.task == task)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
