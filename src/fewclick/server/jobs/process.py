"""Running a job in its own process: a heartbeat while it runs, and a failure the page can show.

While the job runs, a thread stamps ``Job.heartbeat_at`` every ``HEARTBEAT_SECONDS``; the app
takes a queued or running job whose last sign of life is older than
:data:`~fewclick.server.jobs.control.STALE_SECONDS` for one whose process stopped
(:func:`~fewclick.server.jobs.control.reset_stale`). A job that raises is marked failed with
a one-line message and a log reference; the traceback goes to the log under that reference.
A job stopped by SIGTERM (the server stopping it, or its process finding the server gone:
:mod:`fewclick.server.processes`) or SIGINT (Ctrl-C) is marked failed with
:data:`INTERRUPTED`.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

from fewclick.server.db import make_engine, session_factory
from fewclick.server.jobs.status import FAILED, update_job
from fewclick.server.storage import jobs

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
MESSAGE_CHARS = 300  # the most of an error's first line a failed job's message keeps
INTERRUPTED = "the server stopped while the job ran: start it again"


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached the job's process (a ``BaseException``: the job's own ``except
    Exception`` blocks let it through)."""


def run_job(fn, db_url: str, job_id: int, *args, **kwargs) -> None:
    """``fn(db_url, job_id, *args, **kwargs)`` with the job's heartbeat beating and its row
    watched for a person's pause and stop (:mod:`fewclick.server.jobs.pause`); an exception
    marks the job failed (:func:`fail`) instead of ending the process with a traceback, and
    so does SIGTERM or SIGINT, with :data:`INTERRUPTED`."""
    from fewclick.server.jobs.pause import Stopped, stopped, watched

    with heartbeat(db_url, job_id), _stop_signals_raise():
        try:
            with watched(db_url, job_id):
                fn(db_url, job_id, *args, **kwargs)
        except Stopped:  # a person's stop reached a training step (the trainer ends by itself)
            stopped(db_url, job_id)
        except Interrupted:
            interrupted(db_url, job_id)
        except Exception as exc:  # the job row tells the user; the log keeps the traceback
            if _stopped(exc):  # the signal came through as another exception
                interrupted(db_url, job_id)
            else:
                fail(db_url, job_id, exc)


STOPS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` while the block runs (in the main thread
    only: elsewhere Python cannot set a signal handler, and the default stays). SIGINT's
    handler is set too, not left to Python's default: a process started from a shell's
    background job inherits SIGINT ignored, and Ctrl-C would then leave the job running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _interrupt) for sig in STOPS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _stopped(exc: BaseException) -> bool:
    """Whether ``exc`` comes of :class:`Interrupted`: a signal that reached the process while
    a C extension loaded comes out as that extension's error (onnxruntime's import raised
    "ImportError: initialization failed" from it), the Interrupted as its cause."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupt(signum: int, _frame) -> None:
    for sig in STOPS:  # one is enough: the job is being marked
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def interrupted(db_url: str, job_id: int) -> None:
    """Mark the job failed with :data:`INTERRUPTED` unless it has ended already."""
    log.warning("job %d: interrupted by a signal", job_id)
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            jobs.mark_interrupted(session, job_id, INTERRUPTED)
            session.commit()
    finally:
        engine.dispose()


@contextmanager
def heartbeat(db_url: str, job_id: int, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """Stamp the job's ``heartbeat_at`` now and every ``every`` seconds while the block runs."""
    engine = make_engine(db_url)
    beat = partial(_stamp, session_factory(engine), job_id)
    beat()
    stop = threading.Event()
    thread = threading.Thread(target=_beat_until, args=(stop, every, beat), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        engine.dispose()


def _beat_until(stop: threading.Event, every: float, beat) -> None:
    while not stop.wait(every):
        beat()


def _stamp(sessions, job_id: int) -> None:
    try:
        with sessions() as session:
            jobs.stamp_heartbeat(session, job_id)
            session.commit()
    except SQLAlchemyError as exc:  # a busy database: the next beat tries again
        log.warning("job %d: heartbeat not written (%s)", job_id, exc)


def fail(db_url: str, job_id: int, exc: BaseException) -> str:
    """Mark the job failed with the first line of ``exc`` and a log reference, and log the
    traceback under that reference; returns the reference."""
    ref = uuid.uuid4().hex[:8]
    log.error("job %d failed (log ref %s)", job_id, ref, exc_info=exc)
    update_job(db_url, job_id, status=FAILED, message=failure_message(exc, ref))
    return ref


def failure_message(exc: BaseException, ref: str) -> str:
    """``"<first line of the error> (log ref <ref>)"``: what a failed job's page shows."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(first) > MESSAGE_CHARS:
        first = first[: MESSAGE_CHARS - 3] + "..."
    return f"{first} (log ref {ref})"
