"""Starting training: when the user asks, and by itself as images get finished.

The background trainer (:mod:`fewclick.server.jobs.trainer`) is the one way the app trains
detectors. A project starts it by itself once it has ``Project.auto_train_every`` (0: never)
finished images holding the user's annotations with boxes, unless its users stopped it (it
then waits for their Keep training); from then on each of its rounds takes in every image
finished since. The mask and point models train in a job of their own
(:mod:`fewclick.server.jobs.training`), started by itself when ``auto_train_every`` more
finished images hold them than they were trained on and none of the project's other jobs is
live. The user's Train starts both, as the finished images allow. Every job starts the same
way: a ``Job`` row, then its entry point (:mod:`fewclick.server.jobs.run`) in a process of
its own; the app never waits. The checks and the new rows happen under one lock, so two
requests finishing images at once start one of each (within one app process; the job row
check covers the rest). Any job can be paused, resumed and stopped (:func:`control_job`).

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
from fewclick.server.jobs.status import FAILED, LIVE, PAUSED, QUEUED, RUNNING, STOPPING
from fewclick.server.jobs.trainer import folder as trainer_folder
from fewclick.server.storage import annotations, images, jobs, rows, versions

log = logging.getLogger(__name__)

AUTO_MINUTES = 1.0  # the budget of a job that starts by itself
NOTHING_TO_TRAIN = "no finished image with annotations yet: mark annotated images done, then train"
NO_DETECTOR = (
    "no trained detector yet: the trainer serves one once 12 held-out finished images hold 75 objects; "
    "then build the review queue"
)
NO_DETECTOR_TO_PREANNOTATE = (
    "no trained detector yet: the trainer serves one once 12 held-out finished images hold 75 objects; "
    "then pre-annotate"
)
NOTHING_TO_PREANNOTATE = "every image is finished or holds annotations: nothing to pre-annotate"
STALE_SECONDS = 12 * HEARTBEAT_SECONDS  # a job silent this long has no process left
WATCH_SECONDS = 3.0  # how often the server looks for job processes that died
RESTARTS, RESTARTS_MINUTES = 5, 10  # a killed trainer is started again at most this often
_RESTARTED: dict[int, list[float]] = {}  # project id -> when its trainer was last started again
RESTARTED = "the server restarted while the job ran (an earlier server started it): start it again"
STOPPED = "the server stopped while the job ran: start it again"
PAUSABLE = ("train", "trainer")  # the job kinds that train: a pause waits at a training step
TRAINER_ACTIONS = {"pause": ("running",), "resume": ("paused",), "stop": ("queued", "running", "paused")}
NO_TRAINER = "the project's trainer is not running: start it first"
WANTED = "wanted.txt"  # in the trainer's folder: running, paused or stopped (restart_trainers)
_lock = threading.Lock()


def start_training(session: Session, config: Settings, project: Project, minutes: float) -> Job:
    """Train what the finished images allow, as the user asked: the background trainer for
    the detector (unless it is live: it takes in the newly finished images at its next round)
    when they hold boxes, and a training job of ``minutes`` for the mask and point models
    when they hold enough of them (:func:`fewclick.server.jobs.training.tasks_for`). The
    job, else the trainer. :class:`~fewclick.server.store.StoreError` (400) when no finished
    image holds annotations; :class:`~fewclick.server.store.Conflict` (409) naming the job
    while another of the project's jobs is live and the trainer has nothing to start. No
    job row is written when it is refused."""
    from fewclick.server.jobs import training
    from fewclick.server.jobs.training import tasks_for

    with _lock:
        reset_stale(session, project.id)
        if annotations.finished_annotated(session, project.id) == 0:
            raise store.StoreError(NOTHING_TO_TRAIN)
        kinds = annotations.finished_kinds(session, project.id)
        live = jobs.trainer_job(session, project.id)
        started = _start_trainer(session, config, project, "user") if _boxes(kinds) and live is None else None
        if tasks_for(kinds) and (started is None or jobs.running_job(session, project.id) is None):
            return _start(session, config, project, minutes, "user")  # Conflict while a job is live
        if started is not None:
            return started
        if live is not None:
            goes_on = {
                "paused": "Resume it to go on",
                "stopping": "it ends in seconds: start it again then",
            }.get(live.status, "each of its rounds takes in the images finished since")
            raise store.Conflict(
                f"the trainer of project {project.name!r} is {live.status} (job {live.id}): {goes_on}"
            )
        raise store.StoreError(training.NO_TASK)  # points only, too few of them


def _boxes(kinds: dict[str, int]) -> bool:
    """Whether annotations of ``kinds`` (counted) give the detector boxes: a mask has one."""
    return any(kinds.get(k, 0) for k in ("box", "rbox", "mask"))


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
        return _start_trainer(session, config, project, trigger)


def _start_trainer(session: Session, config: Settings, project: Project, trigger: str) -> Job:
    """A new trainer job, committed, its process started (under :data:`_lock`)."""
    job = jobs.add_trainer(session, project.id, local_user(session), trigger)
    session.commit()
    _want(config, project.id, "running")
    start_process(run.run_trainer, config.db_url, job.id, str(config.models_dir), str(config.embeddings))
    return job


def control_trainer(session: Session, config: Settings, project: Project, action: str) -> Job:
    """Pause, resume or stop the project's trainer (:func:`control_job`). StoreError (400) for
    another action, or one its state does not allow; StoreError when it is not live."""
    if action not in TRAINER_ACTIONS:
        raise store.StoreError(f"unknown trainer action {action!r}: pause, resume or stop")
    with _lock:
        reset_stale(session, project.id)
        job = jobs.trainer_job(session, project.id)
        if job is None or job.status == STOPPING:
            raise store.StoreError(NO_TRAINER)
    return control_job(session, config, job, action)


def control_job(session: Session, config: Settings, job: Job, action: str) -> Job:
    """Pause, resume or stop a job, of any kind: its row says so and its process follows
    within seconds (:mod:`fewclick.server.jobs.pause`; a stop ends it within
    :data:`~fewclick.server.jobs.pause.STOP_GRACE` seconds of its process reading the row).
    A trainer's users' word is kept beside its rounds (:func:`wanted`). StoreError (400) for
    another action, or one the job's state does not allow (resume while running, anything
    once it ended)."""
    if action not in TRAINER_ACTIONS:
        raise store.StoreError(f"unknown job action {action!r}: pause, resume or stop")
    with _lock:
        reset_stale(session, job.project_id)
        session.refresh(job)
        what = "the trainer" if job.kind == jobs.TRAINER else f"job {job.id} ({job.kind})"
        if action != "stop" and job.kind not in PAUSABLE:  # no training step to wait at
            raise store.StoreError(f"{what} cannot {action}: only training pauses; stop it instead")
        new = {"pause": PAUSED, "resume": RUNNING, "stop": STOPPING}[action]
        if not jobs.set_status_if(session, job.id, new, TRAINER_ACTIONS[action]):
            session.rollback()
            session.refresh(job)
            raise store.StoreError(f"{what} is {job.status}: it cannot {action}")
        session.commit()
        session.refresh(job)
        if job.kind == jobs.TRAINER:
            _want(config, job.project_id, {"pause": "paused", "resume": "running", "stop": "stopped"}[action])
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
    if wanted(config, project.id) in ("stopped", "paused"):  # a person's word holds
        return None
    try:
        return start_trainer(session, config, project, "auto")
    except store.StoreError:  # live already (Conflict), or no finished image with boxes yet
        return None


def train_if_due(session: Session, config: Settings, project: Project) -> Job | None:
    """Start training by itself when the project is due it (module docstring); what started
    (the trainer, else the mask and point models' job), or None. Call it after
    committing the change that finished images."""
    from fewclick.server.jobs.training import tasks_for

    every = project.auto_train_every
    if every == 0:
        return None
    with _lock:
        reset_stale(session, project.id)
        finished = annotations.finished_annotated(session, project.id)
        if finished < every:
            return None
        kinds = annotations.finished_kinds(session, project.id)
        started = None
        if _boxes(kinds) and _may_start_by_itself(config, session, project.id):
            started = _start_trainer(session, config, project, "auto")
        new = finished - versions.trained_on(session, project.id, ("segment", "points"))
        if tasks_for(kinds) and new >= every and jobs.running_job(session, project.id) is None:
            job = _start(session, config, project, AUTO_MINUTES, "auto")
            started = started or job
        return started


def _may_start_by_itself(config: Settings, session: Session, project_id: int) -> bool:
    """Whether the project's trainer may start by itself now: it is not live, its users did
    not stop or pause it (their word holds until they start it), and one left running that
    ended (it failed) is started again within the restart budget (:func:`_may_restart`)."""
    if jobs.trainer_job(session, project_id) is not None:
        return False
    state = wanted(config, project_id)
    if state in ("stopped", "paused"):
        return False
    return state is None or _may_restart(project_id)


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
        if job is None or job.status not in LIVE:
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


def _start(session: Session, config: Settings, project: Project, minutes: float, trigger: str) -> Job:
    job = jobs.add_job(session, local_user(session), project, "train", trigger)
    session.commit()
    start_process(
        run.run_training, config.db_url, job.id, str(config.models_dir), minutes, str(config.embeddings)
    )
    return job
