"""Starting training jobs: when the user asks, and by themselves as images get finished.

A project trains by itself once it has ``Project.auto_train_every`` (0: never) more finished
images holding the user's annotations than its newest model was trained on, and none of its
jobs is queued or running. Both ways start the job the same way: a ``Job`` row, then
:func:`fewclick.server.jobs.run.run_training` in a process of its own; the app never waits.
The check and the new row happen under one lock, so two requests finishing images at once
start one job (within one app process; the job row check covers the rest).

A job whose process stopped would block the project's next job for good. When the app
starts, :func:`fail_earlier_runs` marks failed at once every queued or running job an
earlier server run started (``Job.server_run``: its processes ended with that server). While
it runs, :func:`reset_stale` marks a queued or running job failed once its last sign of life
(heartbeat, else start, else creation) is over ``STALE_SECONDS`` old; it runs before every new
job and when a job is read. When the app stops, :func:`stop_jobs` stops the job processes and
marks failed the jobs they left unfinished.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from fewclick.server import processes, store
from fewclick.server.db import Job, Project, local_user, now
from fewclick.server.deps import Settings, start_process
from fewclick.server.jobs import run
from fewclick.server.jobs.process import HEARTBEAT_SECONDS
from fewclick.server.jobs.status import FAILED, LIVE_TRAINER, QUEUED, RUNNING, STOPPING
from fewclick.server.jobs.trainer import folder as trainer_folder
from fewclick.server.storage import annotations, images, jobs, rows, versions

log = logging.getLogger(__name__)

AUTO_MINUTES = 1.0  # the budget of a job that starts by itself
NOTHING_TO_TRAIN = "no finished image with annotations yet: mark annotated images done, then train"
NO_DETECTOR = "no trained detector yet: finish a few images and train, then build the review queue"
NO_DETECTOR_TO_PREANNOTATE = "no trained detector yet: finish a few images and train, then pre-annotate"
NOTHING_TO_PREANNOTATE = "every image is finished or holds annotations: nothing to pre-annotate"
STALE_SECONDS = 12 * HEARTBEAT_SECONDS  # a job silent this long has no process left
WATCH_SECONDS = 3.0  # how often the server looks for job processes that died
RESTARTS, RESTARTS_MINUTES = 5, 10  # a killed trainer is started again at most this often
_RESTARTED: dict[int, list[float]] = {}  # project id -> when its trainer was last started again
RESTARTED = "the server restarted while the job ran (an earlier server started it): start it again"
STOPPED = "the server stopped while the job ran: start it again"
TRAINER_ACTIONS = {"pause": ("running",), "resume": ("paused",), "stop": ("queued", "running", "paused")}
NO_TRAINER = "the project's trainer is not running: start it first"
WANTED = "wanted.txt"  # in the trainer's folder: running, paused or stopped (restart_trainers)
_lock = threading.Lock()


def start_training(session: Session, config: Settings, project: Project, minutes: float) -> Job:
    """Start a training job the user asked for. :class:`~fewclick.server.store.StoreError`
    (400) when no finished image holds annotations; :class:`~fewclick.server.store.Conflict`
    (409) naming the job while one of the project's jobs is queued or running. No job row
    is written when it is refused."""
    with _lock:
        reset_stale(session, project.id)
        if annotations.finished_annotated(session, project.id) == 0:
            raise store.StoreError(NOTHING_TO_TRAIN)
        return _start(session, config, project, minutes, "user")


def start_queue(session: Session, config: Settings, project: Project) -> Job:
    """Start building the project's review queue (:mod:`fewclick.server.jobs.queue`) from its
    serving detector. StoreError (400) before any detector is trained; Conflict (409) while
    one of the project's jobs is queued or running."""
    return _start_on_detector(session, config, project, "queue", run.run_queue, NO_DETECTOR)


def start_preannotate(session: Session, config: Settings, project: Project) -> Job:
    """Start pre-annotating the project's images nobody has started with its serving detector
    (:mod:`fewclick.server.jobs.preannotate`). StoreError (400) before any detector is trained, or
    when every image is started or finished; Conflict (409) while one of its jobs runs."""

    def check() -> None:
        if not images.not_started(session, project.id):
            raise store.StoreError(NOTHING_TO_PREANNOTATE)

    return _start_on_detector(
        session, config, project, "predict", run.run_preannotate, NO_DETECTOR_TO_PREANNOTATE, check
    )


def _start_on_detector(
    session, config: Settings, project: Project, kind: str, entry, no_detector: str, check=None
):
    """A job of ``kind`` on the project's trained detector, its process on ``entry``; StoreError
    ``no_detector`` without one, or what ``check`` raises."""
    from fewclick.server.serving import trained_detector

    with _lock:
        reset_stale(session, project.id)
        if trained_detector(session, project.id) is None:
            raise store.StoreError(no_detector)
        if check is not None:
            check()
        job = jobs.add_job(session, local_user(session), project, kind)
        session.commit()
    start_process(entry, config.db_url, job.id, str(config.models_dir), str(config.embeddings))
    return job


def start_trainer(session: Session, config: Settings, project: Project, trigger: str = "user") -> Job:
    """Start the project's background trainer (:mod:`fewclick.server.jobs.trainer`). StoreError
    (400) when no finished image holds annotations; Conflict (409) while it is already live."""
    with _lock:
        reset_stale(session, project.id)
        live = jobs.trainer_job(session, project.id)
        if live is not None:
            raise store.Conflict(f"the trainer of project {project.name!r} is {live.status} (job {live.id})")
        if annotations.finished_annotated(session, project.id) == 0:
            raise store.StoreError(NOTHING_TO_TRAIN)
        job = jobs.add_trainer(session, project.id, local_user(session), trigger)
        session.commit()
        _want(config, project.id, "running")
    start_process(run.run_trainer, config.db_url, job.id, str(config.models_dir), str(config.embeddings))
    return job


def control_trainer(session: Session, config: Settings, project: Project, action: str) -> Job:
    """Pause, resume or stop the project's trainer: its job row says so and its process
    follows within seconds. StoreError (400) for another action, or an action its state does
    not allow (resume while running); 404-like StoreError when it is not live."""
    if action not in TRAINER_ACTIONS:
        raise store.StoreError(f"unknown trainer action {action!r}: pause, resume or stop")
    with _lock:
        reset_stale(session, project.id)
        job = jobs.trainer_job(session, project.id)
        if job is None or job.status == STOPPING:
            raise store.StoreError(NO_TRAINER)
        if job.status not in TRAINER_ACTIONS[action]:
            raise store.StoreError(f"the trainer is {job.status}: it cannot {action}")
        job.status = {"pause": "paused", "resume": "running", "stop": "stopping"}[action]
        job.updated_at = now()
        session.commit()
        _want(config, project.id, {"pause": "paused", "resume": "running", "stop": "stopped"}[action])
    return job


def queue_train_if_due(session: Session, config: Settings, project: Project) -> Job | None:
    """After every ``Project.queue_train_every`` answers of the review queue (0: never), the
    project's background trainer learns from them (:mod:`fewclick.server.jobs.trainer`: the
    answered images train with the dampened loss, and a new version serves the queue only
    when it beats the serving one on the held-out finished images). It is started by itself
    when it is not live; a live one, paused included, reads the answers at its next round.
    The trainer started now, or None. Call it after committing the answer."""
    from fewclick.server.box_queue import answers_since_training

    every = project.queue_train_every
    if every == 0 or answers_since_training(session, project.id) < every:
        return None
    try:
        return start_trainer(session, config, project, "auto")
    except store.StoreError:  # live already (Conflict), or no finished image with boxes yet
        return None


def train_if_due(session: Session, config: Settings, project: Project) -> Job | None:
    """Start a training job by itself when the project is due one (module docstring);
    the job, or None. Call it after committing the change that finished images."""
    with _lock:
        reset_stale(session, project.id)
        if not _due(session, project):
            return None
        return _start(session, config, project, AUTO_MINUTES, "auto")


def reset_stale(session: Session, project_id: int | None = None, at: datetime | None = None) -> list[Job]:
    """Mark failed the queued or running jobs (of one project, or all) with no sign of life
    for ``STALE_SECONDS`` before ``at`` (now); commits, and returns them."""
    at = at or now()
    stale = jobs.stale(session, at - timedelta(seconds=STALE_SECONDS), project_id)
    for job in stale:
        seen = job.heartbeat_at or job.started_at or job.created_at
        job.status, job.updated_at = FAILED, at
        job.message = (
            f"its process stopped (no sign of life since {seen:%Y-%m-%d %H:%M:%S} UTC, "
            f"{(at - seen).total_seconds():.0f} s before this check): start it again"
        )
        log.warning("job %d (%s) of project %d: %s", job.id, job.kind, job.project_id, job.message)
    session.commit()
    return stale


def fail_dead(session: Session, config: Settings) -> list[Job]:
    """Mark failed the live jobs whose process this server started has died without ending
    them (killed by a signal: SIGKILL, the out-of-memory killer) and start again, in a new
    job, a trainer whose users left it on (:func:`wanted`), from its rounds on disk. The
    jobs failed; commits. The server's job watch calls it every few seconds."""
    failed, trainers = [], []
    for code, args in processes.reap():
        job = rows.find(session, Job, args[1]) if len(args) > 1 and isinstance(args[1], int) else None
        if job is None or job.status not in LIVE_TRAINER:
            continue
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        job.status, job.updated_at = FAILED, now()
        job.message = f"its process was ended from outside ({how}): " + (
            "the trainer starts again from its rounds" if job.kind == "trainer" else "start it again"
        )
        log.warning("job %d (%s) of project %d: %s", job.id, job.kind, job.project_id, job.message)
        failed.append(job)
        if job.kind == "trainer" and wanted(config, job.project_id) in ("running", "paused"):
            trainers.append(job.project_id)
    session.commit()
    for project_id in trainers:
        _start_again(session, config, project_id, "started again after its process was killed")
    return failed


class JobWatch:
    """A daemon thread of the server that, every ``every`` seconds, fails the jobs whose
    process died or went silent (:func:`fail_dead`, :func:`reset_stale`) and starts again
    the trainers their users left on; :meth:`stop` ends it."""

    def __init__(self, sessions, config: Settings, every: float | None = None) -> None:
        self.sessions, self.config, self.every = sessions, config, every or WATCH_SECONDS
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="job-watch", daemon=True)

    def start(self) -> JobWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=2 * self.every)

    def _run(self) -> None:
        while not self.done.wait(self.every):
            try:
                with self.sessions() as session:
                    if self.done.is_set():  # the server stops: its jobs are stopped, not restarted
                        return
                    fail_dead(session, self.config)
                    reset_stale(session)
            except Exception:  # a busy or lost database: the next look tries again
                log.exception("the job watch's look failed")


def _start_again(session: Session, config: Settings, project_id: int, message: str) -> Job | None:
    """A new trainer job for ``project_id`` in the state its users left it (:func:`wanted`),
    unless one is live or it was started again :data:`RESTARTS` times in the last
    :data:`RESTARTS_MINUTES` minutes (then it stays off, saying so: a trainer killed at the
    same point every time is not started forever); commits and starts its process."""
    with _lock:
        state = wanted(config, project_id)
        if state not in ("running", "paused") or jobs.trainer_job(session, project_id) is not None:
            return None
        if not _may_restart(project_id):
            log.warning("project %d: trainer killed %d times in %d minutes: not started again", project_id,
                        RESTARTS, RESTARTS_MINUTES)  # fmt: skip
            _want(config, project_id, "stopped")
            return None
        status = QUEUED if state == "running" else "paused"
        job = jobs.add_trainer(
            session, project_id, local_user(session), "auto", status=status, message=message
        )
        session.commit()
    start_process(run.run_trainer, config.db_url, job.id, str(config.models_dir), str(config.embeddings))
    log.info("project %d: trainer started again (job %d, %s)", project_id, job.id, job.status)
    return job


def _may_restart(project_id: int) -> bool:
    """Whether the project's trainer may start again now (module's restart budget), counting it."""
    now_s = time.monotonic()
    recent = [t for t in _RESTARTED.get(project_id, []) if now_s - t < RESTARTS_MINUTES * 60]
    if len(recent) >= RESTARTS:
        return False
    _RESTARTED[project_id] = [*recent, now_s]
    return True


def fail_earlier_runs(session: Session) -> list[Job]:
    """Mark failed, with :data:`RESTARTED`, every queued or running job whose server run has
    certainly ended (:func:`~fewclick.server.processes.run_gone`: its processes ended with
    it); commits, and returns them. For start-up; the jobs of a live server on another host
    are left to :func:`reset_stale`."""
    ended = [job.id for job in jobs.live(session) if processes.run_gone(job.server_run)]
    return _fail(session, jobs.with_ids(session, ended), RESTARTED)


def restart_trainers(session: Session, config: Settings) -> list[Job]:
    """After :func:`fail_earlier_runs`, start again every project's trainer that its users
    left on (:func:`wanted`: running or paused, whether the server stopped or died since),
    in that state, in a new job; it goes on from its rounds on disk. For start-up; the new
    jobs."""
    fail_earlier_runs(session)
    again = []
    for folder in sorted(Path(config.models_dir).glob("*/trainer")):
        name = folder.parent.name
        if name.isdigit() and rows.find(session, Project, int(name)) is not None:
            job = _start_again(session, config, int(name), "started again with the server")
            again += [job] if job is not None else []
    return again


def trainer_steps(config: Settings, project_id: int, job: Job | None) -> int:
    """The steps the project's trainer has trained: its finished rounds' (``state.json``)
    and, while it runs, the share done of the current round's."""
    from fewclick.active.continual import STATE, ContinualConfig

    path = trainer_folder(config.models_dir, project_id) / STATE
    done = json.loads(path.read_text())["total_steps"] if path.is_file() else 0
    if job is not None and job.status == RUNNING:
        done += int(job.progress * ContinualConfig().round_steps)
    return done


def wanted(config: Settings, project_id) -> str | None:
    """What the project's users last asked of its trainer: running, paused or stopped (None:
    never started). Kept beside its rounds, so that it outlives the job rows of a server run."""
    path = trainer_folder(config.models_dir, project_id) / WANTED
    return path.read_text().strip() if path.is_file() else None


def _want(config: Settings, project_id: int, state: str) -> None:
    folder = trainer_folder(config.models_dir, project_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WANTED).write_text(state)


def stop_jobs(session: Session) -> list[Job]:
    """Stop this server run's job processes and mark failed, with :data:`STOPPED`, the jobs
    of this run they left queued or running; commits, and returns them. For shutdown."""
    processes.stop_jobs()
    session.expire_all()  # the job processes wrote their rows meanwhile
    return _fail(session, jobs.live_of_run(session, processes.RUN), STOPPED)


def _fail(session: Session, found: list[Job], message: str) -> list[Job]:
    at = now()
    for job in found:
        job.status, job.message, job.updated_at = FAILED, message, at
        log.warning("job %d (%s) of project %d: %s", job.id, job.kind, job.project_id, message)
    session.commit()
    return found


def _due(session: Session, project: Project) -> bool:
    every = project.auto_train_every
    if every == 0 or jobs.running_job(session, project.id) is not None:
        return False
    new = annotations.finished_annotated(session, project.id) - versions.trained_on(session, project.id)
    return new >= every


def _start(session: Session, config: Settings, project: Project, minutes: float, trigger: str) -> Job:
    job = jobs.add_job(session, local_user(session), project, "train", trigger)
    session.commit()
    start_process(
        run.run_training, config.db_url, job.id, str(config.models_dir), minutes, str(config.embeddings)
    )
    return job
