"""The server's own processes: the job processes it starts, stopped when it stops, and in
every child (a job's process, the model worker) a watch that ends it once the server is gone.

A server stopped by SIGTERM or SIGINT runs the app's shutdown, which stops its children
(:func:`stop_jobs`, :meth:`fewclick.server.worker.ModelWorker.close`). A server killed with
SIGKILL runs no code at all: each child polls its parent's pid (:func:`watch_parent`) and,
once the server is gone, sends itself SIGTERM (a job's process then marks its job failed,
:mod:`fewclick.server.jobs.process`) and exits.

``RUN`` names this server run as ``host:pid:nonce``; a job keeps the run that started it
(``Job.server_run``), so a server starting fails at once every job whose server is known gone
(:func:`run_gone`: a run of this host whose process has exited). Jobs of servers on other
hosts, which may well be running (several app servers on one PostgreSQL database), are
failed only once their heartbeat goes silent.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)

HOST = socket.gethostname()
RUN = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this process's server run (a child's is unused)
PARENT_POLL_SECONDS = 1.0
EXIT_GRACE_SECONDS = 10.0  # a child that SIGTERM did not end by then exits at once
STOP_SECONDS = 10.0  # a child that SIGTERM did not end by then gets SIGKILL
_jobs: list[tuple[BaseProcess, tuple]] = []  # the job processes started, with their arguments
_lock = threading.Lock()


#: glibc's mallopt parameters: the size from which a buffer is its own mapping, and the arenas
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
#: buffers from this size are mapped on their own and go back to the system when freed
MMAP_THRESHOLD = 64 * 1024


def return_freed_memory() -> None:
    """Make this process give large freed buffers back to the system (glibc; elsewhere
    nothing). By default glibc raises its mapping threshold after each large free, so the
    encoder's and a large image's window buffers stay in the heap once used: about 150 MB
    more at peak in the app's worker. Two malloc arenas for the few threads that allocate."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its own policy
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_ARENA_MAX, 2)


def run_id() -> str:
    """This server run's id (``RUN``)."""
    return RUN


def run_gone(run: str | None) -> bool:
    """Whether the server run ``run`` (a ``Job.server_run``) has certainly ended: none
    recorded, one of an older form, or one of this host whose process is no longer alive.
    A run of another host is not known to have ended (False)."""
    host, _, rest = (run or "").partition(":")
    pid, _, nonce = rest.partition(":")
    if not (host and pid.isdigit() and nonce):
        return True
    if host != HOST:
        return False
    return run != RUN and not _alive(int(pid))


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # this process, with another nonce: an app of earlier in this process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def start_job(target, *args) -> None:
    """``target(*args)`` in a new process (spawn) that this one tracks and :func:`stop_jobs`
    stops, and that ends itself once this process is gone."""
    ctx = multiprocessing.get_context("spawn")
    process = ctx.Process(target=_child, args=(os.getpid(), target, *args), daemon=True)
    with _lock:
        _jobs[:] = [(p, a) for p, a in _jobs if p.is_alive() or p.exitcode != 0]  # a death is reaped
        process.start()
        _jobs.append((process, args))


def reap() -> list[tuple[int, tuple]]:
    """The job processes that ended with an error or a signal since the last call (a
    SIGKILL gives -9), as ``(exit code, the job's arguments)``; they are tracked no more."""
    with _lock:
        ended = [(p, a) for p, a in _jobs if not p.is_alive()]
        _jobs[:] = [(p, a) for p, a in _jobs if p.is_alive()]
    return [(p.exitcode, a) for p, a in ended if p.exitcode not in (0, None)]


def _child(parent: int, target, *args) -> None:
    watch_parent(parent)
    target(*args)


def stop_jobs(timeout: float = STOP_SECONDS) -> int:
    """Stop the job processes :func:`start_job` started (SIGTERM, then SIGKILL after
    ``timeout`` seconds); how many were running."""
    with _lock:
        running = [p for p, _ in _jobs if p.is_alive()]
        _jobs.clear()
    stop(running, timeout)
    return len(running)


def stop(processes: Sequence[BaseProcess], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM to each of ``processes``, SIGKILL to those still running ``timeout`` seconds
    later; returns once all have exited."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            log.warning("process %d did not stop within %.0f s of SIGTERM: killed", process.pid, timeout)
            process.kill()
            process.join()


def watch_parent(parent: int, every: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """A daemon thread that ends this process once its parent ``parent`` (a pid) is gone:
    SIGTERM to itself (its handler may clean up), then exit ``EXIT_GRACE_SECONDS`` later."""
    thread = threading.Thread(target=_watch, args=(parent, every), name="parent-watch", daemon=True)
    thread.start()
    return thread


def _watch(parent: int, every: float) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    log.warning("process %d: its parent %d is gone, exiting", os.getpid(), parent)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(EXIT_GRACE_SECONDS)
    os._exit(1)
