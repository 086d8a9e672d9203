"""A project's images: list, upload, open (with its annotations and neighbours), change
status, and the pixels, as the file or as tiles for large images.

An upload stops at the app's upload limit (``Settings.max_upload_mb``, see
:mod:`fewclick.server.limits`): it is read as it arrives, and the first byte over the
limit ends it with 413. Uploads are decoded
in the thread pool, not on the event loop. A file is served only while Pillow reads it as
an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Response, UploadFile
from fastapi.responses import FileResponse
from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from pydantic import BaseModel, StrictBool
from sqlalchemy.exc import SQLAlchemyError

from fewclick.io.images import ImageError
from fewclick.server import accounts, imports, store, tiles, views
from fewclick.server.db import Image, Project, local_user
from fewclick.server.deps import DB, Config, prepare_tiles
from fewclick.server.errors import Duplicate, StoreError
from fewclick.server.jobs.control import train_if_due
from fewclick.server.serving import image_file as existing_file
from fewclick.server.storage import annotations, rows
from fewclick.wire import answers

BROWSER_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "BMP": "image/bmp"}  # others: PNG copies


router = APIRouter(prefix="/api")


class ImagePatch(BaseModel):
    status: str
    empty: StrictBool = False  # finishing an image with no objects: it really is empty


@router.get("/projects/{project_id}/images", response_model=list[answers.Image])
def list_images(project_id: int, session: DB):
    project = rows.get(session, Project, project_id, "project")
    counts = annotations.annotation_counts(session, project.id)
    return [views.image(im, counts.get(im.id, 0)) for im in project.images]


UploadAnswer = answers.Image | answers.Uploaded


@router.post("/projects/{project_id}/images", status_code=201, response_model=UploadAnswer)
def upload_image(
    project_id: int,
    session: DB,
    config: Config,
    response: Response,
    file: Annotated[UploadFile | None, File()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
):
    """One image as the field ``file`` (the image, or the error's status), or one or more as
    ``files``: each said ``added``, ``skipped`` (the same file is there already) or
    ``refused`` with the reason, the others added all the same (201 when one was added,
    else 200). Files stream to disk as they arrive (Starlette spools them past 1 MB)."""
    project = rows.get(session, Project, project_id, "project")
    if (file is None) == (files is None):
        raise HTTPException(422, "send the image as the field 'file', or one or more as 'files'")
    user, folder = local_user(session), config.uploads(project.id)
    if file is not None:
        image = imports.add_upload(session, user, project, file.filename or "", file.file, folder)
        session.commit()
        prepare_tiles(config.tile_cache, [image])
        return views.image(image, 0)
    said = [_one_upload(session, user, project, f, folder) for f in files]
    added = [image for image, _ in said if image is not None]
    prepare_tiles(config.tile_cache, added)
    response.status_code = 201 if added else 200
    return {"files": [answer for _, answer in said]}


def _one_upload(session, user, project: Project, file: UploadFile, folder: Path) -> tuple:
    """``(image or None, the file's answer)``: one file of many, committed alone."""
    name = file.filename or ""
    image = None
    try:
        image = imports.add_upload(session, user, project, name, file.file, folder)
        session.commit()
    except SQLAlchemyError as exc:  # the file is in place but its row is not: neither stays
        session.rollback()
        if image is not None:
            Path(image.path).unlink(missing_ok=True)
        said = f"not saved ({type(exc).__name__}): send it again"
        return None, {"name": name, "status": "refused", "reason": said}
    except Duplicate as exc:
        session.rollback()
        return None, {"name": name, "status": "skipped", "reason": str(exc)}
    except StoreError as exc:
        session.rollback()
        return None, {"name": name, "status": "refused", "reason": str(exc)}
    return image, {"name": name, "status": "added", "image": views.image(image, 0)}


@router.get("/images/{image_id}", response_model=answers.OpenImage)
def get_image(image_id: int, session: DB):
    image = rows.get(session, Image, image_id, "image")
    out = views.image(image, len(image.annotations))
    out["annotations"] = [views.annotation(a) for a in image.annotations if not a.reference]
    out["tiles"] = (
        tiles.info(image.width, image.height) if tiles.is_large(image.width, image.height) else None
    )
    siblings = [im.id for im in image.project.images]
    i = siblings.index(image.id)
    out["previous"] = siblings[i - 1] if i > 0 else None
    out["next"] = siblings[i + 1] if i + 1 < len(siblings) else None
    return out


@router.patch("/images/{image_id}", response_model=answers.MovedImage)
def patch_image(image_id: int, body: ImagePatch, session: DB, config: Config):
    """Change the image's status (one move of ``store.MOVES`` the user's role makes); with
    ``job``, the training job that an annotator's finishing it started by itself (None when
    it started none: a reviewer's move never does). An image with no objects is finished
    only with ``empty`` (409 without)."""
    image = rows.get(session, Image, image_id, "image")
    user = local_user(session)
    objects = sum(not a.reference for a in image.annotations)
    store.finish_check(image, body.status, objects, body.empty)
    moved = store.set_status(image, body.status, user, accounts.role_on(session, user, image.project_id))
    session.commit()
    job = train_if_due(session, config, image.project) if moved == "annotate" else None
    return {**views.image(image, len(image.annotations)), "job": None if job is None else views.job(job)}


@router.get("/images/{image_id}/file", response_class=FileResponse)
def image_file(image_id: int, session: DB, config: Config):
    image = rows.get(session, Image, image_id, "image")
    path = existing_file(image)
    media = BROWSER_TYPES.get(_format(image, path))
    if media is not None:
        return FileResponse(path, media_type=media, headers={"X-Content-Type-Options": "nosniff"})
    try:
        return FileResponse(tiles.browser_copy(config.tile_cache, image.id, image.path))
    except ImageError as exc:
        raise store.Conflict(f"the file of image {image.file_name!r} cannot be read: {exc}") from None


def _format(image: Image, path: Path) -> str:
    """Pillow's name for the format of the image's file; a Conflict naming the file when
    it is not an image (any more)."""
    try:
        with PILImage.open(path) as img:
            return img.format
    except (UnidentifiedImageError, OSError) as exc:  # a file replaced since it was added
        raise store.Conflict(
            f"the file of image {image.file_name!r} ({path}) is not an image ({exc})"
        ) from None


@router.get("/images/{image_id}/tiles/{level}/{col}/{row}", response_class=FileResponse)
def image_tile(image_id: int, level: int, col: int, row: int, session: DB, config: Config):
    image = rows.get(session, Image, image_id, "image")
    existing_file(image)
    try:
        path = tiles.get_tile(
            config.tile_cache, image.id, image.path, image.width, image.height, level, col, row
        )
    except ImageError as exc:
        raise store.Conflict(f"the file of image {image.file_name!r} cannot be read: {exc}") from None
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})
