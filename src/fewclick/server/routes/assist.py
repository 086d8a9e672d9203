"""The model in the loop: click-to-detect, box-to-mask and point snapping on an image.

The newest model the project trained for the task serves, in the worker process; before
there is one, the worker's training-free method does.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from fewclick.server import queries, store, worker
from fewclick.server.db import Image
from fewclick.server.deps import DB, Worker
from fewclick.server.training import newest_model

router = APIRouter(prefix="/api")


class DetectIn(BaseModel):
    clicks: list[tuple[float, float, int]] = Field(min_length=1)  # x, y, class id


class SegmentIn(BaseModel):
    box: tuple[float, float, float, float]
    clicks: list[tuple[float, float, bool]] = []  # x, y, positive


class SnapIn(BaseModel):
    x: float
    y: float
    class_id: int


def _outside(image: Image) -> str:
    return f"outside the {image.width} x {image.height} image"


@router.post("/images/{image_id}/detect")
async def detect(image_id: int, body: DetectIn, session: DB, models: Worker):
    image = store.get(session, Image, image_id, "image")
    project = image.project
    position_of = {c.id: c.position for c in project.classes}
    class_of = {c.position: c.id for c in project.classes}
    clicks = []
    for i, (x, y, class_id) in enumerate(body.clicks):
        if class_id not in position_of:
            raise HTTPException(400, f"click {i}: class id {class_id} is not a class of this project")
        if not (0 <= x < image.width and 0 <= y < image.height):
            raise HTTPException(400, f"click {i} at ({x:g}, {y:g}) is {_outside(image)}")
        clicks.append([x, y, position_of[class_id]])
    model = newest_model(session, project.id, "detect")
    # box sizes per class help only the training-free fallback: no query when a model serves
    sizes = {} if model else queries.class_sizes(session, project.id)
    result = await models.run(
        worker.detect,
        image.path,
        model.path if model else None,
        len(project.classes),
        clicks,
        {position_of[k]: v for k, v in sizes.items()},
    )
    names = [c.name for c in project.classes]
    if result.pop("classes") not in (None, names):
        raise HTTPException(
            409,
            f"the project's detector v{model.version} was trained for other classes than {names}: "
            "train again",
        )
    result["labels"] = [class_of[int(label)] for label in result["labels"]]
    result["model_version"] = model.version if model else None
    return result


@router.post("/images/{image_id}/segment")
async def segment(image_id: int, body: SegmentIn, session: DB, models: Worker):
    image = store.get(session, Image, image_id, "image")
    for i, (x, y, _) in enumerate(body.clicks):
        if not (0 <= x < image.width and 0 <= y < image.height):
            raise HTTPException(400, f"click {i} at ({x:g}, {y:g}) is {_outside(image)}")
    model = newest_model(session, image.project_id, "segment")
    return await models.run(
        worker.segment,
        image.path,
        model.path if model else None,
        list(body.box),
        [list(c) for c in body.clicks],
    )


@router.post("/images/{image_id}/snap")
async def snap(image_id: int, body: SnapIn, session: DB, models: Worker):
    image = store.get(session, Image, image_id, "image")
    position_of = {c.id: c.position for c in image.project.classes}
    if body.class_id not in position_of:
        raise HTTPException(400, f"class id {body.class_id} is not a class of this project")
    if not (0 <= body.x <= image.width and 0 <= body.y <= image.height):
        raise HTTPException(400, f"point ({body.x:g}, {body.y:g}) is {_outside(image)}")
    model = newest_model(session, image.project_id, "points")
    others = [
        [*a.geometry["original"], position_of[a.class_id]]
        for a in image.annotations
        if a.kind == "point" and not a.reference
    ]
    return await models.run(
        worker.snap,
        image.path,
        model.path if model else None,
        body.x,
        body.y,
        position_of[body.class_id],
        others,
    )
