"""Starting training jobs: when the user asks, and by themselves as images get finished.

A project trains by itself once it has ``Project.auto_train_every`` (0: never) more finished
images holding the user's annotations than its newest model was trained on, and none of its
jobs is queued or running. Both ways start the job the same way: a ``Job`` row, then
:func:`fewclick.server.worker.run_training` in a process of its own; the app never waits.
The check and the new row happen under one lock, so two requests finishing images at once
start one job (within one app process; the job row check covers the rest).
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from fewclick.server import queries, store, worker
from fewclick.server.db import Job, Project, local_user
from fewclick.server.deps import Settings, start_process

AUTO_MINUTES = 1.0  # the budget of a job that starts by itself
NOTHING_TO_TRAIN = "no finished image with annotations yet: mark annotated images done, then train"
_lock = threading.Lock()


def start_training(session: Session, config: Settings, project: Project, minutes: float) -> Job:
    """Start a training job the user asked for. :class:`~fewclick.server.store.StoreError`
    (400) when no finished image holds annotations; :class:`~fewclick.server.store.Conflict`
    (409) naming the job while one of the project's jobs is queued or running. No job row
    is written when it is refused."""
    with _lock:
        if queries.finished_annotated(session, project.id) == 0:
            raise store.StoreError(NOTHING_TO_TRAIN)
        return _start(session, config, project, minutes, "user")


def train_if_due(session: Session, config: Settings, project: Project) -> Job | None:
    """Start a training job by itself when the project is due one (module docstring);
    the job, or None. Call it after committing the change that finished images."""
    with _lock:
        if not _due(session, project):
            return None
        return _start(session, config, project, AUTO_MINUTES, "auto")


def _due(session: Session, project: Project) -> bool:
    every = project.auto_train_every
    if every == 0 or queries.running_job(session, project.id) is not None:
        return False
    new = queries.finished_annotated(session, project.id) - queries.trained_on(session, project.id)
    return new >= every


def _start(session: Session, config: Settings, project: Project, minutes: float, trigger: str) -> Job:
    job = store.add_job(session, local_user(session), project, "train", trigger)
    session.commit()
    start_process(
        worker.run_training, config.db_url, job.id, str(config.models_dir), minutes, str(config.embeddings)
    )
    return job
