"""The soak test's faults (``benchmarks/soak.py``): when each kind comes (:data:`WINDOWS`),
and how each is made. Each fault function takes the run (a :class:`soak.Soak`) and the
:class:`Fault`, makes the fault and returns None, or returns why it cannot yet (no version
serves to truncate, no trainer is mid-round to kill, ...): the run tries it again later."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from _server import descendants, wait_gone
from _soak import say
from campaign import Failed, _ok

if TYPE_CHECKING:
    from soak import Soak

#: when each kind of fault may come, as fractions of the run (drawn uniformly from --seed)
WINDOWS = {
    # early: they reset the trainers' rounds (a class change starts afresh, a restart trains
    # the round cut short again), so they come before the trainers' first rounds end
    "server_restart": (0.10, 0.30),
    "class_added": (0.10, 0.30),
    "class_renamed": (0.15, 0.35),
    "label_edit": (0.20, 0.80),
    # the model faults: once a trainer has had time for a version
    "checkpoint_enospc": (0.50, 0.70),
    "trainer_kill": (0.50, 0.75),
    "checkpoint_truncate": (0.60, 0.90),
}
#: the faults whose check waits for the trainer too (it warm-starts from the truncated file)
TRAINER_FAULTS = {"trainer_kill", "checkpoint_enospc", "class_added", "class_renamed", "checkpoint_truncate"}
ENOSPC_SECONDS = (60.0, 180.0, 0.15)  # the full disk lasts this share of the run, within bounds


@dataclass
class Fault:
    """One fault: its kind, when it was drawn for and when it came (seconds into the run),
    its project, what was done, whether it was survived and the answers >= 500 meanwhile."""

    kind: str
    at: float
    project: int
    injected_at: float | None = None
    ended_at: float | None = None  # a fault that lasts (the full disk): when it ended
    survived: bool | None = None
    errors_after: int = 0
    skipped: str | None = None
    detail: dict = field(default_factory=dict)


def schedule(rng: random.Random, seconds: float, projects: list[int]) -> list[Fault]:
    """One fault of each kind of :data:`WINDOWS`, at a time drawn in its window of a run of
    ``seconds``, on a project drawn from ``projects``; in the order they come."""
    faults = [
        Fault(kind, round(rng.uniform(lo, hi) * seconds, 1), rng.choice(projects))
        for kind, (lo, hi) in WINDOWS.items()
    ]
    return sorted(faults, key=lambda f: f.at)


def enospc_seconds(seconds: float) -> float:
    low, high, share = ENOSPC_SECONDS
    return min(high, max(low, share * seconds))


def server_restart(soak: Soak, fault: Fault) -> str | None:
    """SIGTERM to the server (its processes' group), then started again on the same port."""
    before = {soak.server.process.pid} | descendants(soak.server.process.pid)
    began = time.monotonic()
    soak.server.stop()
    stopped = time.monotonic()
    left = wait_gone(before, 15)  # the server's processes end with it
    soak.server.start()
    fault.detail.update(
        downtime_seconds=round(time.monotonic() - began, 1),
        stop_seconds=round(stopped - began, 1),
        alive_15s_after_stop=sorted(left),
    )
    return None


def trainer_kill(soak: Soak, fault: Fault) -> str | None:
    """SIGKILL to a trainer mid-round, of a project whose detector serves (the drawn
    project's first); after the kind's window, to any live trainer."""
    late = _late(soak, fault)
    for project_id, trainer in _trainers(soak, fault):
        pid = soak.trainer_pid(project_id)
        mid_round = trainer["status"] == "running" and trainer["progress"] > 0.05
        serves = _ok(soak.api.get(f"/api/projects/{project_id}"))["detector"] is not None
        if pid is None or not (late or (mid_round and serves)):
            continue
        os.kill(pid, signal.SIGKILL)
        fault.project = project_id
        fault.detail.update(
            pid=pid, job=trainer["id"], round_progress=trainer["progress"], steps=trainer["steps"]
        )
        return None
    return "no trainer process is mid-round in a project a version serves"


def class_added(soak: Soak, fault: Fault) -> str | None:
    """A class added to the project; its annotators learn its id (they never draw it)."""
    project = soak.projects[fault.project]
    cls = _ok(soak.api.post(f"/api/projects/{project.id}/classes", json={"name": "soak added"}))
    project.position[cls["id"]] = cls["position"]  # before class_id: an answer may name it first
    project.class_id[cls["position"]] = cls["id"]
    fault.detail.update(class_id=cls["id"], name=cls["name"], position=cls["position"])
    return None


def class_renamed(soak: Soak, fault: Fault) -> str | None:
    """One of the dataset's classes renamed (the annotators keep it by id)."""
    project = soak.projects[fault.project]
    classes = _ok(soak.api.get(f"/api/projects/{project.id}"))["classes"]
    cls = soak.rng.choice([c for c in classes if c["name"] != "soak added"])
    new = f"{cls['name']} (renamed)"
    _ok(soak.api.patch(f"/api/classes/{cls['id']}", json={"name": new}))
    fault.detail.update(class_id=cls["id"], old=cls["name"], new=new)
    return None


def label_edit(soak: Soak, fault: Fault) -> str | None:
    """A box of a finished image moved by 2 px (the next trainer round takes the new one)."""
    mine = {im["id"] for im in soak.projects[fault.project].images}
    done = [i for i in soak.ledger.done_images() if i in mine]
    for image_id in soak.rng.sample(done, len(done)):
        image = _ok(soak.api.get(f"/api/images/{image_id}"))
        boxes = [a for a in image["annotations"] if "box" in a["geometry"]]
        if not boxes:
            continue
        a = soak.rng.choice(boxes)
        moved = [v + 2.0 for v in a["geometry"]["box"]]
        body = {"geometry": {"box": moved}, "revision": image["revision"]}
        _ok(soak.api.patch(f"/api/annotations/{a['id']}", json=body))
        fault.detail.update(image=image_id, annotation=a["id"], box=[a["geometry"]["box"], moved])
        return None
    return "no finished image with a box yet"


def checkpoint_truncate(soak: Soak, fault: Fault) -> str | None:
    """The serving detector's file (the drawn project's first) cut to half its size."""
    for project_id in _projects(soak, fault):
        detector = _ok(soak.api.get(f"/api/projects/{project_id}"))["detector"]
        if detector is None:
            continue
        path, via = model_path(soak, project_id, detector)
        size = path.stat().st_size
        os.truncate(path, size // 2)
        fault.project = project_id
        fault.detail.update(
            version=detector["version"], file=str(path), bytes=[size, size // 2], file_from=via
        )
        return None
    return "no trained detector serves yet"


def checkpoint_enospc(soak: Soak, fault: Fault) -> str | None:
    """Every checkpoint write fails with ENOSPC for :func:`enospc_seconds`, from when a
    trainer's round (by its pace in the soak's polls) will end within the first 60% of that
    time, once a detector serves somewhere (the full disk drops the rounds that end in it: on
    2 cores a 20-minute run has one round end per trainer, which the truncation needs); after
    the kind's window, at once."""
    seconds = enospc_seconds(soak.seconds)
    ends = {p: round_ends_in(soak.trainers, p) for p in _projects(soak, fault)}
    soon = [p for p, left in ends.items() if left is not None and left < 0.6 * seconds]
    serves = any(_ok(soak.api.get(f"/api/projects/{p}"))["detector"] for p in soak.projects)
    fault.detail["round_ends_in_seconds"] = ends
    if not (soon and serves) and not _late(soak, fault):
        return f"no trainer's round ends within {0.6 * seconds:.0f} s, or no detector serves yet"
    fault.project = soon[0] if soon else fault.project
    switch = soak.faults_dir / "enospc"
    switch.touch()
    fault.detail.update(switch=str(switch), seconds=seconds, trainers_at_start=_steps(soak, fault))

    def end() -> None:
        switch.unlink(missing_ok=True)
        fault.ended_at = round(soak.log.elapsed(), 1)
        fault.detail["trainers_at_end"] = _steps(soak, fault)  # a round ended meanwhile?
        say(f"fault checkpoint_enospc ended at {fault.ended_at / 60:.1f} min")
        soak.check_later(fault)

    soak.later(soak.log.elapsed() + seconds, end, must=True)
    return None


def round_ends_in(polls: list[dict], project_id: int, span: float = 120.0) -> float | None:
    """Seconds until the project's trainer ends its round, from the pace of its share of the
    round done over its polls of the last ``span`` seconds (one job, running, one round);
    None when that is not known."""
    mine = [r for r in polls if r["project"] == project_id]
    if not mine or mine[-1]["status"] != "running":
        return None
    last = first = mine[-1]
    for r in reversed(mine[:-1]):
        same = r["job"] == last["job"] and r["status"] == "running" and r["progress"] <= first["progress"]
        if not same or last["at"] - r["at"] > span:
            break
        first = r
    if last["progress"] <= first["progress"]:
        return None
    pace = (last["progress"] - first["progress"]) / (last["at"] - first["at"])
    return round((1 - last["progress"]) / pace, 1)


def _projects(soak: Soak, fault: Fault) -> list[int]:
    """The fault's project first, then the others."""
    return [fault.project] + [p for p in soak.projects if p != fault.project]


def _trainers(soak: Soak, fault: Fault) -> list[tuple[int, dict]]:
    """(project, its live trainer) of the projects with one, the fault's project first."""
    found = [(p, _ok(soak.api.get(f"/api/projects/{p}"))["trainer"]) for p in _projects(soak, fault)]
    return [(p, t) for p, t in found if t is not None]


def _steps(soak: Soak, fault: Fault) -> dict[int, str]:
    """Each live trainer's job, status, steps and share of its round done, by project (what
    the app answered instead, when it did not)."""
    try:
        trainers = _trainers(soak, fault)
    except Failed as exc:
        return {fault.project: str(exc)}
    return {p: f"job {t['id']} {t['status']} {t['steps']} steps ({t['progress']:.0%})" for p, t in trainers}


def _late(soak: Soak, fault: Fault) -> bool:
    """Whether the fault's window has passed (it then comes as it can)."""
    return soak.log.elapsed() > soak.seconds * WINDOWS[fault.kind][1]


INJECT = {
    "server_restart": server_restart,
    "trainer_kill": trainer_kill,
    "class_added": class_added,
    "class_renamed": class_renamed,
    "label_edit": label_edit,
    "checkpoint_truncate": checkpoint_truncate,
    "checkpoint_enospc": checkpoint_enospc,
}


def trainer_process(data: Path, project_id: int) -> dict | None:
    """What the project's trainer wrote of its process (``pid``, ...) as it started, or
    None when it wrote nothing (an app before issue 51)."""
    path = Path(data) / "models" / str(project_id) / "trainer" / "process.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def model_path(soak: Soak, project_id: int, version: dict) -> tuple[Path, str]:
    """The file of a detector version: its ``file`` field (relative to
    ``<data>/models/<project>/``), else its row's path in the database."""
    if version.get("file"):
        return soak.server.data / "models" / str(project_id) / version["file"], "file field"
    from fewclick.server.db import ModelVersion, make_engine, session_factory

    engine = make_engine(soak.db_url)
    with session_factory(engine)() as session:
        row = (
            session.query(ModelVersion)
            .filter_by(project_id=project_id, task="detect", version=version["version"])
            .one()
        )
        path = Path(row.path)
    engine.dispose()
    return (path if path.is_absolute() else soak.server.data / "models" / str(project_id) / path), "database"
