"""Images: their rows, revisions and statuses, and the sets of them the jobs read."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from fewclick.server.db import FINISHED, Annotation, BoxQuery, Image, Project, User, now
from fewclick.server.errors import Conflict


def add_image(
    session: Session, project: Project, file_name: str, path: str, width: int, height: int, user: User
) -> Image:
    """A new image of the project: the file at ``path`` under the project's ``file_name``."""
    image = Image(
        project=project, file_name=file_name, path=path, width=width, height=height, updated_by=user.id
    )
    session.add(image)
    return image


def insert_now(session: Session, image: Image) -> None:
    """Write the new image's row at once, in a savepoint: an IntegrityError (the savepoint
    rolled back, the rest of the transaction kept) when an image of its name got in first."""
    with session.begin_nested():
        session.add(image)
        session.flush()


def claim_revision(session: Session, image: Image, seen: int, user: User) -> int:
    """Move the image from revision ``seen`` to the next in one conditional UPDATE, before
    the change it stands for is written: of two writes made on one revision the database
    lets exactly one through, and the other (or a write on an older view: another tab
    changed the image since) gets Conflict. Marks a new image in progress; returns the
    new revision (the one the change is saved under, whatever other writes come after)."""
    claimed = session.execute(
        update(Image)
        .where(Image.id == image.id, Image.revision == seen)
        .values(
            revision=Image.revision + 1,
            updated_at=now(),
            updated_by=user.id,
            status=case((Image.status == "new", "in_progress"), else_=Image.status),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        current = session.scalar(select(Image.revision).where(Image.id == image.id))
        raise Conflict(
            f"image {image.file_name!r} was changed elsewhere (revision {current}, this view has "
            f"{seen}): reload it; nothing was overwritten"
        )
    set_committed_value(image, "revision", seen + 1)
    session.expire(image, ["updated_at", "updated_by", "status"])
    return seen + 1


def status_counts(session: Session, project_id: int) -> dict[str, int]:
    """The number of the project's images per status (statuses without images left out)."""
    return dict(
        session.execute(
            select(Image.status, func.count()).where(Image.project_id == project_id).group_by(Image.status)
        ).all()
    )


def finished(session: Session, project_id: int) -> Sequence[Image]:
    """The project's finished images (done or reviewed): what training reads."""
    return session.scalars(
        select(Image).where(Image.project_id == project_id, Image.status.in_(FINISHED))
    ).all()


def unfinished(session: Session, project_id: int) -> Sequence[Image]:
    """The project's images that are not finished."""
    return session.scalars(
        select(Image).where(Image.project_id == project_id, Image.status.not_in(FINISHED))
    ).all()


def not_started(session: Session, project_id: int) -> list[Image]:
    """The project's images that are not finished and hold no annotation of a user
    (imported reference annotations do not count), in id order."""
    started = exists().where(Annotation.image_id == Image.id, Annotation.reference.is_(False))
    return list(
        session.scalars(
            select(Image)
            .where(Image.project_id == project_id, Image.status.not_in(FINISHED), ~started)
            .order_by(Image.id)
        )
    )


def unfinished_with_answers(session: Session, project_id: int) -> Sequence[Image]:
    """The project's images that are not finished and hold a box the review queue's user
    answered, by file name."""
    answered = select(BoxQuery.image_id).where(
        BoxQuery.project_id == project_id, BoxQuery.status == "answered"
    )
    return session.scalars(
        select(Image).where(Image.id.in_(answered), Image.status.not_in(FINISHED)).order_by(Image.file_name)
    ).all()


def unlabeled_with_reference(session: Session, project_id: int) -> Sequence[Image]:
    """The project's images that hold reference annotations and that nobody has labeled (not
    finished, no annotation of a person's, no answered box of the review queue), by file name."""
    labeled = select(Annotation.image_id).where(Annotation.reference.is_(False))
    answered = select(BoxQuery.image_id).where(BoxQuery.status == "answered")
    with_reference = select(Annotation.image_id).where(Annotation.reference.is_(True))
    return session.scalars(
        select(Image)
        .where(
            Image.project_id == project_id,
            Image.status.not_in(FINISHED),
            Image.id.in_(with_reference),
            Image.id.not_in(labeled),
            Image.id.not_in(answered),
        )
        .order_by(Image.file_name)
    ).all()
