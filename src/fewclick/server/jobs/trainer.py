"""A project's background trainer (issue 32, part 2): a job that keeps its detector learning
while people work, until someone stops it or the server does.

One process per project, on one core (the other stays free for clicks and encoding). Round
after round (:class:`fewclick.active.continual.ContinualTrainer`) it reads the project's
finished images as they are then (a newly finished image joins the next round, an edited one
brings its new labels) and the images the review queue labeled in part (their answers at
weight 1, their open boxes as noisy labels: the queue's answers start the trainer by itself,
:func:`fewclick.server.jobs.control.queue_train_if_due`), trains C3Det on the ImageNet
backbone (from scratch without its weights) warm-started from the round before, on every
finished image (none is held out), and then scores it on the images finished while it
trained, which it never saw (test, then train: :mod:`fewclick.active.continual`), beside the
look-alikes among SAM's proposals on them where the app made those
(:mod:`fewclick.server.jobs.trainer_scored`). A
round is promoted once the trainer's savings on such images beat what serves beyond the
noise for some class: it becomes the project's next detector version (method ``imagenet``
or ``scratch``; its metrics say the round, the steps, each source's savings, the classes it
serves and why, and the thresholds that show only those on open). The first
round starts from the serving version when it is of the trainer's kind, else from the
ImageNet weights.

It is the one way the app trains detectors (issue 53): started by itself after the project's
first ``auto_train_every`` finished images, or by a person (:mod:`fewclick.server.jobs.control`).
What it trains was chosen once, by measurement, where the training job used to compare four
ways on every run: C3Det on ImageNet EfficientNet-Lite0 beat C3Det from scratch from 5
finished images (bccd +0.135 mAP at 5 clicks, hit_uav +0.004:
docs/benchmarks/detect_fewshot_imagenet.md), so it trains that, and from scratch only without
the ImageNet weights; C3Det on the frozen SAM features and the training-free start are not
trained, they are what serves before its first version (the look-alikes among SAM's
proposals, :data:`LOOK_ALIKES`), and its rounds must save more than they do to serve.

The job row is the trainer's remote control: ``paused`` (the page's Pause) holds training
at its next step, the round in memory; ``running`` again (Resume) goes on from there;
``stopping`` (Stop) ends it, ``done``, within seconds (:mod:`fewclick.server.jobs.pause`).
Its message says the round, the serving version and its score. Everything learned is in
``<models>/<project>/trainer/`` (the rounds and ``state.json``): a trainer started again,
after a stop or a restart of the server, goes on from the newest finished round. The
running trainer's pid is in ``process.json`` there.

Nothing that serves is ever deleted under a reader: a round's checkpoint is named by its
version row the moment it is promoted, and after each round the trainer collects only what
nothing names any more (:func:`fewclick.server.model_files.collect`). Classes added or
removed start the trainer's rounds afresh without deleting a file: the versions trained for
the old classes stay until they are collected. A class renamed is the same class (classes
are known by id): the rounds go on, and the versions that learnt it serve on. A round that
cannot write its checkpoint (a full disk) is dropped, what serves is untouched, and the
job's message says why.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from fewclick.server import model_files
from fewclick.server.db import Job, Project, make_engine, session_factory
from fewclick.server.jobs import trainer_scored as scored
from fewclick.server.jobs.pause import Stopped, current
from fewclick.server.jobs.status import DONE, PAUSED, RUNNING, update_job
from fewclick.server.jobs.trainer_versions import register
from fewclick.server.serving import (
    CLASS_IDS,
    LEARNER,
    Keyed,
    class_ids,
    imagenet_available,
    project_encoder,
    serving_detector,
)
from fewclick.server.storage import images, rows

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often a paused trainer, or a training step, looks at its job row
ROUND_STEPS_ENV = "FEWCLICK_TRAINER_ROUND_STEPS"  # a shorter round for soak tests (default: the config's)
RETRY_SECONDS = 60.0  # after a round dropped for an error of the disk, the next one waits this long
PROCESS_FILE = "process.json"  # the running trainer's pid and job
LOCK_FILE = "trainer.lock"  # held by the running trainer (:func:`_one_trainer`)
KINDS = ("imagenet", "scratch")
#: what serves before any version where the app made SAM's proposals: the trainer's first
#: candidate is scored against the look-alikes among them (:func:`_serve_against`)
LOOK_ALIKES = "training-free:look-alikes"


def folder(models_dir: Path | str, project_id: int | str) -> Path:
    """Where the project's trainer keeps its rounds, ``state.json``, ``process.json`` and what
    its users last asked (:data:`fewclick.server.jobs.control.WANTED`)."""
    return model_files.trainer_folder(models_dir, project_id)


class _Stop(Exception):
    """The job row asked the trainer to stop (raised inside a round: the round is cut short)."""


def run_trainer(
    db_url: str,
    job_id: int,
    models_dir: Path,
    embeddings: str | None,
    rounds: int | None = None,
    config=None,
) -> None:
    """The trainer's loop (module docstring); ``rounds`` ends it after that many and
    ``config`` (a :class:`~fewclick.active.continual.ContinualConfig`) sets its rounds (tests)."""
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    control = _Control(sessions, job_id)
    with sessions() as session:
        project_id = rows.find(session, Job, job_id).project_id
    kind = "imagenet" if imagenet_available() else "scratch"
    work = folder(models_dir, project_id)
    encoder = project_encoder(embeddings)
    # queued -> running, as every job; a trainer paused before its process began stays paused
    status = RUNNING if control.status() == "queued" else control.status()
    update_job(db_url, job_id, status=status, message=f"{kind}: reading the finished images")
    trainer = None
    after = None  # the seconds the last round took after its last step (scoring its candidate)
    keys: dict = {}  # id(scored image) -> the app's encoder cache key, renewed every round
    done = 0
    lock = _one_trainer(work, control, db_url, job_id)
    if lock is None:  # stopped while another trainer of the project still ran
        engine.dispose()
        update_job(db_url, job_id, status=DONE, progress=1.0, message=_stopped(None))
        return
    _write_process(work, job_id)
    try:
        while rounds is None or done < rounds:
            if control.wait_while_paused():
                break
            data, serving, ids = _finished(sessions, project_id)
            if not len(data):
                update_job(db_url, job_id, message="waiting for a finished image with boxes")
                if control.sleep(POLL_SECONDS * 5):
                    break
                continue
            if trainer is None or trainer.class_ids != ids:  # a class added or removed: afresh
                load = _loader(encoder, len(data.classes), keys, embeddings)
                trainer = _make(work, data, ids, kind, serving, load, config)
            trainer.classes = list(data.classes)  # renamed: the same classes by id, new names
            _serve_against(trainer, serving, embeddings, project_id)
            # progress is the round's share done: 0 as it starts, and again once it is counted
            pace = _begin_pace(trainer, after)  # the round before's pace goes with it
            message = _running(trainer, len(data))
            update_job(db_url, job_id, progress=0.0, pace=None, message=message)
            fresh = scored.fresh_images(sessions, project_id, keys)
            learnt = scored.Learnt()  # what the fast learner did as the round's images are scored
            others = scored.sam_sources(sessions, project_id, embeddings, keys, learnt)
            try:
                result = trainer.round(data, fresh, others, log=lambda _: None, progress=control.check)
            except (_Stop, Stopped):  # stopped mid-round: the loop's head ends it
                continue
            except (OSError, ValueError, RuntimeError) as exc:  # a full disk, a torn warm start
                log.warning("project %s: trainer round dropped", project_id, exc_info=True)
                update_job(db_url, job_id, progress=0.0, message=_dropped(trainer, exc))
                if control.sleep(RETRY_SECONDS):
                    break
                continue
            done += 1
            after = _after_steps(pace)
            if pace is not None:
                pace.begin(None)  # between rounds no time left is said
            if result.promoted:
                register(sessions, project_id, job_id, kind, result, trainer, embeddings, learnt)
            _collect(sessions, project_id, models_dir, trainer)
            message = _after(trainer, result, sessions, project_id)
            update_job(db_url, job_id, progress=0.0, pace=None, message=message)
    finally:
        engine.dispose()
        (work / PROCESS_FILE).unlink(missing_ok=True)
        lock.close()  # the next trainer of the project may begin
    update_job(db_url, job_id, status=DONE, progress=1.0, message=_stopped(trainer))


def _begin_pace(trainer, after: float | None):
    """The round's steps in the job's pace (:mod:`fewclick.server.jobs.pause`), with the
    seconds the round before took after its steps; the pace (None outside a job's process)."""
    watch = current()
    if watch is not None:
        watch.pace.begin(trainer.config.round_steps, after)
    return None if watch is None else watch.pace


def _after_steps(pace) -> float | None:
    """The seconds since the round's last step: its scoring and writing, measured."""
    since = None if pace is None else pace.since_last_step()
    return None if since is None else round(since, 1)


def _one_trainer(work: Path, control, db_url: str, job_id: int):
    """An exclusive lock on the project's trainer folder, held for the trainer's life (the
    open file; closing it lets go), so two trainers never train in one folder: a trainer
    started again while the one before still ends (a killed server's trainer lives on for
    a few seconds) waits for it. None when its job is stopped meanwhile."""
    import fcntl

    work.mkdir(parents=True, exist_ok=True)
    handle = open(work / LOCK_FILE, "a")  # noqa: SIM115 (held open for the trainer's life)
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            update_job(db_url, job_id, message="waiting for the project's previous trainer process to end")
            if control.sleep(POLL_SECONDS):
                handle.close()
                return None


def _write_process(work: Path, job_id: int) -> None:
    """``process.json``: this trainer's pid and job (soak tests and people find it there)."""
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f"{PROCESS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), "job_id": job_id}))
    tmp.replace(work / PROCESS_FILE)


def _collect(sessions, project_id: int, models_dir: Path, trainer) -> None:
    """Collect the project's model files nothing names any more; a failure to delete is
    logged, never the trainer's end."""
    try:
        with sessions() as session:
            model_files.collect(session, project_id, models_dir, trainer)
            session.commit()
    except Exception:  # a busy database, a bad budget setting: the next round collects again
        log.warning("collecting project %s's model files failed", project_id, exc_info=True)


def _dropped(trainer, exc: Exception) -> str:
    """The job's message for a round dropped for ``exc``: a file it could not write (a full
    disk), or one it could not read (a warm start torn meanwhile: the next round passes over
    it)."""
    number = len(trainer.state.rounds) + 1
    if isinstance(exc, OSError):
        why = f"its checkpoint could not be written ({exc.strerror or exc})"
    else:
        why = f"it failed ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
    return f"round {number} dropped: {why}; what serves is untouched; trying again in {RETRY_SECONDS:.0f} s"


class _Control:
    """Reads the job row the page changes: paused, running, stopping."""

    def __init__(self, sessions, job_id: int) -> None:
        self.sessions, self.job_id, self.last = sessions, job_id, 0.0

    def status(self) -> str:
        with self.sessions() as session:
            return rows.find(session, Job, self.job_id).status

    def check(self, step: int, total: int | None) -> None:
        """A training step's progress callback: the round's share done goes to the job's
        progress; a stop cuts the round short (a pause holds it at its next step:
        :mod:`fewclick.server.jobs.pause`)."""
        if time.monotonic() - self.last < POLL_SECONDS:
            return
        self.last = time.monotonic()
        with self.sessions() as session:
            job = rows.find(session, Job, self.job_id)
            if job.status not in (RUNNING, PAUSED):  # a pause waits at the next step (jobs.pause)
                raise _Stop()
            job.progress = round(step / total, 3) if total else 0.0
            session.commit()

    def wait_while_paused(self) -> bool:
        """Wait while the row says paused; True when it says anything but running (stopping,
        or ended by the app)."""
        while (status := self.status()) == PAUSED:
            time.sleep(POLL_SECONDS)
        return status != RUNNING

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or until the row says stop (True)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.status() not in ("running", "paused"):
                return True
            time.sleep(POLL_SECONDS)
        return False


def _finished(sessions, project_id: int):
    """The images to train on: every finished image's boxes (none held out: issue 68), with
    the images the review queue labeled in part (:func:`fewclick.server.jobs.queue.partly_labeled`;
    not for an oriented detector: the queue's boxes are axis-aligned) once a finished image
    holds boxes; the serving detector version as (version, method, path, class ids) (None:
    none yet); and the project's class ids."""
    from fewclick.server.exports import to_dataset
    from fewclick.server.jobs.queue import partly_labeled
    from fewclick.train.detect import detector_config_for

    with sessions() as session:
        project = rows.find(session, Project, project_id)
        data = to_dataset(project, images=images.finished(session, project_id))
        partly = partly_labeled(session, project)
        serving = serving_detector(session, project_id)
        learnt = None if serving is None else (serving.metrics or {}).get(CLASS_IDS)
        serving = None if serving is None else (serving.version, serving.method, serving.path, learnt)
        ids = class_ids(project)
    train = [r for r in data.images if len(r.objects) and r.objects.boxes.size]
    finished = type(data)(data.classes, train, data.format)
    if partly and train and not detector_config_for(finished, "c3det").oriented:
        train += partly
    return type(data)(data.classes, train, data.format), serving, ids


def _make(work: Path, data, ids: list[int], kind: str, serving, load, config=None):
    """The project's trainer in ``work``, going on from its rounds there when they were of
    the same classes (by id: a class renamed since is the same class); with a class added
    or removed since, its rounds start afresh, and the old rounds' files stay until nothing
    names them (:func:`_collect`)."""
    from fewclick.active.continual import STATE, ContinualConfig, ContinualTrainer
    from fewclick.train.detect import detector_config_for

    classes = list(data.classes)
    stamp = work / "classes.json"
    work.mkdir(parents=True, exist_ok=True)
    if stamp.is_file() and not _same(_stamped(stamp), ids, classes):
        (work / STATE).unlink(missing_ok=True)  # the rounds' record, never their files
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"ids": ids, "names": classes}))
    tmp.replace(stamp)
    detector = detector_config_for(data, "c3det", backbone=kind)
    start = serving[2] if serving is not None and serving[1] == kind else None
    if start is not None and not _learnt(serving, ids, classes):
        start = None  # trained for other classes, or unreadable: the ImageNet weights start instead
    config = config or _config(ContinualConfig())
    trainer = ContinualTrainer(work, detector, config, start=start, load=load, versioned=(LEARNER,))
    trainer.classes, trainer.class_ids = classes, list(ids)
    return trainer


def _config(config):
    """``config`` with the round's steps of :data:`ROUND_STEPS_ENV` when it is set."""
    from dataclasses import replace

    raw = os.environ.get(ROUND_STEPS_ENV)
    if raw is None:
        return config
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ROUND_STEPS_ENV} must be a positive number of steps, got {raw!r}")
    return replace(config, round_steps=int(raw))


def _stamped(stamp: Path) -> dict | list | None:
    """The classes the trainer's rounds in its folder learnt: ``{"ids", "names"}`` (a bare
    list of names before ids were stamped); None when torn (taken for other classes)."""
    try:
        return json.loads(stamp.read_text())
    except ValueError:
        return None


def _same(stamped, ids: list[int], names: list[str]) -> bool:
    """Whether the ``stamped`` classes are the project's ``ids`` (named ``names``): by id, or
    by name for a stamp from before ids were stamped."""
    if isinstance(stamped, dict):
        return stamped.get("ids") == ids
    return stamped == names


def _learnt(serving, ids: list[int], names: list[str]) -> bool:
    """Whether the serving detector ``(version, method, path, class ids)`` reads and learnt
    the project's classes: by the ids its version recorded (renamed since: the same
    classes), else by the names in its checkpoint."""
    from fewclick.models.detector import load_detector

    try:
        known = list(load_detector(serving[2])[1].get("classes", []))
    except (FileNotFoundError, ValueError):
        return False
    if serving[3] is not None:
        return serving[3] == ids and len(known) == len(ids)
    return known == names


def _serve_against(trainer, serving, embeddings: str | None = None, project_id: int | None = None) -> None:
    """The trainer compares its candidates with what serves now, whoever trained it; a
    detector of other classes (one added since) serves nobody's clicks, so against it
    the first candidate serves as when nothing did. Before any version, where the app has
    made SAM's proposals of the project's images (in ``embeddings``, the app's folder) the look-alikes
    among them serve the clicks (:data:`LOOK_ALIKES`): the trainer's rounds serve only once
    they save more than those on the images they never saw."""
    if serving is None:
        if trainer.state.serving not in (None, LOOK_ALIKES):  # a round promoted, never registered
            trainer.state.serving = None  # (its process stopped in between): nothing serves
        if trainer.state.serving is None and embeddings and _proposals_made(embeddings, project_id):
            trainer.state.serving = LOOK_ALIKES
        return
    if serving[1] == "training-free":
        trainer.state.serving = f"training-free:{serving[2]}"
    elif _learnt(serving, trainer.class_ids, trainer.classes):
        trainer.state.serving = serving[2]
    elif trainer.state.serving == serving[2]:
        trainer.state.serving = None


def _proposals_made(embeddings: str, project_id: int | None) -> bool:
    """Whether the app made SAM's proposals of an image of the project (embedding keys start
    with the project's id: :func:`~fewclick.server.serving.file_key`)."""
    from fewclick.predict.lookalike import SUFFIX

    return Path(embeddings).is_dir() and any(Path(embeddings).glob(f"{project_id}-*{SUFFIX}"))


def _loader(encoder, num_classes: int, keys: dict, embeddings: str | None = None):
    """Makes a predictor of what a path names (a checkpoint, :data:`LOOK_ALIKES`, or
    ``training-free:...``), its images set under the app's cache keys."""

    def load(path):
        from fewclick.predict.detect import ClickDetector

        path = str(path)
        if path == LOOK_ALIKES:
            if encoder is None:
                raise FileNotFoundError("SAM's files are not set up: the look-alikes cannot be scored")
            from fewclick.predict.lookalike import LookAlikeDetector
            from fewclick.predict.proposals import ProposalMaker

            return Keyed(LookAlikeDetector(ProposalMaker(encoder, window=None), embeddings), keys)
        if path.startswith("training-free:"):
            from fewclick.predict.similar import SimilarityDetector

            return Keyed(SimilarityDetector(num_classes, encoder), keys)
        return Keyed(ClickDetector.load(path, encoder=encoder), keys)

    return load


def _running(trainer, images: int) -> str:
    """The job's message during a round: where it is, the steps of the rounds before (this
    round's own are counted by its progress: the message is written as it starts, and a
    count there said "0 steps so far" beside "30% of this round"), and what the round
    before found."""
    number = len(trainer.state.rounds) + 1
    now = f"round {number} on {images} images"
    if not trainer.state.rounds:
        return now
    before = f"{trainer.state.total_steps} steps in the rounds before"
    return f"{now}, {before}; {_verdict(trainer.state.rounds[-1])}"


def _after(trainer, result, sessions, project_id: int) -> str:
    with sessions() as session:
        serving = serving_detector(session, project_id)
    serves = "" if serving is None else f"; detector v{serving.version} ({serving.method}) serves"
    return f"{_verdict(result)}{serves}; {trainer.state.total_steps} steps so far"


def _verdict(r) -> str:
    """``round 2: on 3 images it never saw it saved 12.4 s an image (look-alikes 3.1 s):
    promoted`` (or kept training; or not scored, no image finished while it trained)."""
    what = "promoted" if r.promoted else "kept training"
    if not r.scored:
        return f"round {r.number}: not scored (no image was finished while it trained): {what}"
    mine = r.saved.get("trainer", 0.0)
    others = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(r.saved.items()) if k != "trainer")
    beside = f" ({others})" if others else ""
    n = f"{len(r.scored)} image{'s' if len(r.scored) != 1 else ''}"
    return f"round {r.number}: on {n} it never saw it saved {mine:.1f} s an image{beside}: {what}"


def _stopped(trainer) -> str:
    if trainer is None or not trainer.state.rounds:
        return "trainer stopped before its first round"
    return f"trainer stopped after {len(trainer.state.rounds)} rounds, {trainer.state.total_steps} steps"
