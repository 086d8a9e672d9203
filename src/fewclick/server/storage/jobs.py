"""Job rows: a project's live ones, new ones, the stale or orphaned ones, and what a job's
process writes besides its progress (its heartbeat, its interruption)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fewclick.server.db import Job, Project, User, now
from fewclick.server.errors import Conflict
from fewclick.server.jobs.status import FAILED, LIVE

TRAINER = "trainer"  # the job kind of a project's background trainer (fewclick.server.jobs.trainer)


def running_job(session: Session, project_id: int, trainer: bool = False) -> Job | None:
    """The project's queued or running job, if any; its background trainer runs beside the
    other jobs and is not one (:func:`trainer_job`) unless ``trainer``."""
    beside = () if trainer else (Job.kind != TRAINER,)
    return session.scalar(select(Job).where(Job.project_id == project_id, Job.status.in_(LIVE), *beside))


def trainer_job(session: Session, project_id: int) -> Job | None:
    """The project's background trainer while it is queued, running, paused or stopping."""
    return session.scalar(
        select(Job)
        .where(Job.project_id == project_id, Job.kind == TRAINER, Job.status.in_(LIVE))
        .order_by(Job.id.desc())
        .limit(1)
    )


def project_jobs(session: Session, project_id: int) -> Sequence[Job]:
    """The project's jobs, oldest first."""
    return session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id)).all()


def add_job(session: Session, user: User, project: Project, kind: str, trigger: str = "user") -> Job:
    """A queued job for the project; refused while another of its jobs is queued or running."""
    running = running_job(session, project.id)
    if running is not None:
        raise Conflict(
            f"job {running.id} ({running.kind}) is {running.status} for project {project.name!r}: "
            "wait until it ends"
        )
    job = Job(project_id=project.id, kind=kind, trigger=trigger, created_by=user.id)
    session.add(job)
    session.flush()
    return job


def add_trainer(session: Session, project_id: int, user: User, trigger: str, **fields) -> Job:
    """A new background-trainer job of the project (``fields``: its status and message where
    they are not a new job's)."""
    job = Job(project_id=project_id, kind=TRAINER, trigger=trigger, created_by=user.id, **fields)
    session.add(job)
    session.flush()
    return job


def stale(session: Session, before: datetime, project_id: int | None = None) -> Sequence[Job]:
    """The live jobs (of one project, or all) whose last sign of life (heartbeat, else start,
    else creation) is older than ``before``."""
    last = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
    query = select(Job).where(Job.status.in_(LIVE), last < before)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    return session.scalars(query).all()


def live(session: Session) -> Sequence[Job]:
    """Every queued, running, paused or stopping job."""
    return session.scalars(select(Job).where(Job.status.in_(LIVE))).all()


def with_ids(session: Session, ids: Sequence[int]) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.id.in_(ids))).all()


def live_of_run(session: Session, run: str) -> Sequence[Job]:
    """The live jobs the server run ``run`` started."""
    return session.scalars(select(Job).where(Job.status.in_(LIVE), Job.server_run == run)).all()


def set_status_if(session: Session, job_id: int, status: str, allowed: Sequence[str]) -> bool:
    """Set the job's ``status`` only if it is one of ``allowed`` now (one statement: a job's
    process ending it meanwhile is never overwritten); whether it was set."""
    done = session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(allowed)).values(status=status, updated_at=now())
    )
    return done.rowcount == 1


def mark_interrupted(session: Session, job_id: int, message: str) -> None:
    """Mark the job failed with ``message`` unless it has ended already."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(LIVE))
        .values(status=FAILED, message=message, updated_at=now())
    )


def stamp_heartbeat(session: Session, job_id: int) -> None:
    """The job's process is alive now."""
    session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=now()))
