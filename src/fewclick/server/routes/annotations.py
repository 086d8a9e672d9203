"""An image's annotations: add, change, delete, and a batch of adds and deletes in one
revision. Every change names the image revision it was made on (409 when that is old) and
answers with the new one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, field_validator

from fewclick.server import store, views
from fewclick.server.db import Annotation, Image, local_user
from fewclick.server.deps import DB
from fewclick.server.serving import check_backend

router = APIRouter(prefix="/api")


class AnnotationIn(BaseModel):
    class_id: int
    kind: str = "box"
    geometry: dict[str, Any]
    score: float | None = None
    quality: float | None = None
    source: str = "manual"
    backend: str | None = None  # the mask backend that made it

    _known_backend = field_validator("backend")(check_backend)


class AnnotationPatch(BaseModel):
    class_id: int | None = None
    kind: str | None = None
    geometry: dict[str, Any] | None = None
    review: str | None = None
    revision: int | None = None


class BatchIn(BaseModel):
    revision: int | None = None
    create: list[AnnotationIn] = []
    delete: list[int] = []


@router.post("/images/{image_id}/annotations", status_code=201)
def add_annotation(image_id: int, body: AnnotationIn, session: DB, revision: int | None = None):
    image = store.get(session, Image, image_id, "image")
    store.check_revision(image, revision)
    user = local_user(session)
    ann = store.add_annotation(session, user, image, body.model_dump())
    store.touch(image, user)
    session.commit()
    return {"annotation": views.annotation(ann), "revision": image.revision}


@router.post("/images/{image_id}/annotations/batch")
def batch(image_id: int, body: BatchIn, session: DB):
    image = store.get(session, Image, image_id, "image")
    store.check_revision(image, body.revision)
    user = local_user(session)
    store.delete_annotations(session, image, body.delete)
    created = [store.add_annotation(session, user, image, a.model_dump()) for a in body.create]
    store.touch(image, user)
    session.commit()
    return {
        "created": [views.annotation(a) for a in created],
        "deleted": body.delete,
        "revision": image.revision,
    }


@router.patch("/annotations/{annotation_id}")
def patch_annotation(annotation_id: int, body: AnnotationPatch, session: DB):
    ann = store.get(session, Annotation, annotation_id, "annotation")
    store.check_revision(ann.image, body.revision)
    user = local_user(session)
    store.update_annotation(session, user, ann, body.model_dump(exclude_unset=True, exclude={"revision"}))
    store.touch(ann.image, user)
    session.commit()
    return {"annotation": views.annotation(ann), "revision": ann.image.revision}


@router.delete("/annotations/{annotation_id}")
def delete_annotation(annotation_id: int, session: DB, revision: int | None = None):
    ann = store.get(session, Annotation, annotation_id, "annotation")
    image = ann.image
    store.check_revision(image, revision)
    store.delete_annotations(session, image, [annotation_id])
    store.touch(image, local_user(session))
    session.commit()
    return {"deleted": annotation_id, "revision": image.revision}
