"""Training jobs: start one on a project's finished images (in its own process), follow
its progress, list a project's jobs."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fewclick.server import queries, store, views, worker
from fewclick.server.db import Job, Project, local_user
from fewclick.server.deps import DB, Config, start_process

router = APIRouter(prefix="/api")


class TrainIn(BaseModel):
    minutes: float = Field(default=3.0, gt=0, le=120)


@router.post("/projects/{project_id}/train", status_code=202)
def train(project_id: int, body: TrainIn, session: DB, config: Config):
    project = store.get(session, Project, project_id, "project")
    job = store.add_job(session, local_user(session), project, "train")
    session.commit()
    start_process(
        worker.run_training,
        config.db_url,
        job.id,
        str(config.models_dir),
        body.minutes,
        str(config.embeddings),
    )
    return views.job(job)


@router.get("/jobs/{job_id}")
def get_job(job_id: int, session: DB):
    return views.job(store.get(session, Job, job_id, "job"))


@router.get("/projects/{project_id}/jobs")
def list_jobs(project_id: int, session: DB):
    store.get(session, Project, project_id, "project")
    return [views.job(j) for j in queries.jobs(session, project_id)]
