"""An image's annotations: add, change, delete, and a batch of adds and deletes in one
revision. Every change names the image revision it was made on (required: 422 without it,
409 when it is old) and answers with the new one.

Bodies are checked before anything is written: every number finite, geometry shaped for
its kind (the image's own checks, e.g. bounds and mask size, follow in the store)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationInfo, field_validator

from fewclick.server import store, views
from fewclick.server.db import ANNOTATION_KINDS, REVIEW_STATES, Annotation, Image, local_user
from fewclick.server.deps import DB
from fewclick.server.limits import MAX_CREATES, MAX_DELETES
from fewclick.server.serving import check_backend
from fewclick.server.storage import annotations, images, rows
from fewclick.wire import answers

router = APIRouter(prefix="/api")

Id = Annotated[int, Field(ge=1, le=rows.MAX_ID)]
Revision = Annotated[int, Field(ge=0, le=rows.MAX_ID)]
Kind = Literal[ANNOTATION_KINDS]
Count = Annotated[int, Field(ge=0)]


class Rle(BaseModel):
    """A COCO RLE: ``size`` [height, width], ``counts`` compressed or a list of runs."""

    model_config = ConfigDict(extra="forbid")
    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    counts: str | list[Count]


Vertices = Annotated[list[tuple[FiniteFloat, FiniteFloat]], Field(min_length=3, max_length=20000)]


class Geometry(BaseModel):
    """The shape of an annotation, the field named by its kind required: ``box`` [x0, y0,
    x1, y1], ``rbox`` [cx, cy, w, h, angle], ``mask`` (with its enclosing box, recomputed
    from the mask; or a ``polygon``'s [x, y] vertices, outlined by hand, which the server
    fills into the mask), ``point`` [x, y] with the ``original`` click; image pixels."""

    model_config = ConfigDict(extra="forbid")
    box: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    rbox: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    mask: Rle | None = None
    polygon: Vertices | None = None
    point: tuple[FiniteFloat, FiniteFloat] | None = None
    original: tuple[FiniteFloat, FiniteFloat] | None = None

    @staticmethod
    def of_kind(geometry: Geometry | None, info: ValidationInfo) -> Geometry | None:
        """A field validator: ``geometry`` holds the field of the ``kind`` given beside it
        (a kind missing or refused is named on its own)."""
        kind = info.data.get("kind")
        if geometry is None or kind is None or getattr(geometry, kind) is not None:
            return geometry
        if kind == "mask" and geometry.polygon is not None:  # outlined: the server fills it
            return geometry
        alternative = " (or 'polygon')" if kind == "mask" else ""
        raise ValueError(f"a {kind} needs '{kind}' in its geometry{alternative}")

    def plain(self) -> dict:
        return self.model_dump(exclude_none=True)


class AnnotationIn(BaseModel):
    class_id: Id
    kind: Kind = "box"
    geometry: Geometry
    score: FiniteFloat | None = None
    quality: FiniteFloat | None = None
    source: str = Field(default="manual", min_length=1, max_length=20)
    backend: str | None = None  # the mask backend that made it

    _known_backend = field_validator("backend")(check_backend)
    _geometry_of_kind = field_validator("geometry")(Geometry.of_kind)

    def plain(self) -> dict:
        return {**self.model_dump(exclude={"geometry"}), "geometry": self.geometry.plain()}


class AnnotationPatch(BaseModel):
    """What a change sets (a field left out keeps its value; null is refused)."""

    class_id: Id | None = None
    kind: Kind | None = None
    geometry: Geometry | None = None
    review: Literal[REVIEW_STATES] | None = None
    revision: Revision

    @field_validator("class_id", "kind", "geometry", "review", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("null is not a value here: leave the field out to keep it")
        return value

    _geometry_of_kind = field_validator("geometry")(Geometry.of_kind)

    def changes(self) -> dict:
        out = self.model_dump(exclude_unset=True, exclude={"revision", "geometry"})
        if self.geometry is not None:
            out["geometry"] = self.geometry.plain()
        return out


class BatchIn(BaseModel):
    revision: Revision
    create: list[AnnotationIn] = Field(default=[], max_length=MAX_CREATES)
    delete: list[Id] = Field(default=[], max_length=MAX_DELETES)


@router.post("/images/{image_id}/annotations", status_code=201, response_model=answers.AnnotationSaved)
def add_annotation(image_id: int, body: AnnotationIn, session: DB, revision: Annotated[Revision, Query()]):
    image = rows.get(session, Image, image_id, "image")
    user = local_user(session)
    new = images.claim_revision(session, image, revision, user)
    ann = store.add_annotation(session, user, image, body.plain())
    session.commit()
    return {"annotation": views.annotation(ann), "revision": new}


@router.post("/images/{image_id}/annotations/batch", response_model=answers.BatchSaved)
def batch(image_id: int, body: BatchIn, session: DB):
    image = rows.get(session, Image, image_id, "image")
    user = local_user(session)
    new = images.claim_revision(session, image, body.revision, user)
    deleted = list(dict.fromkeys(body.delete))  # an id given twice is deleted once
    annotations.delete(session, image, deleted)
    created = [store.add_annotation(session, user, image, a.plain()) for a in body.create]
    session.commit()
    return {
        "created": [views.annotation(a) for a in created],
        "deleted": deleted,
        "revision": new,
    }


@router.patch("/annotations/{annotation_id}", response_model=answers.AnnotationSaved)
def patch_annotation(annotation_id: int, body: AnnotationPatch, session: DB):
    ann = rows.get(session, Annotation, annotation_id, "annotation")
    user = local_user(session)
    new = images.claim_revision(session, ann.image, body.revision, user)
    store.update_annotation(session, user, ann, body.changes())
    session.commit()
    return {"annotation": views.annotation(ann), "revision": new}


class ExemplarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exemplar: bool


@router.put("/annotations/{annotation_id}/exemplar", response_model=answers.ExemplarSet)
def set_exemplar(annotation_id: int, body: ExemplarIn, session: DB):
    """Whether the box's SAM proposal serves as an exemplar of its class's look-alikes (issue
    52): the detect panel's thumbnails remove one. Not a change of the annotation: no revision."""
    ann = rows.get(session, Annotation, annotation_id, "annotation")
    if ann.kind != "box":
        raise store.StoreError(f"annotation {annotation_id} is a {ann.kind}: only a box is an exemplar")
    ann.exemplar = body.exemplar
    session.commit()
    return {"id": ann.id, "exemplar": ann.exemplar}


@router.delete("/annotations/{annotation_id}", response_model=answers.AnnotationDeleted)
def delete_annotation(annotation_id: int, session: DB, revision: Annotated[Revision, Query()]):
    ann = rows.get(session, Annotation, annotation_id, "annotation")
    image = ann.image
    new = images.claim_revision(session, image, revision, local_user(session))
    annotations.delete(session, image, [annotation_id])
    session.commit()
    return {"deleted": annotation_id, "revision": new}
