"""What fewclick answers Label Studio's ML backend (the routes and the contract are in
:mod:`fewclick.server.routes.labelstudio`): the labeling config read (:class:`Schema`), the
name of the model version that serves, and one prediction per task (:func:`predictions`):
the project's detections, click-to-detect from the task's keypoints, or the mask of its
rectangle, made by the model-in-the-loop routes' own calls (:mod:`fewclick.server.routes.assist`).

A config that fewclick cannot fill is refused with a :class:`~fewclick.server.errors.StoreError`
(400); a task whose image the project does not have, or that no model can serve yet, gets an
empty prediction whose ``error`` says why.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

import numpy as np
from fastapi import HTTPException

from fewclick.io.dataset import ImageRecord
from fewclick.io.labelstudio import TYPES, image_name, result, uploaded_name
from fewclick.io.rle import rle_boxes
from fewclick.server.db import Image, Project
from fewclick.server.errors import StoreError
from fewclick.server.routes import assist
from fewclick.server.serving import serving_detector
from fewclick.types import Objects
from fewclick.wire.codec import ClassMap

log = logging.getLogger(__name__)

#: Labeling-config tag -> the result type it makes.
CONTROLS = {
    "RectangleLabels": "rectanglelabels",
    "KeyPointLabels": "keypointlabels",
    "BrushLabels": "brushlabels",
    "PolygonLabels": "polygonlabels",
}


class Schema:
    """What fewclick needs of a labeling config: the image field and its control names."""

    def __init__(self, config: str, project: Project) -> None:
        try:
            root = ET.fromstring(config)
        except ET.ParseError as exc:
            raise StoreError(f"the labeling config is not valid XML: {exc}") from None
        images = [
            el for el in root.iter("Image") if el.get("name") and (el.get("value") or "").startswith("$")
        ]
        if not images:
            raise StoreError('the labeling config has no <Image name=".." value="$field"/>')
        self.to_name, self.field = images[0].get("name"), images[0].get("value")[1:]
        self.controls: dict[str, str] = {}
        labels: set[str] = set()
        for tag, kind in CONTROLS.items():
            for el in root.iter(tag):
                if el.get("toName") == self.to_name and kind not in self.controls:
                    self.controls[kind] = el.get("name")
                    labels |= {label.get("value") for label in el.iter("Label")}
        if not self.controls:
            raise StoreError(
                f"the labeling config has no {', '.join(CONTROLS)} control for image {self.to_name!r}"
            )
        classes = {c.name for c in project.classes}
        self.labels = labels
        if labels and not labels & classes:
            raise StoreError(
                f"none of the labeling config's labels {sorted(labels)} is a class of project "
                f"{project.name!r} ({sorted(classes)})",
            )


def model_version(session, project: Project) -> str:
    """The name Label Studio shows for the detector that serves the project."""
    model = serving_detector(session, project.id)
    return (
        f"fewclick-{project.id}-detector-v{model.version}" if model else f"fewclick-{project.id}-no-detector"
    )


async def predictions(
    session, config, models, project: Project, tasks: list[dict], label_config: str, params: dict | None
) -> dict:
    """``{"results": [one prediction per task], "model_version"}`` for Label Studio's tasks,
    read with its labeling config; ``params["context"]`` holds the clicks or the rectangle of
    its interactive mode."""
    schema = Schema(label_config, project)
    version = model_version(session, project)
    context = (params or {}).get("context") or {}
    by_name = {PurePosixPath(im.file_name).name: im for im in project.images}
    results = []
    for task in tasks:
        image = _image(task, schema, by_name)
        if image is None:
            field = (task.get("data") or {}).get(schema.field)
            log.warning("Label Studio task %s: project %s has no image %r", task.get("id"), project.id, field)
            results.append(
                {"result": [], "score": 0.0, "model_version": version, "error": f"no image {field!r}"}
            )
            continue
        try:
            found = await _predict(image, project, schema, context, session, config, models)
        except (
            HTTPException,
            StoreError,
        ) as exc:  # e.g. no trained detector yet: this task's prediction says so
            error = str(exc.detail) if isinstance(exc, HTTPException) else str(exc)
            results.append({"result": [], "score": 0.0, "model_version": version, "error": error})
            continue
        call = uuid.uuid4().hex[:8]  # regions of successive calls on one task must not share ids
        found = [{**r, "id": f"fewclick_{call}_{k}"} for k, r in enumerate(found)]
        scores = [r["score"] for r in found if "score" in r]
        results.append(
            {"result": found, "score": float(np.mean(scores)) if scores else 0.0, "model_version": version}
        )
    return {"results": results, "model_version": version}


def _image(task: dict, schema: Schema, by_name: dict[str, Image]) -> Image | None:
    value = (task.get("data") or {}).get(schema.field)
    if not isinstance(value, str) or not value:
        return None
    name = image_name(value)
    return by_name.get(PurePosixPath(name).name) or by_name.get(uploaded_name(name))


async def _predict(
    image: Image, project: Project, schema: Schema, context: dict, session, config, models
) -> list:
    """Label Studio results for one image: detections, or a mask for a context rectangle."""
    class_ids = {c.name: c.id for c in project.classes}
    names = {c.id: c.name for c in project.classes}
    given = [
        r for r in context.get("result") or [] if isinstance(r, dict) and isinstance(r.get("value"), dict)
    ]
    scale = np.array([image.width, image.height], np.float64) / 100
    clicks, boxes = [], []
    for r in given:
        value, kind = r["value"], r.get("type")
        label = (value.get(kind) or [None])[0] if isinstance(value.get(kind), list) else None
        if kind == "keypointlabels" and label in class_ids:
            x, y = np.array([value["x"], value["y"]], np.float64) * scale
            clicks.append((float(x), float(y), class_ids[label]))
        elif kind == "rectanglelabels":
            x, y = np.array([value["x"], value["y"]], np.float64) * scale
            w, h = np.array([value["width"], value["height"]], np.float64) * scale
            boxes.append(((float(x), float(y), float(x + w), float(y + h)), label))
    record = ImageRecord(image.file_name, image.width, image.height, Objects.empty(), None, image.id)
    classes = [c.name for c in project.classes]
    position = ClassMap(project.classes).position_of
    if boxes:
        out = []
        for box, label in boxes:
            mask = await assist.segment(image.id, assist.SegmentIn(box=box), session, config, models)
            objs = Objects(
                labels=[position[class_ids.get(label, project.classes[0].id)]],
                boxes=rle_boxes([mask["mask"]]),
                segmentations=[mask["mask"]],
            )
            controls = dict(schema.controls)
            if "brushlabels" not in controls:  # a polygon control takes the mask's outline
                objs = _as_polygon(objs, image)
            found = result(objs, 0, record, classes, controls, schema.to_name)
            if found is not None:  # an empty mask is no result
                out.append({**found, "score": mask["score"]})
        return out
    found = await assist.detect(image.id, assist.DetectIn(clicks=clicks), session, config, models)
    rboxes = found.get("rboxes") or [None] * len(found["boxes"])
    out = []
    for box, rbox, class_id, score in zip(
        found["boxes"], rboxes, found["labels"], found["scores"], strict=True
    ):
        if schema.labels and names[class_id] not in schema.labels:
            continue
        objs = Objects(
            labels=[position[class_id]],
            boxes=[box],
            rboxes=None if rbox is None else [rbox],
        )
        one = result(objs, 0, record, classes, {**TYPES, **schema.controls}, schema.to_name)
        if one is not None and one["from_name"] == schema.controls.get("rectanglelabels"):
            out.append({**one, "score": round(float(score), 5)})
    return out


def _as_polygon(objs: Objects, image: Image) -> Objects:
    from fewclick.io.coco_fields import polygon_area
    from fewclick.io.rle import segmentation_outlines

    outlines = segmentation_outlines(objs.segmentations[0], image.height, image.width)
    largest = max(outlines, key=polygon_area) if outlines else None
    return Objects(objs.labels, objs.boxes, segmentations=[[largest]] if largest is not None else [None])
