"""The annotation web app: ``create_app(db_url, data_dir)`` -> FastAPI application.

The JSON API lives under ``/api``; the browser UI (one page, ``static/``) under ``/``.
Every change to an image's annotations carries the image ``revision`` the client saw; a
change made on an older revision (another tab changed the image since) gets 409 and
nothing is overwritten. Model work (detect, segment, snap) runs in the worker process;
training runs as a job in its own process.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import tempfile
import threading
import zipfile
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from fewclick.server import queries, store, tiles, views, worker
from fewclick.server.db import (
    Annotation,
    Image,
    Job,
    Project,
    ProjectClass,
    init_db,
    local_user,
    session_factory,
)
from fewclick.server.training import newest_model

STATIC = Path(__file__).parent / "static"
BROWSER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


# ---------------------------------------------------------------------------- requests
class ProjectIn(BaseModel):
    name: str
    folder: str | None = None
    dataset: str | None = None
    format: str | None = None
    classes: list[str] = []
    reference: bool = False


class ClassIn(BaseModel):
    name: str | None = None
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    key: int | None = Field(default=None, ge=1, le=9)


class ImportIn(BaseModel):
    dataset: str
    format: str | None = None
    reference: bool = False


class AnnotationIn(BaseModel):
    class_id: int
    kind: str = "box"
    geometry: dict[str, Any]
    score: float | None = None
    quality: float | None = None
    source: str = "manual"


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


class ImagePatch(BaseModel):
    status: str


class DetectIn(BaseModel):
    clicks: list[tuple[float, float, int]] = Field(min_length=1)  # x, y, class id


class SegmentIn(BaseModel):
    box: tuple[float, float, float, float]
    clicks: list[tuple[float, float, bool]] = []  # x, y, positive


class SnapIn(BaseModel):
    x: float
    y: float
    class_id: int


class EventIn(BaseModel):
    action: str = Field(min_length=1, max_length=40)
    image_id: int | None = None
    at: datetime | None = None
    duration_ms: float | None = None
    detail: dict[str, Any] | None = None


class TrainIn(BaseModel):
    minutes: float = Field(default=3.0, gt=0, le=120)


# ---------------------------------------------------------------------------- app
def _db(request: Request):
    with request.app.state.sessions() as session:
        yield session


DB = Annotated[Session, Depends(_db)]


def create_app(db_url: str, data_dir: str | Path, start_worker: bool = True) -> FastAPI:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = init_db(db_url)
    sessions = session_factory(engine)
    tile_cache = data_dir / "tiles"
    state: dict[str, Any] = {"worker": None}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if start_worker:
            state["worker"] = worker.ModelWorker()
            state["worker"].submit(worker.warm)
        yield
        if state["worker"] is not None:
            state["worker"].close()
        engine.dispose()

    app = FastAPI(title="fewclick", lifespan=lifespan)
    app.state.sessions = sessions
    app.state.data_dir = data_dir

    @app.exception_handler(store.StoreError)
    async def _store_error(_request: Request, exc: store.StoreError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def in_worker(fn, *args):
        if state["worker"] is None:
            state["worker"] = worker.ModelWorker()
        try:
            return await asyncio.wrap_future(state["worker"].submit(fn, *args))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def prepare_tiles(images: list[Image]) -> None:
        large = [
            (im.id, im.path, im.width, im.height) for im in images if tiles.is_large(im.width, im.height)
        ]
        if large:
            threading.Thread(
                target=lambda: [tiles.prepare(tile_cache, *args) for args in large], daemon=True
            ).start()

    # ------------------------------------------------------------------ projects
    @app.get("/api/projects")
    def list_projects(session: DB):
        return [views.project(p, queries.status_counts(session, p.id)) for p in queries.projects(session)]

    @app.post("/api/projects", status_code=201)
    def create_project(body: ProjectIn, session: DB):
        user = local_user(session)
        project, warnings = store.create_project(
            session, user, body.name, body.folder, body.dataset, body.format, body.classes, body.reference
        )
        session.commit()
        prepare_tiles(project.images)
        return {"project": _project_detail(session, project), "warnings": warnings}

    @app.get("/api/projects/{project_id}")
    def get_project(project_id: int, session: DB):
        return _project_detail(session, store.get(session, Project, project_id, "project"))

    @app.post("/api/projects/{project_id}/classes", status_code=201)
    def add_class(project_id: int, body: ClassIn, session: DB):
        project = store.get(session, Project, project_id, "project")
        if not body.name or not body.name.strip():
            raise HTTPException(400, "a class needs a name")
        if any(c.name == body.name.strip() for c in project.classes):
            raise HTTPException(409, f"class {body.name.strip()!r} exists already")
        store.set_classes(session, project, [body.name.strip()])
        cls = project.classes[-1]
        if body.color:
            cls.color = body.color
        session.commit()
        return views.project_class(cls)

    @app.patch("/api/classes/{class_id}")
    def patch_class(class_id: int, body: ClassIn, session: DB):
        cls = store.get(session, ProjectClass, class_id, "class")
        if body.name is not None:
            name = body.name.strip()
            if not name:
                raise HTTPException(400, "a class needs a name")
            if any(c.name == name and c.id != cls.id for c in cls.project.classes):
                raise HTTPException(409, f"class {name!r} exists already")
            cls.name = name
        if body.color is not None:
            cls.color = body.color
        if body.key is not None:
            for other in cls.project.classes:
                if other.key == body.key and other.id != cls.id:
                    other.key = None
            cls.key = body.key
        session.commit()
        return views.project_class(cls)

    @app.get("/api/projects/{project_id}/images")
    def list_images(project_id: int, session: DB):
        project = store.get(session, Project, project_id, "project")
        counts = queries.annotation_counts(session, project.id)
        return [views.image(im, counts.get(im.id, 0)) for im in project.images]

    @app.post("/api/projects/{project_id}/images", status_code=201)
    async def upload_image(project_id: int, file: Annotated[UploadFile, File()], session: DB):
        project = store.get(session, Project, project_id, "project")
        content = await file.read()
        image = store.add_upload(
            session,
            local_user(session),
            project,
            file.filename or "",
            content,
            data_dir / "uploads" / str(project.id),
        )
        session.commit()
        prepare_tiles([image])
        return views.image(image, 0)

    @app.post("/api/projects/{project_id}/import")
    def import_dataset(project_id: int, body: ImportIn, session: DB):
        project = store.get(session, Project, project_id, "project")
        data = store.read_import(body.dataset, body.format)
        warnings = store.import_annotations(session, local_user(session), project, data, body.reference)
        session.commit()
        return {"project": _project_detail(session, project), "warnings": warnings}

    @app.get("/api/projects/{project_id}/export")
    def export(project_id: int, session: DB, format: str = "coco"):
        project = store.get(session, Project, project_id, "project")
        with tempfile.TemporaryDirectory() as tmp:
            if format == "coco":
                path = store.export(project, "coco", Path(tmp) / "annotations.json")
                content, media, name = path.read_bytes(), "application/json", f"{project.name}.coco.json"
            elif format == "dota":
                folder = store.export(project, "dota", Path(tmp) / "dota")
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                    for f in sorted((folder / "labelTxt").glob("*.txt")):
                        zf.write(f, f"labelTxt/{f.name}")
                content, media, name = buffer.getvalue(), "application/zip", f"{project.name}.dota.zip"
            else:
                raise HTTPException(400, f"export format must be coco or dota, got {format!r}")
        return Response(
            content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    # ------------------------------------------------------------------ images
    @app.get("/api/images/{image_id}")
    def get_image(image_id: int, session: DB):
        image = store.get(session, Image, image_id, "image")
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

    @app.patch("/api/images/{image_id}")
    def patch_image(image_id: int, body: ImagePatch, session: DB):
        image = store.get(session, Image, image_id, "image")
        store.set_status(image, body.status, local_user(session))
        session.commit()
        return views.image(image, len(image.annotations))

    @app.get("/api/images/{image_id}/file")
    def image_file(image_id: int, session: DB):
        image = store.get(session, Image, image_id, "image")
        path = Path(image.path)
        if not path.is_file():
            raise HTTPException(404, f"the file of image {image.file_name!r} is gone from {path}")
        if path.suffix.lower() in BROWSER_SUFFIXES:
            return FileResponse(path)
        return FileResponse(tiles.browser_copy(tile_cache, image.id, image.path))

    @app.get("/api/images/{image_id}/tiles/{level}/{col}/{row}")
    def image_tile(image_id: int, level: int, col: int, row: int, session: DB):
        image = store.get(session, Image, image_id, "image")
        try:
            path = tiles.get_tile(
                tile_cache, image.id, image.path, image.width, image.height, level, col, row
            )
        except ValueError as exc:
            raise HTTPException(404, str(exc)) from None
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    # ------------------------------------------------------------------ annotations
    @app.post("/api/images/{image_id}/annotations", status_code=201)
    def add_annotation(image_id: int, body: AnnotationIn, session: DB, revision: int | None = None):
        image = store.get(session, Image, image_id, "image")
        store.check_revision(image, revision)
        user = local_user(session)
        ann = store.add_annotation(session, user, image, body.model_dump())
        store.touch(image, user)
        session.commit()
        return {"annotation": views.annotation(ann), "revision": image.revision}

    @app.post("/api/images/{image_id}/annotations/batch")
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

    @app.patch("/api/annotations/{annotation_id}")
    def patch_annotation(annotation_id: int, body: AnnotationPatch, session: DB):
        ann = store.get(session, Annotation, annotation_id, "annotation")
        store.check_revision(ann.image, body.revision)
        user = local_user(session)
        store.update_annotation(session, user, ann, body.model_dump(exclude_unset=True, exclude={"revision"}))
        store.touch(ann.image, user)
        session.commit()
        return {"annotation": views.annotation(ann), "revision": ann.image.revision}

    @app.delete("/api/annotations/{annotation_id}")
    def delete_annotation(annotation_id: int, session: DB, revision: int | None = None):
        ann = store.get(session, Annotation, annotation_id, "annotation")
        image = ann.image
        store.check_revision(image, revision)
        store.delete_annotations(session, image, [annotation_id])
        store.touch(image, local_user(session))
        session.commit()
        return {"deleted": annotation_id, "revision": image.revision}

    # ------------------------------------------------------------------ model in the loop
    @app.post("/api/images/{image_id}/detect")
    async def detect(image_id: int, body: DetectIn, session: DB):
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
        result = await in_worker(
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

    @app.post("/api/images/{image_id}/segment")
    async def segment(image_id: int, body: SegmentIn, session: DB):
        image = store.get(session, Image, image_id, "image")
        for i, (x, y, _) in enumerate(body.clicks):
            if not (0 <= x < image.width and 0 <= y < image.height):
                raise HTTPException(400, f"click {i} at ({x:g}, {y:g}) is {_outside(image)}")
        model = newest_model(session, image.project_id, "segment")
        return await in_worker(
            worker.segment,
            image.path,
            model.path if model else None,
            list(body.box),
            [list(c) for c in body.clicks],
        )

    @app.post("/api/images/{image_id}/snap")
    async def snap(image_id: int, body: SnapIn, session: DB):
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
        return await in_worker(
            worker.snap,
            image.path,
            model.path if model else None,
            body.x,
            body.y,
            position_of[body.class_id],
            others,
        )

    @app.post("/api/projects/{project_id}/train", status_code=202)
    def train(project_id: int, body: TrainIn, session: DB):
        project = store.get(session, Project, project_id, "project")
        job = store.add_job(session, local_user(session), project, "train")
        session.commit()
        ctx = multiprocessing.get_context("spawn")
        ctx.Process(
            target=worker.run_training,
            args=(db_url, job.id, str(data_dir / "models"), body.minutes),
            daemon=True,
        ).start()
        return views.job(job)

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: int, session: DB):
        return views.job(store.get(session, Job, job_id, "job"))

    @app.get("/api/projects/{project_id}/jobs")
    def list_jobs(project_id: int, session: DB):
        store.get(session, Project, project_id, "project")
        return [views.job(j) for j in queries.jobs(session, project_id)]

    # ------------------------------------------------------------------ interaction log
    @app.post("/api/projects/{project_id}/events", status_code=201)
    def log_events(project_id: int, events: list[EventIn], session: DB):
        project = store.get(session, Project, project_id, "project")
        store.log_events(session, local_user(session), project, [e.model_dump() for e in events])
        session.commit()
        return {"logged": len(events)}

    @app.get("/api/projects/{project_id}/events")
    def list_events(project_id: int, session: DB, limit: int = 1000):
        store.get(session, Project, project_id, "project")
        return [views.event(e) for e in queries.events(session, project_id, limit)]

    @app.get("/api/projects/{project_id}/analytics")
    def analytics(project_id: int, session: DB):
        from fewclick.server.analytics import project_analytics

        return project_analytics(session, store.get(session, Project, project_id, "project"))

    # ------------------------------------------------------------------ UI
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# ---------------------------------------------------------------------------- views
def _outside(image: Image) -> str:
    return f"outside the {image.width} x {image.height} image"


def _project_detail(session: Session, p: Project) -> dict:
    return views.project_detail(
        p, queries.status_counts(session, p.id), queries.model_versions(session, p.id)
    )


def serve(db_url: str, data_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(db_url, data_dir), host=host, port=port, log_level="info")
