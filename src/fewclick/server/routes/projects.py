"""Projects and their classes: create from a folder or a dataset, settings, import
annotations (from the server's folders, or a file uploaded from the page), mark annotated
images finished, export (COCO, DOTA, COCO panoptic, instance mask PNGs), analytics."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, File, Form, HTTPException, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy.orm import Session

from fewclick.server import accounts, annotation_uploads, exports, imports, paths, store, views
from fewclick.server.db import Project, ProjectClass, local_user
from fewclick.server.deps import DB, Config, Settings, prepare_tiles
from fewclick.server.jobs.control import train_if_due, trainer_steps
from fewclick.server.limits import MAX_CLASSES, MAX_NAME
from fewclick.server.serving import serving_detector
from fewclick.server.storage import images, jobs, projects, rows, versions
from fewclick.wire import answers

router = APIRouter(prefix="/api")


Name = Annotated[str, Field(max_length=MAX_NAME)]
PathText = Annotated[str, Field(max_length=4000)]  # the database's path column
FormatName = Annotated[str, Field(max_length=40)]


class ProjectIn(BaseModel):
    name: Name
    folder: PathText | None = None
    dataset: PathText | None = None
    format: FormatName | None = None
    classes: list[Name] = Field(default=[], max_length=MAX_CLASSES)
    reference: bool = False


class ClassIn(BaseModel):
    """A new class (``isthing`` None: a thing) or the fields of a class to change (None:
    unchanged)."""

    name: Name | None = None
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    key: int | None = Field(default=None, ge=1, le=9)
    isthing: StrictBool | None = None  # False: stuff (sky, road), at most one region per image


class FinishIn(BaseModel):
    status: str = Field(default="done", max_length=20)


# what PATCH on a project may change
SETTINGS = {
    "auto_train_every": store.set_auto_train,
    "queue_train_every": store.set_queue_train,
    "pinned_detector": store.set_pinned_detector,
    "ask_empty": store.set_ask_empty,
}


class ImportIn(BaseModel):
    dataset: PathText
    format: FormatName | None = None
    reference: bool = False


def _detail(session: Session, project: Project, config: Settings) -> dict:
    trainer = jobs.trainer_job(session, project.id)
    out = views.project_detail(
        project,
        images.status_counts(session, project.id),
        versions.model_versions(session, project.id),
        serving_detector(session, project.id),
        trainer,
        config.models_dir,
    )
    if trainer is not None:
        out["trainer"]["steps"] = trainer_steps(config, project.id, trainer)
    return out


def _class_name(project: Project, name: str | None, class_id: int | None = None) -> str:
    """``name`` stripped, for a new class or for the class ``class_id``; 400 when it is
    empty, 409 when another class of the project has it."""
    name = (name or "").strip()
    if not name:
        raise HTTPException(400, "a class needs a name")
    if any(c.name == name and c.id != class_id for c in project.classes):
        raise HTTPException(409, f"class {name!r} exists already")
    return name


@router.get("/projects", response_model=list[answers.ProjectSummary])
def list_projects(session: DB):
    return [views.project(p, images.status_counts(session, p.id)) for p in projects.all_projects(session)]


@router.post("/projects", status_code=201, response_model=answers.ProjectWithWarnings)
def create_project(body: ProjectIn, session: DB, config: Config):
    """A project from a folder under a data root (its readable images; the ones skipped
    are named in ``warnings``) or from a dataset there."""
    user = local_user(session)
    roots = config.data_roots
    folder = None if body.folder is None else paths.allowed(body.folder, roots, "folder")
    dataset = None if body.dataset is None else paths.allowed(body.dataset, roots, "dataset")
    project, warnings = imports.create_project(
        session,
        user,
        body.name,
        folder,
        dataset,
        body.format,
        body.classes,
        body.reference,
        check=lambda data: paths.check_dataset(data, roots, adds_images=True),
        roots=roots,
    )
    session.commit()
    prepare_tiles(config.tile_cache, project.images)
    return {"project": _detail(session, project, config), "warnings": warnings}


@router.get("/projects/{project_id}", response_model=answers.Project)
def get_project(project_id: int, session: DB, config: Config):
    return _detail(session, rows.get(session, Project, project_id, "project"), config)


@router.patch("/projects/{project_id}", response_model=answers.Project)
def patch_project(project_id: int, session: DB, config: Config, body: Annotated[dict[str, Any], Body()]):
    """Change the project's settings (``SETTINGS``); a bad value or an unknown name is a 400
    naming it, and nothing changes."""
    project = rows.get(session, Project, project_id, "project")
    unknown = sorted(set(body) - set(SETTINGS))
    if unknown:
        raise HTTPException(
            400, f"unknown project setting {unknown[0]!r}: expected one of {', '.join(SETTINGS)}"
        )
    for name, value in body.items():
        SETTINGS[name](project, value)
    session.commit()
    return _detail(session, project, config)


@router.post("/projects/{project_id}/finish", response_model=answers.Finished)
def finish(project_id: int, session: DB, config: Config, body: FinishIn | None = None):
    """Mark every image that holds the user's annotations (imported as the project's own
    labels, or made here) and is not finished ``body.status`` (done, or reviewed where the
    user's role also reviews: an admin), then
    start a training job when that makes one due: ``{"finished": n, "job": job or None}``."""
    project = rows.get(session, Project, project_id, "project")
    user = local_user(session)
    role = accounts.role_on(session, user, project.id)
    count = store.finish_annotated(session, user, role, project, (body or FinishIn()).status)
    session.commit()
    job = train_if_due(session, config, project)
    return {"finished": count, "job": None if job is None else views.job(job)}


@router.post("/projects/{project_id}/classes", status_code=201, response_model=answers.ProjectClass)
def add_class(project_id: int, body: ClassIn, session: DB):
    project = rows.get(session, Project, project_id, "project")
    projects.set_classes(session, project, [_class_name(project, body.name)])
    cls = project.classes[-1]
    if body.color:
        cls.color = body.color
    cls.isthing = body.isthing is not False
    session.commit()
    return views.project_class(cls)


@router.patch("/classes/{class_id}", response_model=answers.ProjectClass)
def patch_class(class_id: int, body: ClassIn, session: DB):
    cls = rows.get(session, ProjectClass, class_id, "class")
    if body.name is not None:
        cls.name = _class_name(cls.project, body.name, cls.id)
    if body.color is not None:
        cls.color = body.color
    if body.key is not None:
        for other in cls.project.classes:
            if other.key == body.key and other.id != cls.id:
                other.key = None
        cls.key = body.key
    if body.isthing is not None:
        cls.isthing = body.isthing
    session.commit()
    return views.project_class(cls)


@router.post("/projects/{project_id}/import", response_model=answers.ProjectWithWarnings)
def import_dataset(project_id: int, body: ImportIn, session: DB, config: Config):
    project = rows.get(session, Project, project_id, "project")
    # a slide's annotations name its size, over the pixel limit on declared sizes
    largest = max((i.width * i.height for i in project.images), default=0)
    data = imports.read_import(
        paths.allowed(body.dataset, config.data_roots, "dataset"), body.format, largest
    )
    paths.check_dataset(data, config.data_roots, adds_images=False)
    warnings = imports.import_annotations(session, local_user(session), project, data, body.reference)
    session.commit()
    return {"project": _detail(session, project, config), "warnings": warnings}


@router.post(
    "/projects/{project_id}/import/upload",
    response_model=answers.ImportedFile,
    responses={409: {"model": answers.UnknownClasses, "description": "classes not in the project"}},
)
def import_upload(
    project_id: int,
    session: DB,
    config: Config,
    file: Annotated[UploadFile, File()],
    format: Annotated[FormatName | None, Form()] = None,
    reference: Annotated[bool, Form()] = False,
    add_classes: Annotated[bool, Form()] = False,
):
    """One annotation file from the person's disk (COCO, Label Studio or points JSON, CVAT
    XML; see :mod:`fewclick.server.annotation_uploads`), streamed to disk as it arrives and
    imported as ``/import`` imports: its objects on the project's images of their file
    names, the others named in ``warnings``. Objects of classes the project lacks are a 409
    naming them in ``unknown_classes``, and nothing is imported, unless ``add_classes``."""
    project = rows.get(session, Project, project_id, "project")
    user, folder = local_user(session), config.uploads(project.id)
    options = annotation_uploads.ImportOptions(format, reference, add_classes)
    try:
        done = annotation_uploads.import_file(
            session, user, project, file.filename or "", file.file, folder, options
        )
    except annotation_uploads.UnknownClasses as exc:
        return JSONResponse({"detail": str(exc), "unknown_classes": exc.names}, status_code=exc.status)
    session.commit()
    return {
        "name": done.file_name,
        "format": done.format,
        "annotations": done.annotations,
        "images": done.images,
        "classes_added": done.classes_added,
        "warnings": done.warnings,
        "project": _detail(session, project, config),
    }


@router.get("/projects/{project_id}/export", response_class=Response)
def export(project_id: int, session: DB, format: str = "coco"):
    """The project's annotations as a download: ``coco`` as one JSON file; ``dota``,
    ``coco_panoptic`` (or ``coco-panoptic``) and ``masks`` as a zip of their folder."""
    project = rows.get(session, Project, project_id, "project")
    key = exports.export_format(format)
    with tempfile.TemporaryDirectory() as tmp:
        path = exports.export(project, key, Path(tmp))
        if path.is_file():
            content, media, name = path.read_bytes(), "application/json", f"{project.name}.{key}.json"
        else:
            content, media, name = _zip(path), "application/zip", f"{project.name}.{key}.zip"
    return Response(content, media_type=media, headers={"Content-Disposition": attachment(name)})


def _zip(folder: Path) -> bytes:
    """The files under ``folder`` as a zip, named relative to it (links to images are not
    followed: an export holds annotations only)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.is_symlink():
                zf.write(f, f.relative_to(folder).as_posix())
    return buffer.getvalue()


def attachment(name: str) -> str:
    """A Content-Disposition header for a download named ``name``, per RFC 6266: an ASCII
    ``filename`` (other characters, quotes and backslashes as ``_``) for old clients, and
    the name itself as UTF-8 in ``filename*`` (RFC 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/projects/{project_id}/analytics", response_model=answers.Analytics)
def analytics(project_id: int, session: DB):
    from fewclick.server.analytics import project_analytics

    return project_analytics(session, rows.get(session, Project, project_id, "project"))
