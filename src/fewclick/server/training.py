"""Training a project's models on its finished images, as a background job.

A job trains the click detector (C3Det) on the images whose status is ``done`` or
``reviewed``, writes ``<models>/<project>/detect/v<N>/last.pt`` and registers model version
N; the newest version serves predictions from then on. Progress goes to the job row
(about once a second), so the UI can show it. Runs in its own process
(:func:`fewclick.server.worker.run_training`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from fewclick.server.db import Image, Job, ModelVersion, Project, make_engine, now, session_factory

FINISHED = ("done", "reviewed")


def _update(db_url: str, job_id: int, **values) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = now()
        session.commit()
    engine.dispose()


def fail(db_url: str, job_id: int, message: str) -> None:
    _update(db_url, job_id, status="failed", message=message[:2000])


def train_project(db_url: str, job_id: int, models_dir: Path, minutes: float) -> None:
    from fewclick.server.store import to_dataset
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        images = session.scalars(
            select(Image).where(Image.project_id == project.id, Image.status.in_(FINISHED))
        ).all()
        data = to_dataset(project, images=images)
        data.images = [r for r in data.images if len(r.objects) and np.isfinite(r.objects.boxes).all(1).any()]
        if not data.images:
            raise ValueError("no finished image with boxes yet: mark annotated images done, then train")
        version = (
            session.scalar(
                select(func.max(ModelVersion.version)).where(
                    ModelVersion.project_id == project.id, ModelVersion.task == "detect"
                )
            )
            or 0
        ) + 1
        project_id, user_id = project.id, job.created_by
    engine.dispose()
    out = Path(models_dir) / str(project_id) / "detect" / f"v{version}"
    _update(
        db_url, job_id, status="running", message=f"training detector v{version} on {len(data.images)} images"
    )
    last = [0.0]

    def progress(step: int, total: int | None) -> None:
        if time.monotonic() - last[0] < 1.0 or total is None:
            return
        last[0] = time.monotonic()
        _update(db_url, job_id, progress=round(step / total, 4))

    config = detector_config_for(data, "c3det")
    path = train_detector(
        data, out, config, TrainConfig(budget_minutes=minutes), log=lambda _: None, progress=progress
    )
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        session.add(
            ModelVersion(
                project_id=project_id,
                task="detect",
                version=version,
                path=str(path),
                images=len(data.images),
                created_by=user_id,
            )
        )
        job = session.get(Job, job_id)
        job.status, job.progress, job.updated_at = "done", 1.0, now()
        job.message = f"detector v{version} trained on {len(data.images)} images"
        session.commit()
    engine.dispose()


def newest_model(session, project_id: int, task: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.task == task)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
