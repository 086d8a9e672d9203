"""What the routes share, kept on ``app.state`` by :func:`fewclick.server.app.create_app`
and handed to handlers as FastAPI dependencies:

- ``DB``: a database session for the request (the handler commits);
- ``Config``: the app's :class:`Settings` (database URL, data folder and what lies in it,
  the folders projects may read from, the upload limit);
- ``Worker``: the :class:`WorkerHandle` that runs model work in the worker process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from fewclick.server import db, processes, tiles, worker
from fewclick.server.db import Image

DEFAULT_MAX_UPLOAD_MB = 256
log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5  # what a 503 for a locked database asks the client to wait


@dataclass(frozen=True)
class Settings:
    """``data_roots``: the folders (resolved) whose files projects may be made from and
    import (:mod:`fewclick.server.paths`); ``max_upload_mb``: the largest upload body."""

    db_url: str
    data_dir: Path
    data_roots: tuple[Path, ...] = ()
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def tile_cache(self) -> Path:
        return self.data_dir / "tiles"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def embeddings(self) -> Path:
        """SAM's image embeddings, one file per project image and file time."""
        return self.data_dir / "embeddings"

    def uploads(self, project_id: int) -> Path:
        return self.data_dir / "uploads" / str(project_id)


class WorkerHandle:
    """The model-worker process, started by ``start`` or on the first ``run``."""

    def __init__(self) -> None:
        self._worker: worker.ModelWorker | None = None

    def start(self) -> None:
        """Start the process and load the models ahead of the first request."""
        self._worker = worker.ModelWorker()
        self._worker.submit(worker.warm)

    async def run(self, fn, *args):
        """``fn(*args)`` in the worker process; a ``ValueError`` there answers 400, missing
        pretrained model files 409 (the message says how to fetch them). A worker process
        that died is replaced, and the request that found it dead answers 503."""
        from fewclick.predict.pretrained import PretrainedModelError

        if self._worker is None:
            self._worker = worker.ModelWorker()
        try:
            return await asyncio.wrap_future(self._worker.submit(fn, *args))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except PretrainedModelError as exc:
            raise HTTPException(409, str(exc)) from None
        except BrokenProcessPool:
            self._worker.close()
            self._worker = worker.ModelWorker()
            raise HTTPException(503, "the model worker stopped and was restarted: try again") from None

    def later(self, fn, *args) -> None:
        """``fn(*args)`` in the worker process, not waited for: work ahead of a request that
        will need it. A failure is logged (the request that needs the work does it again)."""
        if self._worker is None:
            self._worker = worker.ModelWorker()
        try:
            future = self._worker.submit(fn, *args)
        except BrokenProcessPool:
            return  # the next run() replaces the process
        future.add_done_callback(_log_failure)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("work ahead of a request failed: %r", future.exception())


def database_busy() -> HTTPException:
    """The 503 for a request that did not get a database lock in time (``db.is_busy``)."""
    return HTTPException(
        503,
        f"the database is busy with another write (waited {db.BUSY_SECONDS:g} s): try again in "
        f"{RETRY_AFTER_SECONDS} s; nothing of this request was saved",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def prepare_tiles(cache: Path, images: Iterable[Image]) -> None:
    """Queue the tile pyramids of the large ones among ``images`` for the one background
    thread that makes them (:func:`fewclick.server.tiles.prepare_later`)."""
    for im in images:
        if tiles.is_large(im.width, im.height):
            tiles.prepare_later(cache, im.id, im.path, im.width, im.height)


def start_process(target, *args) -> None:
    """``target(*args)`` in a new process of its own (a job: the app never waits for it),
    which the app stops when it stops (:mod:`fewclick.server.processes`)."""
    processes.start_job(target, *args)


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _worker(request: Request) -> WorkerHandle:
    return request.app.state.worker


DB = Annotated[Session, Depends(_session)]
Config = Annotated[Settings, Depends(_settings)]
Worker = Annotated[WorkerHandle, Depends(_worker)]
