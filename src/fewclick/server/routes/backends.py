"""A project's mask backends: which serves and why, the measured comparison, the user's
pick, and starting a comparison job."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.orm import Session

from fewclick.server import serving, store, views
from fewclick.server.db import Project, local_user
from fewclick.server.deps import DB, Config, start_process
from fewclick.server.jobs import run
from fewclick.server.jobs.comparison import too_few
from fewclick.server.jobs.control import reset_stale
from fewclick.server.storage import jobs, rows, versions
from fewclick.wire import answers

router = APIRouter(prefix="/api")


class BackendIn(BaseModel):
    backend: str | None  # None: the measured choice serves


def _backends(session: Session, project: Project) -> dict:
    masks = serving.finished_masks(session, project.id)
    out = views.backends(
        project,
        serving.serving(session, project),
        versions.newest_comparison(session, project.id),
        serving.available(session, project),
        masks,
        max(serving.MIN_MASKS - masks, 0),
    )
    # why SAM's decoder does not serve tuned to the project (None when it can)
    out["sam_tuned"] = serving.unavailable(session, project, "sam_tuned")
    return out


@router.get("/projects/{project_id}/backends", response_model=answers.Backends)
def get_backends(project_id: int, session: DB):
    return _backends(session, rows.get(session, Project, project_id, "project"))


@router.put("/projects/{project_id}/backend", response_model=answers.Backends)
def pick_backend(project_id: int, body: BackendIn, session: DB):
    """The user's pick of the mask backend (None: back to the measured one)."""
    project = rows.get(session, Project, project_id, "project")
    if body.backend is not None:
        serving.check_backend(body.backend)
        reason = serving.unavailable(session, project, body.backend)
        if reason is not None:
            raise store.Conflict(f"{body.backend} cannot serve: {reason}")
    project.mask_backend = body.backend
    session.commit()
    return _backends(session, project)


@router.post("/projects/{project_id}/compare", status_code=202, response_model=answers.Job)
def compare(project_id: int, session: DB, config: Config):
    """Start a job that scores every available backend on the finished masks."""
    project = rows.get(session, Project, project_id, "project")
    reason = too_few(serving.finished_masks(session, project.id))
    if reason is not None:
        raise store.Conflict(reason)
    reset_stale(session, project.id)
    job = jobs.add_job(session, local_user(session), project, "compare")
    session.commit()
    start_process(run.run_comparison, config.db_url, job.id, str(config.models_dir), str(config.embeddings))
    return views.job(job)
