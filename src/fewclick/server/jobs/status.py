"""A job's row: its status words and the one way a job's process writes its progress.

A job is ``queued`` until its process starts, ``running`` while it works, ``paused`` or
``stopping`` on a person's word (:mod:`fewclick.server.jobs.pause`), and ends ``done`` or
``failed`` (its message says why). Jobs write their row through :func:`update_job`; the app reads it.
"""

from __future__ import annotations

from fewclick.server.db import Job, make_engine, now, session_factory
from fewclick.server.storage import rows

QUEUED, RUNNING, PAUSED, STOPPING, DONE, FAILED = "queued", "running", "paused", "stopping", "done", "failed"
LIVE = (QUEUED, RUNNING, PAUSED, STOPPING)  # a job whose process works, waits, or is about to


def update_job(db_url: str, job_id: int, **values) -> None:
    """Set these fields of the job row; the first change to ``running`` stamps ``started_at``.
    A job paused or stopping stays so: only a person's Resume runs it again."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = rows.find(session, Job, job_id)
        if values.get("status") == RUNNING and job.status in (PAUSED, STOPPING):
            values.pop("status")  # a person's pause or stop outlives the job's next stage
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = now()
        if job.status == RUNNING and job.started_at is None:
            job.started_at = job.updated_at
        session.commit()
    engine.dispose()
