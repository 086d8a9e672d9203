"""Pausing and stopping any job from the project page, and the pace its training goes at
(issue 53: every training, of every model kind, can be paused, resumed and stopped).

A job's process watches its own row (:class:`Watch`, a thread, every ``WATCH_SECONDS``).
Every training in fewclick steps a torch optimizer, so one hook on every optimizer's step
(:func:`_on_step`, registered in the job's process) serves them all: while the row says
``paused`` the step waits there, the model held in memory, and Resume goes on from that very
step; once the row says ``stopping`` the step raises :class:`Stopped`. Work between steps
(scoring a candidate, writing its files) is not cut short by the hook: when the process has
not ended ``STOP_GRACE`` seconds after the row said ``stopping``, the watch marks the job
stopped and ends the process at once (:func:`os._exit`). What it left half-written is named
by no version and is collected (:func:`fewclick.server.model_files.collect`); a transaction
it left open is rolled back by the database.

The same hook times the steps (:class:`Pace`): the steps done of the current stretch of
training, the steps it will take (when the training knows: the background trainer's round
does), and the seconds a step took: the median of the last few (the pace at the load of
now, slow steps included) and the spread over the recent ones (a pause left out). The
watch writes it to the job's ``pace`` every ``PACE_SECONDS``; the page's time left comes
from it (:func:`fewclick.server.views.eta`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from fewclick.server.db import Job, make_engine, now, session_factory
from fewclick.server.jobs.rivals import Rivals
from fewclick.server.jobs.status import DONE, FAILED, LIVE, PAUSED, STOPPING
from fewclick.server.storage import rows

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5  # how often a job's process reads its row
PACE_SECONDS = 3.0  # how often it writes its pace there
STOP_GRACE = 2.5  # seconds after `stopping` before the process is ended outright
RECENT_STEPS = 50  # the steps whose seconds the pace's spread comes from
SPEED_STEPS = 20  # the last steps whose median is the pace now: it follows a change of load
#: the share the pace may change by within a round on a shared machine, whatever the spread
#: of the steps measured: the range holds at least (1 - SWING) to (1 + SWING) of the pace.
#: In new_user.py's rounds at load 5-22 the time left came 0.55-1.21x the estimate
#: (docs/benchmarks/trainer_estimate.md)
SWING = 0.5
BUSY_SHARE = 0.25  # a step is busy when the app's work for the person took this share of a core
STOPPED = "stopped by a person"
STOP_UNWRITTEN = 3  # the exit code of a process ended outright whose stop was not written


class Stopped(BaseException):
    """The job's row says ``stopping``: raised at the next training step (a ``BaseException``,
    so that a training's own ``except Exception`` lets it through)."""


class Pace:
    """The steps of the current stretch of training and their measured seconds: each step's
    wall seconds, the CPU seconds this process took in it, and whether the app's work for the
    person took over ``BUSY_SHARE`` of a core meanwhile
    (:class:`fewclick.server.jobs.rivals.Rivals`: the step is *busy*)."""

    def __init__(self, rivals=None) -> None:
        self.lock = threading.Lock()
        self.rivals = rivals  # () -> CPU seconds of the app's work since the last call, or None
        self.begin(None)

    def begin(self, total: int | None, after: float | None = None) -> None:
        """A new stretch of ``total`` steps (None: not known), and ``after``: the seconds its
        work after the last step took last time (a candidate's scoring), when measured."""
        with self.lock:
            self.done, self.total, self.after = 0, total, after
            self.steps: deque[tuple[float, float, bool]] = deque(maxlen=RECENT_STEPS)
            self.last: tuple[float, float] | None = None  # when the last step was: wall, CPU

    @property
    def seconds(self) -> list[float]:
        """The recent steps' wall seconds."""
        return [wall for wall, _, _ in self.steps]

    def step(self) -> None:
        at, cpu = time.monotonic(), time.process_time()
        taken = self.rivals() if self.rivals is not None else None
        with self.lock:
            if self.last is not None:
                wall = at - self.last[0]
                busy = taken is not None and taken > BUSY_SHARE * wall
                self.steps.append((wall, min(cpu - self.last[1], wall), busy))
            self.done, self.last = self.done + 1, (at, cpu)

    def since_last_step(self) -> float | None:
        """Seconds since the last step (None before the first)."""
        with self.lock:
            return None if self.last is None else time.monotonic() - self.last[0]

    def resumed(self) -> None:
        """After a pause: the wait is not a step's time."""
        if self.rivals is not None:
            self.rivals()  # nor is what the app did meanwhile
        with self.lock:
            self.last = (time.monotonic(), time.process_time())

    def as_row(self) -> dict | None:
        """``{"done", "total", "step_seconds", "low", "high", "measured", "busy", "after"}``
        (None before two steps). ``step_seconds`` is the median of the last ``SPEED_STEPS``
        steps' wall seconds, the slow ones included (the pace at the load of now: the app's
        work for the person and everything else the machine runs); ``low`` and ``high`` are
        the 10th and 90th percentiles of all recent steps' (the pace if the load eases or
        grows back to what it was within them), at least ``SWING`` below and above
        ``step_seconds``, and ``low`` at most the median CPU seconds the busy steps needed
        (the pace once the app's work for the person ends); ``busy`` counts the recent steps
        slowed by that work."""
        import numpy as np

        with self.lock:
            if not self.steps:
                return None
            walls, cpus = np.array(self.seconds), np.array([cpu for _, cpu, _ in self.steps])
            busy = np.array([b for _, _, b in self.steps])
            median = float(np.median(walls[-SPEED_STEPS:]))
            low, high = np.percentile(walls, [10, 90])
            low = min(float(low), (1 - SWING) * median)
            if busy.any():  # the pace once the app's work for the person ends
                low = min(low, float(np.median(cpus[busy])))
            return {
                "done": self.done, "total": self.total, "step_seconds": round(median, 4),
                "low": round(low, 4), "high": round(max(float(high), (1 + SWING) * median), 4),
                "measured": len(walls), "busy": int(busy.sum()), "after": self.after,
            }  # fmt: skip


class Watch:
    """The job process's view of its row: paused, stopping (module docstring)."""

    def __init__(self, db_url: str, job_id: int) -> None:
        self.engine = make_engine(db_url)
        self.sessions, self.job_id = session_factory(self.engine), job_id
        self.paused, self.stopping = threading.Event(), threading.Event()
        self.done, self.pace = threading.Event(), Pace(Rivals().seconds)
        self.thread = threading.Thread(target=self._run, name="job-watch", daemon=True)

    def _run(self) -> None:
        written = 0.0
        stop_seen = None
        while not self.done.wait(WATCH_SECONDS):
            try:
                status = self._read()
                if time.monotonic() - written >= PACE_SECONDS:
                    self._write_pace()
                    written = time.monotonic()
            except Exception:  # a busy database: the next look tries again
                log.warning("job %d: its row could not be read", self.job_id, exc_info=True)
                continue
            (self.paused.set if status == PAUSED else self.paused.clear)()
            if status in (STOPPING, FAILED):  # failed: the app gave it up (stale, or it stopped)
                self.stopping.set()
                stop_seen = stop_seen or time.monotonic()
            if stop_seen is not None and time.monotonic() - stop_seen > STOP_GRACE:
                self._end_now()

    def _read(self) -> str:
        with self.sessions() as session:
            return rows.find(session, Job, self.job_id).status

    def _write_pace(self) -> None:
        pace = self.pace.as_row()
        if pace is None:
            return
        with self.sessions() as session:
            job = rows.find(session, Job, self.job_id)
            job.pace = pace
            session.commit()

    def _end_now(self) -> None:
        """The job went on past ``STOP_GRACE`` after the stop: marked stopped, the process ended."""
        log.warning("job %d: stopped outright, %.1f s after it was asked to stop", self.job_id, STOP_GRACE)
        code = 0
        try:
            mark_stopped(self.sessions, self.job_id)
        except Exception:  # the row could not be written: the server sees a process that died
            log.exception("job %d: its stop could not be written", self.job_id)
            code = STOP_UNWRITTEN
        finally:
            os._exit(code)

    def wait_at_step(self) -> None:
        """At a training step: the step before it timed; wait while paused (the wait left
        out of the step times and of training's budgets of minutes), raise :class:`Stopped`
        once stopping."""
        from fewclick.train.common import paused

        if self.stopping.is_set():
            raise Stopped()
        self.pace.step()
        if not self.paused.is_set():
            return
        began = time.monotonic()
        while self.paused.is_set() and not self.stopping.is_set():
            time.sleep(0.1)
        paused(time.monotonic() - began)
        self.pace.resumed()
        if self.stopping.is_set():
            raise Stopped()


def mark_stopped(sessions, job_id: int, message: str | None = None) -> None:
    """The job ended on a person's stop (``done``, with ``message``) unless it ended already."""
    with sessions() as session:
        job = rows.find(session, Job, job_id)
        if job.status in LIVE:
            job.status, job.updated_at = DONE, now()
            job.message = message or f"{STOPPED} while: {job.message}"[:2000]
            session.commit()


def stopped(db_url: str, job_id: int) -> None:
    """:func:`mark_stopped`, from a fresh connection (the job's process as its job ends)."""
    engine = make_engine(db_url)
    try:
        mark_stopped(session_factory(engine), job_id)
    finally:
        engine.dispose()


_CURRENT: Watch | None = None  # the watch of the job this process runs


def current() -> Watch | None:
    """The running job's watch in this process (None outside a job): its pace, its events."""
    return _CURRENT


@contextmanager
def watched(db_url: str, job_id: int) -> Iterator[Watch]:
    """The job's :class:`Watch` running, and every optimizer's step waiting on it, while the
    block runs."""
    global _CURRENT
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    watch = Watch(db_url, job_id)
    _CURRENT = watch
    hook = register_optimizer_step_pre_hook(_on_step)
    watch.thread.start()
    try:
        yield watch
    finally:
        watch.done.set()
        watch.thread.join()
        hook.remove()
        _CURRENT = None
        watch.engine.dispose()


def _on_step(_optimizer, _args, _kwargs) -> None:
    if _CURRENT is not None:
        _CURRENT.wait_at_step()
