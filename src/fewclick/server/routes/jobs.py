"""Training jobs: start one on a project's finished images (in its own process; see
:mod:`fewclick.server.jobs.control`), follow its progress, list a project's jobs."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fewclick.server import views
from fewclick.server.db import Job, Project
from fewclick.server.deps import DB, Config
from fewclick.server.jobs.control import (
    control_job,
    control_trainer,
    reset_stale,
    start_preannotate,
    start_trainer,
    start_training,
)
from fewclick.server.storage import jobs, rows
from fewclick.wire import answers

router = APIRouter(prefix="/api")


class TrainIn(BaseModel):
    minutes: float = Field(default=3.0, gt=0, le=120, allow_inf_nan=False)


@router.post("/projects/{project_id}/train", status_code=202, response_model=answers.Job)
def train(project_id: int, body: TrainIn, session: DB, config: Config):
    project = rows.get(session, Project, project_id, "project")
    return views.job(start_training(session, config, project, body.minutes))


class TrainerIn(BaseModel):
    action: str = Field(max_length=10)  # start, pause, resume or stop


@router.post("/projects/{project_id}/trainer", status_code=202, response_model=answers.Job)
def trainer(project_id: int, body: TrainerIn, session: DB, config: Config):
    """Start, pause, resume or stop the project's background trainer
    (:mod:`fewclick.server.jobs.trainer`): the trainer's job as it is now."""
    project = rows.get(session, Project, project_id, "project")
    if body.action == "start":
        return views.job(start_trainer(session, config, project))
    return views.job(control_trainer(session, config, project, body.action))


class ControlIn(BaseModel):
    action: str = Field(max_length=10)  # pause, resume or stop


@router.post("/jobs/{job_id}/control", status_code=202, response_model=answers.Job)
def control(job_id: int, body: ControlIn, session: DB, config: Config):
    """Pause, resume or stop a job of any kind (:func:`fewclick.server.jobs.control.control_job`):
    the job as it is now; its process follows within seconds."""
    job = rows.get(session, Job, job_id, "job")
    return views.job(control_job(session, config, job, body.action))


@router.post("/projects/{project_id}/preannotate", status_code=202, response_model=answers.Job)
def preannotate(project_id: int, session: DB, config: Config):
    """The serving detector's boxes, with scores and review pending, on every image nobody
    has started (:mod:`fewclick.server.jobs.preannotate`)."""
    project = rows.get(session, Project, project_id, "project")
    return views.job(start_preannotate(session, config, project))


@router.get("/jobs/{job_id}", response_model=answers.Job)
def get_job(job_id: int, session: DB):
    """The job; one whose process has stopped answering is marked failed first."""
    job = rows.get(session, Job, job_id, "job")
    reset_stale(session, job.project_id)
    return views.job(job)


@router.get("/projects/{project_id}/jobs", response_model=list[answers.Job])
def list_jobs(project_id: int, session: DB):
    """The project's jobs, oldest first; those whose process has stopped answering are marked
    failed first."""
    rows.get(session, Project, project_id, "project")
    reset_stale(session, project_id)
    return [views.job(j) for j in jobs.project_jobs(session, project_id)]
