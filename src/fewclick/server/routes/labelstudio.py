"""Label Studio's ML-backend contract, one backend per project: a Label Studio project
whose model URL is ``http://HOST:PORT/api/projects/<id>/labelstudio`` gets the fewclick
project's detector and masks.

Label Studio calls (label-studio-ml-backend's ``api.py``):
- ``GET  .../health``: ``{"status": "UP"}`` (no credentials needed, so it says only that
  the server is up, for any project id);
- ``POST .../setup``: ``{"project", "schema", "hostname", "access_token"}`` -> ``{"model_version"}``;
  the labeling config must have an Image and a control fewclick fills
  (RectangleLabels, KeyPointLabels, BrushLabels or PolygonLabels) whose labels are
  classes of the project;
- ``POST .../predict``: ``{"tasks", "project", "label_config", "params": {"context"}}``
  -> ``{"results": [{"result", "score", "model_version"}, ...], "model_version"}``, one
  prediction per task. Without context: the project's trained detector (pre-annotation).
  With keypoints in ``context.result`` (Label Studio's interactive mode): click-to-detect
  from those clicks, their label as the class. With a rectangle there: its mask
  (box-to-mask), as a brush mask or, without BrushLabels, as a polygon;
- ``POST .../webhook``: acknowledged (fewclick trains in its own app); public, as Label
  Studio sends it without the backend's credentials, so it answers alike for any project id.

A task's image is the project's image of the same file name (``data.<image field>``, a
path or a Label Studio URL; uploads' 8-character prefix is ignored). A task whose image
the project does not have, or that no model can serve yet (pre-annotation before the
first training), gets an empty prediction whose ``error`` says why. Credentials: Label
Studio's Basic authentication, with the fewclick user's name and a token of theirs
(``fewclick token create NAME``) as the password.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from fewclick.server import labelstudio
from fewclick.server.db import Project
from fewclick.server.deps import DB, Config, Worker
from fewclick.server.storage import rows
from fewclick.wire import answers

router = APIRouter(prefix="/api/projects/{project_id}/labelstudio")


class SetupIn(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    project: str | int | None = None
    schema_: str = Field("", alias="schema")  # "schema" itself is a BaseModel attribute


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[dict]
    project: str | int | None = None
    label_config: str = ""
    params: dict | None = None


@router.get("/health", response_model=answers.Health)
def health(project_id: int):
    """Public: that the server is up, and nothing more (the same for any project id, one
    that does not exist included: no credentials, no answer about projects or models)."""
    return {"status": "UP"}


@router.post("/setup", response_model=answers.ModelVersionName)
def setup(project_id: int, body: SetupIn, session: DB):
    project = rows.get(session, Project, project_id, "project")
    if body.schema_:
        labelstudio.Schema(body.schema_, project)
    return {"model_version": labelstudio.model_version(session, project)}


@router.post("/webhook", status_code=201, response_model=answers.Acknowledged)
def webhook(project_id: int):
    """Public, acknowledged and nothing more: the same answer for any project id."""
    return {}


@router.post("/predict", response_model=answers.Predictions, response_model_exclude_unset=True)
async def predict(project_id: int, body: PredictIn, session: DB, config: Config, models: Worker):
    """One prediction per task (:func:`fewclick.server.labelstudio.predictions`)."""
    project = rows.get(session, Project, project_id, "project")
    return await labelstudio.predictions(
        session, config, models, project, body.tasks, body.label_config, body.params
    )
