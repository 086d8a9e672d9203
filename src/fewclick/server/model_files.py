"""A project's model files: what names them, which may go, and how much disk they take.

A model file is never deleted while anything names it: a model version's row (until it is
collected), the project's pinned detector, or the background trainer's state (what it
scores against, where it started, its newest round). :func:`collect` keeps, per task, the
version that serves, the pinned one and the :data:`KEEP_VERSIONS` newest others, within the
project's disk budget (:func:`budget_bytes`); an older version's row stays for the
project's history, marked ``collected`` in its metrics, and its folder goes once nothing
else names a file in it. Only the trainer's process and the training job call it, after
their new version's row is written, so the switch to a new version happens before the old
one can go; a request that read the old one's path just before finds it in the worker's
memory, or falls back (:mod:`fewclick.server.assisting`).

A file that cannot be read any more (deleted by hand, torn by a disk error) is marked on its
version (:func:`mark_unreadable`) with the file's size and time, so that version is passed
over (:func:`usable`) until the file changes, and the project page says why.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from fewclick.server.db import ModelVersion
from fewclick.server.storage import projects, versions

log = logging.getLogger(__name__)

KEEP_VERSIONS = 5  # per task, the newest versions kept beside the serving and the pinned one
BUDGET_ENV = "FEWCLICK_MODELS_GB"  # a project's model files' disk budget, in GB
DEFAULT_BUDGET_GB = 2.0


def project_folder(models_dir: Path | str, project_id: int) -> Path:
    return Path(models_dir) / str(project_id)


def trainer_folder(models_dir: Path | str, project_id: int | str) -> Path:
    """Where the project's background trainer keeps its rounds and ``state.json``."""
    return Path(models_dir) / str(project_id) / "trainer"


def budget_bytes() -> int:
    """The disk budget of one project's model files (:data:`BUDGET_ENV`, else 2 GB)."""
    raw = os.environ.get(BUDGET_ENV)
    try:
        gb = DEFAULT_BUDGET_GB if raw is None else float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV} must be a number of GB, got {raw!r}") from None
    if not 0 < gb < float("inf"):
        raise ValueError(f"{BUDGET_ENV} must be a positive finite number of GB, got {raw!r}")
    return int(gb * 1024**3)


def usage(models_dir: Path | str, project_id: int) -> int:
    """The bytes the project's model files take on disk."""
    return _size(project_folder(models_dir, project_id))


def holdings(models_dir: Path | str, project_id: int, live: list[ModelVersion]) -> dict:
    """What the project's model files hold, in bytes: ``versions``, the folders of the
    ``live`` (not collected) versions; ``rounds``, each of the trainer's round folders that
    no live version names, as ``{"round": number, "bytes": ..., "finished": bool}``
    (finished: in the trainer's state, scored or too few held-out objects to score, and not
    a version; else being trained or scored now); ``comparisons``, the mask backends'
    comparisons; ``other``, the rest (the trainer's state and lock). The parts add up to
    :func:`usage`."""
    from fewclick.active.continual import ROUND_PREFIX, TrainerState

    root = project_folder(models_dir, project_id)
    folders = {f.resolve() for v in live if (f := _owned_folder(root, v.path)) is not None}
    work = trainer_folder(models_dir, project_id)
    finished = {Path(r.path).resolve().parent for r in TrainerState.read(work).rounds}
    rounds = [
        {"round": _round_number(f.name), "bytes": _size(f), "finished": f.resolve() in finished}
        for f in sorted(work.glob(f"{ROUND_PREFIX}*"))
        if f.is_dir() and f.resolve() not in folders
    ]
    versions = sum(_size(f) for f in folders)
    comparisons = _size(root / "backends")
    other = usage(models_dir, project_id) - versions - comparisons - sum(r["bytes"] for r in rounds)
    rounds.sort(key=lambda r: r["round"])
    return {"versions": versions, "rounds": rounds, "comparisons": comparisons, "other": max(other, 0)}


def _round_number(name: str) -> int:
    """The number in a round's folder name (``round<number>-<random>``; 0 when it has none)."""
    digits = name.removeprefix("round").partition("-")[0]
    return int(digits) if digits.isdigit() else 0


def wire_file(path: str | None, models_dir: Path | str | None, project_id: int) -> str | None:
    """A model file as the API names it: relative to the project's models folder when it is
    inside (e.g. ``trainer/round3-1a2b3c4d/last.pt``), else its name alone (no server path
    is told to a client)."""
    if path is None:
        return None
    if models_dir is not None:
        try:
            return (
                Path(path).resolve().relative_to(project_folder(models_dir, project_id).resolve()).as_posix()
            )
        except ValueError:
            pass
    return Path(path).name


# --------------------------------------------------------------------- unreadable files
def stamp(path: str) -> str:
    """The file's size and modification time, or ``missing``: a changed file is read again."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}-{st.st_mtime_ns}"


def collected(version: ModelVersion) -> bool:
    return bool((version.metrics or {}).get("collected"))


def unreadable(version: ModelVersion) -> str | None:
    """Why ``version``'s file could not be read when it was last tried, while the file is as
    it was then; None when it reads (or has changed since)."""
    mark = (version.metrics or {}).get("unreadable")
    if not mark or mark.get("stamp") != stamp(version.path):
        return None
    return mark.get("why") or "unreadable"


def usable(version: ModelVersion) -> bool:
    """Whether ``version`` may serve: its files are kept and were not found unreadable."""
    return not collected(version) and unreadable(version) is None


def mark_unreadable(version: ModelVersion, why: str) -> None:
    """Record that ``version``'s file could not be read (the caller commits); what serves is
    decided anew."""
    from sqlalchemy.orm import object_session

    version.metrics = {**(version.metrics or {}), "unreadable": {"why": why, "stamp": stamp(version.path)}}
    forget(object_session(version))


DECISION = "fewclick.serving"  # a session's memo of what serves click-to-detect (serving.decision)


def forget(session) -> None:
    """Drop ``session``'s memo of what serves (:func:`fewclick.server.serving.decision` reads
    it anew on the next call)."""
    if session is not None:
        session.info.pop(DECISION, None)


def serving_version(detectors: list[ModelVersion], pin: int | None) -> ModelVersion | None:
    """Among a project's ``detectors`` the one that serves: the ``pin`` when it is usable,
    else the newest usable one; None when ``pin`` is 0 (the training-free start) or none is."""
    if pin == 0:
        return None
    pinned = next((v for v in detectors if pin is not None and v.version == pin), None)
    if pinned is not None and usable(pinned):
        return pinned
    return max((v for v in detectors if usable(v)), key=lambda v: v.version, default=None)


# --------------------------------------------------------------------- collection
def collect(session: Session, project_id: int, models_dir: Path | str, trainer=None) -> list[ModelVersion]:
    """Mark collected the versions beyond what is kept (module docstring) and delete their
    folders where nothing else names a file inside; then the trainer's rounds that nothing
    names (``trainer``: the live :class:`~fewclick.active.continual.ContinualTrainer`, whose
    process calls this between rounds; None: its rounds are left alone). The versions
    collected now. What the trainer's state names stays either way. Rows are committed
    before any file goes."""
    from fewclick.active.continual import TrainerState

    root = project_folder(models_dir, project_id)
    rows = list(versions.model_versions(session, project_id))
    state = (
        trainer.state if trainer is not None else TrainerState.read(trainer_folder(models_dir, project_id))
    )
    trainer_named = state.named()
    keep = _kept(session, project_id, rows, trainer_named, root)
    gone = [v for v in rows if v.id not in keep and not collected(v)]
    for v in gone:
        v.metrics = {**(v.metrics or {}), "collected": True}
    session.commit()
    named = {v.path for v in rows if not collected(v)} | trainer_named
    for v in gone:
        folder = _owned_folder(root, v.path)
        if folder is not None and not any(_inside(p, folder) for p in named):
            shutil.rmtree(folder, ignore_errors=True)
    if trainer is not None:
        trainer.collect(named)
    if gone:
        log.info("project %s: collected model versions %s", project_id, [(v.task, v.version) for v in gone])
    return gone


def _kept(
    session: Session, project_id: int, rows: list[ModelVersion], trainer_named: set[str], root: Path
) -> set:
    """The ids of the versions kept: per task the serving one, the pinned detector, those the
    trainer names and the newest :data:`KEEP_VERSIONS` others, less the oldest of those
    others while the files are over the budget."""
    pin = projects.pinned_detector(session, project_id)
    serving = serving_version([v for v in rows if v.task == "detect"], pin)
    protected = {v.id for v in rows if v.path in trainer_named}
    protected |= {v.id for v in rows if v.task == "detect" and pin and v.version == pin}
    protected |= {serving.id} if serving is not None else set()
    before = _served_before(rows, serving)  # requests in flight may still name it
    protected |= {before.id} if before is not None else set()
    others = []
    for task in {v.task for v in rows}:
        live = sorted((v for v in rows if v.task == task and not collected(v)), key=lambda v: -v.version)
        if live and task != "detect":  # the newest mask or point model serves
            protected.add(live[0].id)
        others += [v for v in live if v.id not in protected][:KEEP_VERSIONS]
    total, budget = _size(root), budget_bytes()
    for v in sorted(others, key=lambda v: v.id):  # over budget: the oldest go first
        if total <= budget:
            break
        folder = _owned_folder(root, v.path)
        total -= _size(folder) if folder is not None else 0
        others.remove(v)
    return protected | {v.id for v in others}


def _served_before(rows: list[ModelVersion], serving: ModelVersion | None) -> ModelVersion | None:
    """The newest usable detector before ``serving``: what served until it came."""
    if serving is None:
        return None
    older = [v for v in rows if v.task == "detect" and v.version < serving.version and usable(v)]
    return max(older, key=lambda v: v.version, default=None)


def _owned_folder(root: Path, path: str) -> Path | None:
    """The folder a version's files are in (its path when a folder, else the path's folder),
    when it lies strictly inside the project's folder and is not the trainer's or a task's
    folder; None otherwise (nothing of it is deleted)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    try:
        parts = folder.resolve().relative_to(root.resolve()).parts
    except ValueError:
        return None
    if len(parts) < 2:  # the project's folder, or the trainer's / a task's
        return None
    return folder


def _inside(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # gone meanwhile
                pass
    return total
