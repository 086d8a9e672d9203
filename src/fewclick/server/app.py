"""The annotation web app: ``create_app(db_url, data_dir)`` -> FastAPI application.

The JSON API lives under ``/api`` (one router per resource in :mod:`fewclick.server.routes`);
the browser UI (one page, ``static/``) under ``/``. Every ``/api`` request but the log-in
authenticates and is checked against its user's role (:mod:`fewclick.server.auth`). Every
change to an image's annotations carries the image ``revision`` the client saw; a change
made on an older revision (another tab changed the image since) gets 409 and nothing is
overwritten. Model work (detect, segment, snap) runs in the worker process; training runs
as a job in its own process.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from fewclick.server import logs, store
from fewclick.server.auth import Authenticate, authorize
from fewclick.server.db import init_db, is_busy, session_factory
from fewclick.server.deps import DEFAULT_MAX_UPLOAD_MB, Settings, WorkerHandle, database_busy
from fewclick.server.jobs import control
from fewclick.server.limits import BodyLimit
from fewclick.server.routes import (
    accounts,
    annotations,
    assist,
    backends,
    events,
    fullimage,
    images,
    jobs,
    labelstudio,
    outline,
    projects,
    queue,
)
from fewclick.server.storage import users

STATIC = Path(__file__).parent / "static"
ECHO_CHARS = 200  # the longest refused input (as JSON) a 422 shows back
ROUTERS = (
    accounts.router,
    projects.router,
    images.router,
    annotations.router,
    assist.router,
    fullimage.router,
    outline.router,
    backends.router,
    jobs.router,
    queue.router,
    events.router,
    labelstudio.router,
)


def create_app(
    db_url: str,
    data_dir: str | Path,
    start_worker: bool = True,
    data_roots: Sequence[str | Path] | None = None,
    max_upload_mb: float | None = None,
) -> FastAPI:
    """The app on the database at ``db_url`` (created or migrated to the current schema),
    keeping uploads, tiles and models under ``data_dir``; with ``start_worker`` the model
    worker starts with the app, else on the first request that needs it. Projects are made
    from and import only files under ``data_roots`` (None: ``data_dir``); an upload body
    stops at ``max_upload_mb`` (None: ``DEFAULT_MAX_UPLOAD_MB``)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    roots = tuple(Path(root).expanduser().resolve() for root in (data_roots or [data_dir]))
    missing = [str(root) for root in roots if not root.is_dir()]
    if missing:
        raise ValueError(f"data roots must be existing folders, got {', '.join(missing)}")
    max_upload_mb = DEFAULT_MAX_UPLOAD_MB if max_upload_mb is None else max_upload_mb
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    engine = init_db(db_url)
    app = FastAPI(title="fewclick", lifespan=_lifespan)
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.settings = Settings(db_url, data_dir, roots, max_upload_mb)
    app.state.worker = WorkerHandle()
    app.state.start_worker = start_worker
    app.add_exception_handler(store.StoreError, _store_error)
    app.add_exception_handler(StaleDataError, _stale_row)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_middleware(BodyLimit)  # a body is read (inside the credential check) only up to its limit
    app.add_middleware(Authenticate)  # credentials before any body is read (inside the request ids)
    logs.add_request_ids(app)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(authorize)])
    app.add_api_route("/", _index, include_in_schema=False, response_class=FileResponse)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    with app.state.sessions() as session:
        # their processes ended with an earlier server; its live trainers start again
        control.restart_trainers(session, app.state.settings)
    watch = control.JobWatch(app.state.sessions, app.state.settings).start()
    if app.state.start_worker:
        app.state.worker.start()
    yield
    watch.stop()
    app.state.worker.close()
    with app.state.sessions() as session:
        control.stop_jobs(session)
    app.state.engine.dispose()


async def _store_error(_request: Request, exc: store.StoreError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def _stale_row(_request: Request, _exc: StaleDataError) -> JSONResponse:
    """A row the request changes was deleted by another one meanwhile: nothing was saved."""
    detail = "what this change was made on was changed or deleted elsewhere: reload it; nothing was saved"
    return JSONResponse({"detail": detail}, status_code=409)


async def _database_error(request: Request, exc: OperationalError):
    """A lock another connection held for longer than ``db.BUSY_SECONDS``: 503 with
    Retry-After (nothing was saved, the transaction rolls back); any other failure stays a
    server error."""
    if not is_busy(exc):
        raise exc
    return await http_exception_handler(request, database_busy())


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 naming each problem, able to show the Infinity or NaN it refuses (as
    text: JSON has no such numbers, and answering with them would fail with a 500). A refused
    input is shown back only when short (:func:`_echo`): a 1 MB name or 200,000 events are
    not sent back."""
    errors = jsonable_encoder(exc.errors())
    for error in errors:
        if "input" in error:
            error["input"] = _echo(error["input"])
    return JSONResponse({"detail": _as_json(errors)}, status_code=422)


def _echo(value):
    """``value`` when its JSON is at most :data:`ECHO_CHARS` long, else what it is and its size."""
    if len(json.dumps(value)) <= ECHO_CHARS:
        return value
    if isinstance(value, str):
        return f"(a text of {len(value):,} characters)"
    if isinstance(value, list | dict):
        return f"(a {'list' if isinstance(value, list) else 'object'} of {len(value):,} items)"
    return f"(a value of {len(json.dumps(value)):,} characters as JSON)"


def _as_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def serve(
    db_url: str,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_roots: Sequence[str | Path] | None = None,
    max_upload_mb: float | None = None,
) -> None:
    """Serve the app; beyond this machine (``host`` not loopback) only once it has an admin,
    who can then add the others (``fewclick users add``)."""
    import uvicorn

    from fewclick.server.processes import return_freed_memory

    return_freed_memory()  # the tiles' region reads: large buffers, freed at once
    app = create_app(db_url, data_dir, data_roots=data_roots, max_upload_mb=max_upload_mb)
    if not _loopback(host):
        with app.state.sessions() as session:
            if not users.has_admin(session):
                raise ValueError(
                    f"refusing to serve on {host}, beyond this machine, with no admin user: "
                    "add one with `fewclick users add NAME --role admin --password-stdin`"
                )
    uvicorn.run(app, host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
