"""Annotations: adding and deleting them, and the reads over the user's work (counts, box
sizes, the boxes on finished images, the images that hold it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fewclick.server.db import FINISHED, Annotation, Image
from fewclick.server.errors import NotFound

#: the finished images a request learns from (newest first): the look-alikes' exemplars, the
#: fast learner's examples, the edges SAM's click boxes move by
RECENT_FINISHED = 10

# the user's own work: not imported reference (ground truth), not rejected in review
USERS_WORK = (Annotation.reference.is_(False), Annotation.review != "rejected")
# the kinds whose box a finished image teaches from: a mask keeps its box beside it (convert.py)
BOXED = ("box", "mask")
# what a person made or looked at: USERS_WORK without a detector's pre-annotations still pending
PERSONS_WORK = (*USERS_WORK, ~((Annotation.source == "preannotate") & (Annotation.review == "pending")))


def add(session: Session, annotation: Annotation) -> Annotation:
    """Write the new annotation (its image set) at once: it gets its id."""
    session.add(annotation)
    session.flush()
    return annotation


def delete(session: Session, image: Image, ids: Sequence[int]) -> None:
    """Delete these annotations of the image; an id that is not one of them refuses all."""
    for ann_id in ids:
        ann = session.get(Annotation, ann_id)
        if ann is None or ann.image_id != image.id:
            raise NotFound(f"no annotation {ann_id} on image {image.file_name!r}")
        session.delete(ann)


def annotation_counts(session: Session, project_id: int, reference: bool = False) -> dict[int, int]:
    """The number of the user's annotations (reference ones left out; with ``reference``,
    the reference ones only) per image id; images without any are left out."""
    return dict(
        session.execute(
            select(Annotation.image_id, func.count())
            .join(Image)
            .where(Image.project_id == project_id, Annotation.reference.is_(reference))
            .group_by(Annotation.image_id)
        ).all()
    )


def users_work_count(session: Session, project_id: int) -> int | None:
    """The number of the user's annotations in the project (:data:`USERS_WORK`)."""
    return session.scalar(
        select(func.count(Annotation.id))
        .join(Image, Image.id == Annotation.image_id)
        .where(Image.project_id == project_id, *USERS_WORK)
    )


def class_sizes(session: Session, project_id: int) -> dict[int, float]:
    """Median box side in pixels per class id over the user's boxes in the project (for the
    training-free detector; hidden reference boxes stay hidden, rejected ones are wrong);
    classes without boxes are left out."""
    sides: dict[int, list[float]] = {}
    rows = session.execute(
        select(Annotation.class_id, Annotation.geometry)
        .join(Image)
        .where(Image.project_id == project_id, *USERS_WORK)
    ).all()
    for class_id, g in rows:
        if "box" in g:
            x0, y0, x1, y1 = g["box"]
            sides.setdefault(class_id, []).append(float(np.sqrt(max(x1 - x0, 1) * max(y1 - y0, 1))))
    return {k: float(np.median(v)) for k, v in sides.items()}


def finished_boxes(
    session: Session, project_id: int, images: int = RECENT_FINISHED
) -> list[tuple[Image, list]]:
    """The user's boxes on the project's ``images`` most recently finished images that hold
    some: per image ``(image, [(annotation id, exemplar, [class id, x0, y0, x1, y1]), ...])``
    (:func:`user_box_rows`), newest first (what SAM's click boxes learn the person's box
    edges from, and the look-alikes' exemplars)."""
    return [(image, user_box_rows(session, image)) for image in newest_finished(session, project_id, images)]


def finished_masks(session: Session, project_id: int, images: int = 4) -> list[tuple[Image, list[dict]]]:
    """The user's masks (their RLEs) on the project's ``images`` most recently finished
    images that hold some, newest first: what a project's choice among SAM's masks is fit
    on (:mod:`fewclick.server.worker_pick`)."""
    out = []
    for image in newest_finished(session, project_id, images):
        rows = session.scalars(
            select(Annotation.geometry)
            .where(Annotation.image_id == image.id, Annotation.kind == "mask", *USERS_WORK)
            .order_by(Annotation.id)
        ).all()
        masks = [g["mask"] for g in rows if isinstance(g, dict) and isinstance(g.get("mask"), dict)]
        if masks:
            out.append((image, masks))
    return out


def user_boxes(session: Session, image: Image) -> list[list[float]]:
    """The user's boxes on ``image`` (a mask's own box too: :data:`BOXED`): ``[[class id, x0,
    y0, x1, y1], ...]``."""
    return [box for _, _, box in user_box_rows(session, image)]


def user_box_rows(session: Session, image: Image) -> list[tuple[int, bool, list[float]]]:
    """:func:`user_boxes` with each box's annotation id and whether it serves as an exemplar:
    ``[(id, exemplar, [class id, x0, y0, x1, y1]), ...]``, in :func:`user_boxes`' order."""
    rows = session.execute(
        select(Annotation.id, Annotation.exemplar, Annotation.class_id, Annotation.geometry)
        .where(Annotation.image_id == image.id, Annotation.kind.in_(BOXED), *USERS_WORK)
        .order_by(Annotation.id)
    ).all()
    return [(i, bool(e), [c, *map(float, g["box"])]) for i, e, c, g in rows if "box" in g]


def newest_finished(session: Session, project_id: int, images: int = 10) -> list[Image]:
    """The project's ``images`` most recently finished images that hold some of the user's
    boxes, newest first."""
    return session.scalars(
        select(Image)
        .where(
            Image.project_id == project_id,
            Image.status.in_(FINISHED),
            select(Annotation.id)
            .where(Annotation.image_id == Image.id, Annotation.kind.in_(BOXED), *USERS_WORK)
            .exists(),
        )
        .order_by(Image.updated_at.desc(), Image.id.desc())
        .limit(images)
    ).all()


def any_finished(session: Session, project_id: int) -> bool:
    """Whether an image of the project is finished, with boxes or without."""
    finished = select(func.count()).where(Image.project_id == project_id, Image.status.in_(FINISHED))
    return bool(session.scalar(finished))


def most_objects_finished(session: Session, project_id: int) -> int | None:
    """The most of the user's boxes any finished image of the project holds (None before an
    image is finished): the training-free start shows a few times that at most."""
    per_image = (
        select(func.count().label("n"))
        .select_from(Annotation)
        .join(Image)
        .where(Image.project_id == project_id, Image.status.in_(FINISHED), *USERS_WORK)
        .group_by(Annotation.image_id)
        .subquery()
    )
    return session.scalar(select(func.max(per_image.c.n)))


def _annotated(project_id: int, work=USERS_WORK):
    """The project's images holding at least one of the user's annotations (reference and
    rejected ones left out, as training leaves them out): the ones training learns from once
    finished."""
    return select(Image.id).where(
        Image.project_id == project_id,
        select(Annotation.id).where(Annotation.image_id == Image.id, *work).exists(),
    )


def annotated_unfinished(session: Session, project_id: int) -> Sequence[Image]:
    """The project's images that hold a person's annotations and are not finished yet (an
    image holding only pre-annotations nobody reviewed is not finished by "mark done")."""
    ids = _annotated(project_id, PERSONS_WORK).where(Image.status.not_in(FINISHED))
    return session.scalars(select(Image).where(Image.id.in_(ids)).order_by(Image.id)).all()


def finished_annotated(session: Session, project_id: int) -> int:
    """The number of the project's finished images that hold the user's annotations."""
    ids = _annotated(project_id).where(Image.status.in_(FINISHED))
    return session.scalar(select(func.count()).select_from(ids.subquery()))


def finished_kinds(session: Session, project_id: int) -> dict[str, int]:
    """The user's annotations on the project's finished images, counted by kind (box, rbox,
    mask, point), and ``masks``: those with a mask (an oriented box imported with its mask
    is one)."""
    counts = session.execute(
        select(Annotation.kind, func.count())
        .join(Image)
        .where(Image.project_id == project_id, Image.status.in_(FINISHED), *USERS_WORK)
        .group_by(Annotation.kind)
    ).all()
    kinds = {kind: n for kind, n in counts}
    rboxes = kinds.get("rbox", 0) and sum(
        1 for g in finished_mask_geometries(session, project_id, ("rbox",)) if "mask" in g
    )
    return {**kinds, "masks": kinds.get("mask", 0) + rboxes}


def finished_mask_geometries(session: Session, project_id: int, kinds: tuple[str, ...] = ("mask", "rbox")):
    """The geometries of the user's masks and oriented boxes (not rejected; of ``kinds``) on
    the project's finished images."""
    return session.scalars(
        select(Annotation.geometry)
        .join(Image)
        .where(
            Image.project_id == project_id,
            Image.status.in_(FINISHED),
            Annotation.kind.in_(kinds),
            Annotation.reference.is_(False),
            Annotation.review != "rejected",
        )
    )
