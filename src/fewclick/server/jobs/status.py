"""A job's row: its status words and the one way a job's process writes its progress.

A job is ``queued`` until its process starts, ``running`` while it works (a background
trainer also ``paused`` or ``stopping`` on a person's word), and ends ``done`` or ``failed``
(its message says why). Jobs write their row through :func:`update_job`; the app reads it.
"""

from __future__ import annotations

from fewclick.server.db import Job, make_engine, now, session_factory
from fewclick.server.storage import rows

QUEUED, RUNNING, PAUSED, STOPPING, DONE, FAILED = "queued", "running", "paused", "stopping", "done", "failed"
LIVE = (QUEUED, RUNNING)  # a job whose process works or is about to
LIVE_TRAINER = (QUEUED, RUNNING, PAUSED, STOPPING)  # a background trainer with a process


def update_job(db_url: str, job_id: int, **values) -> None:
    """Set these fields of the job row; the first change to ``running`` stamps ``started_at``."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = rows.find(session, Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = now()
        if job.status == RUNNING and job.started_at is None:
            job.started_at = job.updated_at
        session.commit()
    engine.dispose()
