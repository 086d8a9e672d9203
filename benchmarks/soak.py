"""The soak test of issue 51: the app under a team's work for ``--minutes`` while faults are
made, and what was lost or left behind.

    python benchmarks/soak.py --minutes M --db sqlite|postgresql --seed S --out F.json --work W
        [--data ../shared/data/bccd ../shared/data/hit_uav] [--annotators 8]

Set-up: ``fewclick serve`` (benchmarks/_server.py; SQLite in ``W/app``, or a throwaway
PostgreSQL server, benchmarks/_postgres.py) with ``FEWCLICK_FAULTS`` set; one project per
``--data`` made through the HTTP API (the dataset's annotations imported as the hidden
reference: the simulated person's eye), set to no training jobs of its own; its background
trainer ("Keep training", ``POST /api/projects/{id}/trainer``, rounds of the default size)
started as soon as an image is finished; and ``--annotators`` simulated people (the
campaign's :class:`campaign.Annotator`, detect mode, taking a person's time before each
action), each a user of their own, dealt to the projects in turn, finishing images one
after another (finished images feed the trainers).

Faults (benchmarks/_soak_faults.py), each at a time drawn from ``--seed`` within its window
(``WINDOWS``, fractions of the run: those that reset the trainers' rounds early, the model
faults in the second half, once a trainer has had time for a version; one that is not
possible yet, e.g. no version serves to truncate, is tried again every RETRY_FAULT_SECONDS
until LATE_SECONDS before the end, then skipped with the reason):
``server_restart`` (SIGTERM, then started again on the same port: meanwhile requests find no
server, and each waits and is sent again, an unacknowledged save included; the wait is not
an error but is counted), ``trainer_kill`` (SIGKILL to a trainer mid-round, its pid from
``<data>/models/<project>/trainer/process.json``), ``class_added`` and ``class_renamed``
(the annotators keep working, by class id), ``label_edit`` (a finished image's box moved
through the API), ``checkpoint_truncate`` (the serving detector's file cut to half its
size) and ``checkpoint_enospc`` (while ``<faults>/enospc`` exists every checkpoint write
fails with ENOSPC; it exists for a share of the run, 1 to 3 minutes, from when a trainer is
in the second half of a round). A fault is survived when within
SURVIVE_SECONDS the project's page answers, a click on the project is answered, and after
the faults that reach the trainer (all but the restart and the label edit) its trainer
runs again (a live process under the server names its job in ``process.json``) or has
stopped with a message, WATCH_SECONDS after the fault at the earliest (a trainer reads a
checkpoint as its next round starts); and no answer >= 500 came meanwhile. After such a
fault the soak presses Keep training again when the trainer has stopped, as a person would.

Counted (``totals``): ``server_errors``, answers >= 500 to anyone (annotators and the soak);
``lost_saves``, acknowledged annotation writes and status moves the app does not hold at
the end (every 2xx write is kept in a ledger across restarts, benchmarks/_soak.py);
``stuck_jobs``, live trainer jobs of the API with no live process that names them (/proc,
``process.json``) at the end, read twice 30 s apart;
``orphan_processes``, processes of any server run (the server and everything under it,
sampled every SAMPLE_SECONDS while it ran) still alive 30 s after the last stop;
``wrong_model_answers``, detect answers whose ``model_file`` is not the file of the version
``model_version`` names, or with no ``fallback`` whose ``model_version`` is not the
``requested_version`` (answers without these fields are counted as unverified). Writes F.json,
F.md and F.png (requests, errors and latency per minute, the faults marked). SIGTERM, SIGINT
and errors stop the server, its trainers and PostgreSQL.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from _common import load_average, run_record, write_report
from _server import ServerProcess, alive, descendants
from _soak import (
    DETECT,
    LIVE,
    Ledger,
    ModelAnswers,
    RequestLog,
    by_endpoint,
    command_line,
    endpoint,
    log_errors,
    page,
    per_minute,
    plot,
    say,
    start_tick,
)
from _soak_faults import INJECT, TRAINER_FAULTS, Fault, schedule, trainer_process
from campaign import Annotator, Failed, Recorder, TimedClient, _ok
from load import database

from fewclick.io import read_dataset
from fewclick.types import geometry_only

DATA = [Path("../shared/data/bccd"), Path("../shared/data/hit_uav")]
ANNOTATORS = 8
ROUND_STEPS = 60  # a trainer round of the soak: versions switch every few minutes on 2 loaded cores
ARRIVALS_SECONDS = 60.0  # the annotators start spread over this long, as people arrive
SURVIVE_SECONDS = 240.0  # a fault's checks must pass within this long
WATCH_SECONDS = 60.0  # ... and a trainer's must still pass this long after the fault
RETRY_FAULT_SECONDS = 15.0  # a fault not possible yet is tried again this much later
LATE_SECONDS = 30.0  # ... until this long before the end
RETRY_SECONDS = 1.0  # a request that found no server is sent again this much later
GIVE_UP_SECONDS = 600.0  # ... for at most this long
TIMEOUT_SECONDS = 600.0  # an answer slower than this is no answer
POLL_SECONDS = 10.0  # the soak reads the projects (versions, trainers) this often
SAMPLE_SECONDS = 2.0  # ... and the server's processes this often
NO_SERVER = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class Stopped(Exception):
    """The run is over: an annotator stops where it is."""


class SoakClient(TimedClient):
    """The campaign's timed client that waits for a server that is not there (and sends the
    request again, a save included, once it answers), logs every answer, and feeds the
    acknowledged saves to the ledger and the detect answers to their check. With ``stop``,
    a request after the run's end raises :class:`Stopped`."""

    def __init__(self, soak: Soak, stop: threading.Event | None = None, **kwargs) -> None:
        super().__init__(soak.recorder, base_url=soak.server.base, timeout=TIMEOUT_SECONDS, **kwargs)
        self.soak, self.stop = soak, stop

    def request(self, method: str, url, **kwargs) -> httpx.Response:
        where = endpoint(method, url)
        response = self._send(method, url, where, kwargs)
        if response.status_code < 300:
            self._observe(method, response.request.url.path, response)
        return response

    def _send(self, method: str, url, where: str, kwargs: dict) -> httpx.Response:
        log, began = self.soak.log, None
        while True:
            if self.stop is not None and self.stop.is_set():
                raise Stopped
            started = time.perf_counter()
            try:
                response = httpx.Client.request(self, method, url, **kwargs)
            except NO_SERVER as exc:  # down (a restart): wait, then send it again
                began = began or time.monotonic()
                if time.monotonic() - began > GIVE_UP_SECONDS:
                    log.failed(where, f"no server for {GIVE_UP_SECONDS:.0f} s")
                    raise Failed(f"{where}: no server ({type(exc).__name__})", None) from None
                self._pause(RETRY_SECONDS)
                continue
            except httpx.TransportError as exc:
                log.failed(where, type(exc).__name__)
                raise Failed(f"{where}: no answer ({type(exc).__name__})", None) from None
            ms = (time.perf_counter() - started) * 1000
            if began is not None:  # the wait until it was sent to a server that took it
                log.waited(where, time.monotonic() - began - ms / 1000)
            self.record.add(where, ms)
            log.answer(where, response.status_code, ms, response.text if response.status_code >= 500 else "")
            return response

    def _pause(self, seconds: float) -> None:
        if self.stop is None:
            time.sleep(seconds)
        elif self.stop.wait(seconds):
            raise Stopped

    def _observe(self, method: str, path: str, response: httpx.Response) -> None:
        if method in ("POST", "PATCH", "DELETE"):
            try:
                answer = response.json()
            except ValueError:
                return
            self.soak.ledger.saved(method, path, answer)
            if method == "POST" and (m := DETECT.search(path)):
                self.soak.answers.add(int(m.group(1)), answer, self.soak.log.elapsed())


class SoakAnnotator(Annotator):
    """The campaign's annotator, whose person's pauses end when the run does."""

    def __init__(self, *args, stop: threading.Event, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stop = stop

    def _think(self, seconds: float) -> None:
        if self.stop.wait(seconds if self.think and seconds > 0 else 0):
            raise Stopped


@dataclass
class Project:
    """A project of the soak: its classes (position -> id and back, shared with its
    annotators, who learn of an added class through them), images and ground truth."""

    id: int
    name: str
    data: str
    class_id: dict[int, int]
    position: dict[int, int]
    images: list[dict]
    truth: dict
    trainer_started: bool = False


class Soak:
    """One run: the server, the projects, the annotators, the faults and what was counted."""

    def __init__(self, args, server: ServerProcess, db_url: str, faults_dir: Path) -> None:
        self.args, self.server, self.db_url, self.faults_dir = args, server, db_url, faults_dir
        self.seconds = args.minutes * 60
        self.rng = random.Random(args.seed)
        self.recorder, self.log, self.ledger = Recorder(), RequestLog(), Ledger()
        self.answers = ModelAnswers({})
        self.stop, self.finished = threading.Event(), threading.Event()
        self.api: SoakClient | None = None
        self.projects: dict[int, Project] = {}
        self.faults: list[Fault] = []
        self.events: list = []  # (seconds into the run, order, action, must) of the main loop
        self.order = itertools.count()
        self.files: dict[int, dict[int, str]] = {}  # project -> detector version -> its file
        self.trainers: list[dict] = []  # the trainers as polled
        self.seen: dict[tuple[int, int], str] = {}  # (pid, start tick) -> command, every server run
        self.people: list[tuple[SoakAnnotator, Project, list[dict]]] = []
        self.threads: list[threading.Thread] = []
        self.monitor = threading.Thread(target=self._monitor, name="monitor", daemon=True)
        self.checks: list[threading.Thread] = []
        self.annotator_errors: list[str] = []

    # ---- set-up -------------------------------------------------------------------------

    def set_up(self) -> None:
        """The soak's admin, the projects and the annotators (each a user); the run's clock
        starts once they are made."""
        self.api = SoakClient(self, headers=self.server.add_user("soak", "admin"))
        for data in self.args.data:
            project = _make_project(self.api, Path(data))
            self.projects[project.id] = project
            self.files[project.id] = {}
            self.answers.image_project.update({im["id"]: project.id for im in project.images})
        ids, n = sorted(self.projects), self.args.annotators
        for k in range(n):
            project = self.projects[ids[k % len(ids)]]
            client = SoakClient(
                self, stop=self.stop, headers=self.server.add_user(f"annotator{k}", "annotator")
            )
            person = SoakAnnotator(
                client, project.id, project.class_id, project.position, self.recorder, True, stop=self.stop
            )
            colleagues = range(k % len(ids), n, len(ids))  # the annotators of this project
            self.people.append((person, project, project.images[k // len(ids) :: len(colleagues)]))
        self.log.start = time.monotonic()
        self.faults = schedule(self.rng, self.seconds, ids)

    def start_annotators(self) -> None:
        for k, (person, project, images) in enumerate(self.people):
            delay = k * ARRIVALS_SECONDS / len(self.people)
            thread = threading.Thread(target=self._work, args=(person, project, images, delay), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.monitor.start()

    def _work(self, person: SoakAnnotator, project: Project, images: list[dict], delay: float) -> None:
        """One person's images, one after another, until the run ends."""
        if self.stop.wait(delay):
            return
        for im in images:
            try:
                person.annotate(im, project.truth[im["file_name"]], "detect")
            except Stopped:
                return
            except Exception as exc:  # the annotator's own failure: recorded, and on to the next image
                self.annotator_errors.append(f"image {im['id']}: {type(exc).__name__}: {exc}")
        person.preparing.shutdown(wait=False)

    # ---- what the soak watches while it runs --------------------------------------------

    def _monitor(self) -> None:
        polled = 0.0
        while not self.finished.is_set():
            self.sample_processes()
            if time.monotonic() - polled >= POLL_SECONDS:
                polled = time.monotonic()
                for project in self.projects.values():
                    try:
                        self._poll(project)
                    except Failed:
                        pass  # the answer is in the log; the next poll tries again
                    except Exception as exc:  # the soak's own failure: recorded, and it goes on
                        self.annotator_errors.append(f"monitor: {type(exc).__name__}: {exc}")
            self.finished.wait(SAMPLE_SECONDS)

    def sample_processes(self) -> None:
        process = self.server.process
        if process is None:
            return
        for pid in {process.pid} | descendants(process.pid):
            tick = start_tick(pid)
            if tick is not None:
                self.seen.setdefault((pid, tick), command_line(pid))

    def _poll(self, project: Project) -> None:
        """The project's versions and their files, its trainer as it is; its trainer
        started once an image is finished."""
        r = self.api.get(f"/api/projects/{project.id}")
        if r.status_code != 200:
            return
        detail = r.json()
        for m in detail["models"]:
            if m["task"] == "detect" and m.get("file"):
                self.files[project.id][m["version"]] = m["file"]
        trainer, detector = detail["trainer"], detail["detector"]
        row = {"at": round(self.log.elapsed(), 1), "project": project.id}
        for key in ("id", "status", "steps", "progress", "message"):
            row[key if key != "id" else "job"] = None if trainer is None else trainer[key]
        self.trainers.append({**row, "serving": None if detector is None else detector["version"]})
        if not project.trainer_started:
            started = self.api.post(f"/api/projects/{project.id}/trainer", json={"action": "start"})
            project.trainer_started = started.status_code in (202, 409)  # 400: no finished image yet
            if project.trainer_started:
                say(f"project {project.name}: trainer started at {self.log.elapsed() / 60:.1f} min")

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> None:
        """The faults and the minutes' progress lines at their times, until the run ends."""
        for fault in self.faults:
            self.later(fault.at, lambda f=fault: self._try(f))
        for minute in range(1, int(self.seconds // 60) + 1):
            self.later(minute * 60.0, lambda m=minute: self._progress(m))
        while self.events and self.events[0][0] <= self.seconds:
            at, _, action, _ = heapq.heappop(self.events)
            time.sleep(max(0.0, at - self.log.elapsed()))
            action()
        time.sleep(max(0.0, self.seconds - self.log.elapsed()))
        for _, _, action, must in sorted(self.events):  # what must still happen: the full disk ends
            if must:
                action()
        for fault in self.faults:
            if fault.injected_at is None and fault.skipped is None:
                fault.skipped = fault.detail.pop("waiting", "the run ended first")

    def later(self, at: float, action, must: bool = False) -> None:
        """``action()`` at ``at`` seconds into the run; with ``must``, at the run's end at the
        latest."""
        heapq.heappush(self.events, (at, next(self.order), action, must))

    def _try(self, fault: Fault) -> None:
        """Make ``fault`` now, or when it is not possible yet, try again later (until
        LATE_SECONDS before the end: then it is skipped with the reason)."""
        began = round(self.log.elapsed(), 1)
        try:
            reason = INJECT[fault.kind](self, fault)
        except Failed as exc:  # the app refused a step of it: in the log, and tried again
            reason = f"the app refused: {exc}"
        if reason is None:
            fault.detail.pop("waiting", None)
            fault.injected_at = began
            minute = fault.injected_at / 60
            say(f"fault {fault.kind} on project {fault.project} at {minute:.1f} min: {fault.detail}")
            if fault.kind != "checkpoint_enospc":  # that one is checked once the disk has room again
                self.check_later(fault)
            return
        fault.detail["waiting"] = reason
        again = self.log.elapsed() + RETRY_FAULT_SECONDS
        if again < self.seconds - LATE_SECONDS:
            self.later(again, lambda: self._try(fault))
        else:
            fault.skipped = reason
            say(f"fault {fault.kind} skipped: {reason}")

    def _progress(self, minute: int) -> None:
        row = next((r for r in per_minute(self.log) if r["minute"] == minute - 1), None) or {}
        trainers = {}
        for t in self.trainers:
            trainers[self.projects[t["project"]].name] = (
                f"{t['status']} {t['steps']} steps, serving v{t['serving']}"
            )
        say(
            f"minute {minute}/{self.args.minutes:g}: {row.get('requests', 0)} answers, "
            f"{row.get('server_errors', 0)} >= 500, {row.get('waited_for_server', 0)} waited for the server, "
            f"p95 {row.get('p95_ms')} ms; {len(self.ledger.done_images())} images done; "
            f"trainers: {trainers}; load {load_average()}"
        )

    # ---- after a fault: did the app survive it? ----------------------------------------

    def check_later(self, fault: Fault) -> None:
        thread = threading.Thread(target=self._survive, args=(fault,), daemon=True)
        thread.start()
        self.checks.append(thread)

    def _survive(self, fault: Fault) -> None:
        """Whether the app survived ``fault`` (module docstring), checked every 10 s for up
        to SURVIVE_SECONDS; then, after a fault that reaches the trainer, Keep training again
        when it has stopped, as a person would."""
        began = self.log.elapsed()
        project = self.projects[fault.project]
        trainer = fault.kind in TRAINER_FAULTS and project.trainer_started
        check = {"page": False, "click": False, "trainer": not trainer}
        try:
            while self.log.elapsed() - began < SURVIVE_SECONDS:
                check["page"] = self.api.get(f"/api/projects/{project.id}").status_code == 200
                check["click"] = check["click"] or self._probe(project) == 200
                if trainer:
                    check["trainer"], check["trainer_state"] = self._trainer_back(project, fault)
                watched = self.log.elapsed() - began >= (WATCH_SECONDS if trainer else 0)
                if check["page"] and check["click"] and check["trainer"] and watched:
                    break
                time.sleep(10.0)
        except Failed as exc:
            check["failed"] = str(exc)
        check["seconds"] = round(self.log.elapsed() - began, 1)
        fault.errors_after = self.log.errors_between(fault.injected_at, self.log.elapsed())
        fault.survived = bool(
            check["page"] and check["click"] and check["trainer"] and not fault.errors_after
        )
        fault.detail["check"] = check
        say(f"fault {fault.kind}: {'survived' if fault.survived else 'NOT survived'} {check}")
        if trainer:
            self._keep_training(project, fault)

    def _probe(self, project: Project) -> int:
        """A click on a finished image of the project (else its first), at its centre."""
        done = set(self.ledger.done_images())
        image = next((im for im in project.images if im["id"] in done), project.images[0])
        click = [image["width"] / 2, image["height"] / 2, project.class_id[0]]
        return self.api.post(f"/api/images/{image['id']}/detect", json={"clicks": [click]}).status_code

    def _trainer_back(self, project: Project, fault: Fault) -> tuple[bool, str]:
        """Whether the project's trainer runs again (a live process under the server names
        its job in ``process.json``, not the one killed) or has stopped with a message; and
        in words how it is."""
        trainer = _ok(self.api.get(f"/api/projects/{project.id}"))["trainer"]
        if trainer is None:
            jobs = _ok(self.api.get(f"/api/projects/{project.id}/jobs"))
            last = next((j for j in reversed(jobs) if j["kind"] == "trainer"), None)
            if last is not None and last["message"]:
                return True, f"stopped ({last['status']}): {last['message']}"
            return False, "no trainer, and no message"
        if trainer["status"] not in ("running", "paused"):
            return False, f"{trainer['status']} (job {trainer['id']}): {trainer['message']}"
        info = trainer_process(self.server.data, project.id) or {}
        pid = self.trainer_pid(project.id)
        if pid is None or info.get("job_id") != trainer["id"] or pid == fault.detail.get("pid"):
            return False, f"{trainer['status']} (job {trainer['id']}) with no live process: {info}"
        return True, f"{trainer['status']} (job {trainer['id']}), process {pid}"

    def _keep_training(self, project: Project, fault: Fault) -> None:
        """As a person would: Keep training again when the trainer has stopped."""
        r = self.api.post(f"/api/projects/{project.id}/trainer", json={"action": "start"})
        if r.status_code == 202:
            fault.detail["trainer started again by the soak"] = round(self.log.elapsed(), 1)

    def trainer_pid(self, project_id: int) -> int | None:
        """The pid of the project's trainer when it is alive and under the server."""
        info = trainer_process(self.server.data, project_id)
        process = self.server.process
        if info is None or process is None:
            return None
        pid = int(info["pid"])
        return pid if alive(pid) and pid in descendants(process.pid) else None

    # ---- the end ------------------------------------------------------------------------

    def wind_down(self) -> None:
        """The annotators stop (their last requests answered) and the faults' checks end."""
        self.stop.set()
        deadline = time.monotonic() + 180
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread in self.checks:
            thread.join(SURVIVE_SECONDS + 60)
        (self.faults_dir / "enospc").unlink(missing_ok=True)

    def stuck_jobs(self) -> dict:
        """Live jobs whose process is not alive, read twice 30 s apart (a trainer just
        started may not have written its pid yet); jobs whose process cannot be told apart
        (no pid file) are counted as unverified."""
        first = self._unalive_jobs()
        if first["stuck"]:
            time.sleep(30)
            again = self._unalive_jobs()
            ids = {j["id"] for j in first["stuck"]}
            first["stuck"] = [j for j in again["stuck"] if j["id"] in ids]
        return first

    def _unalive_jobs(self) -> dict:
        """Live trainer jobs with no live process under the server that names them
        (``process.json``); other live jobs, whose process is not named, as unverified."""
        stuck, unverified = [], []
        for project in self.projects.values():
            for job in _ok(self.api.get(f"/api/projects/{project.id}/jobs")):
                if job["status"] not in LIVE:
                    continue
                row = {k: job[k] for k in ("id", "project_id", "kind", "status", "message")}
                if job["kind"] != "trainer":  # other jobs name no process
                    unverified.append(row)
                    continue
                info = trainer_process(self.server.data, project.id) or {}
                if info.get("job_id") != job["id"] or self.trainer_pid(project.id) is None:
                    stuck.append({**row, "process": info})
        return {"stuck": stuck, "unverified": unverified}

    def final_checks(self) -> dict:
        """What is counted with the server still up: saves, jobs, model answers."""
        for project in self.projects.values():
            self._poll(project)  # the versions' files as they are at the end
        saves = self.ledger.check(lambda image_id: _ok(self.api.get(f"/api/images/{image_id}")))
        return {
            "lost_saves": saves,
            "stuck_jobs": self.stuck_jobs(),
            "model_answers": self.answers.check(self.files),
        }

    def orphans(self) -> list[dict]:
        """The processes of every server run still alive 30 s after the last stop; then
        killed, so that the soak leaves nothing behind."""
        deadline = time.monotonic() + 30
        left = self._alive_seen()
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = self._alive_seen()
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return [{"pid": pid, "command": self.seen[(pid, tick)]} for pid, tick in left]

    def _alive_seen(self) -> list[tuple[int, int]]:
        return [(pid, tick) for pid, tick in self.seen if alive(pid) and start_tick(pid) == tick]

    def report(self, final: dict, orphans: list[dict]) -> dict:
        injected = [f for f in self.faults if f.injected_at is not None]
        kinds: dict[str, int] = {}
        for f in injected:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        restarts = [f.detail.get("downtime_seconds", 0.0) for f in injected if f.kind == "server_restart"]
        totals = {
            "faults_injected": len(injected),
            "faults_survived": sum(bool(f.survived) for f in injected),
            "fault_kinds": kinds,
            "server_errors": len(self.log.server_errors),
            "lost_saves": final["lost_saves"]["lost"],
            "stuck_jobs": len(final["stuck_jobs"]["stuck"]),
            "orphan_processes": len(orphans),
            "wrong_model_answers": final["model_answers"]["wrong"],
        }
        return {
            "totals": totals,
            "database": self.args.db,
            "minutes": self.args.minutes,
            "seed": self.args.seed,
            "annotators": self.args.annotators,
            "projects": [
                {"id": p.id, "name": p.name, "data": p.data, "images": len(p.images)}
                for p in self.projects.values()
            ],
            "images_done": len(self.ledger.done_images()),
            "faults": [asdict(f) for f in self.faults],
            "downtime_seconds": round(sum(restarts), 1),
            "waited_for_server_seconds": round(sum(w[2] for w in self.log.waits), 1),
            "requests_waited_for_server": len(self.log.waits),
            "no_answer": [{"at": round(a, 1), "endpoint": e, "what": w} for a, e, w in self.log.failures][
                :50
            ],
            "per_minute": per_minute(self.log),
            "endpoints": by_endpoint(self.log),
            "server_errors": self.log.server_errors[:50],
            "lost_saves": final["lost_saves"],
            "stuck_jobs": final["stuck_jobs"],
            "orphan_processes": orphans,
            "processes_seen": len(self.seen),
            "model_answers": final["model_answers"],
            "trainers": self.trainers,
            "annotator_errors": self.recorder.errors[:50] + self.annotator_errors[:20],
            "server_log": log_errors(self.server.log),
        }


# ---- helpers --------------------------------------------------------------------------------


def _make_project(api: SoakClient, data: Path) -> Project:
    """The project of ``data`` (its annotations the hidden reference), with no training jobs
    of its own (the background trainer learns); the images the annotators do, by name."""
    body = {"name": data.name, "dataset": str(data.resolve()), "reference": True}
    made = _ok(api.post("/api/projects", json=body))["project"]
    _ok(api.patch(f"/api/projects/{made['id']}", json={"auto_train_every": 0, "queue_train_every": 0}))
    truth = {r.file_name: geometry_only(r.objects, oriented=False) for r in read_dataset(data).images}
    listed = _ok(api.get(f"/api/projects/{made['id']}/images"))
    images = sorted((im for im in listed if im["file_name"] in truth), key=lambda im: im["file_name"])
    class_id = {c["position"]: c["id"] for c in made["classes"]}
    position = {v: k for k, v in class_id.items()}
    return Project(made["id"], made["name"], str(data), class_id, position, images, truth)


def live_jobs_in_database(db_url: str) -> list[dict]:
    """The jobs the database holds as live, read with the server stopped."""
    from fewclick.server.db import Job, make_engine, session_factory

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        rows = session.query(Job).filter(Job.status.in_(LIVE)).all()
        out = [{"id": j.id, "project_id": j.project_id, "kind": j.kind, "status": j.status} for j in rows]
    engine.dispose()
    return out


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    app = args.work / "app"
    faults_dir = args.work / "faults"
    for folder in (app, faults_dir):  # a fresh app each run
        shutil.rmtree(folder, ignore_errors=True)
    faults_dir.mkdir(parents=True)
    started = run_record("load_average_start", cores=os.cpu_count())
    with database(args.db, app) as (server_db, db_url):
        roots = sorted({str(Path(d).resolve().parent) for d in args.data})
        env = {"FEWCLICK_FAULTS": str(faults_dir), "FEWCLICK_TRAINER_ROUND_STEPS": str(args.round_steps)}
        server = ServerProcess(app, server_db, data_roots=roots, env=env)
        soak = Soak(args, server, db_url, faults_dir)
        report = _run(soak)
        report["live_jobs_after_stop"] = live_jobs_in_database(db_url)
    report.update(started, load_average_end=load_average())
    report["command"] = " ".join(["python benchmarks/soak.py", *argv])
    _write(report, args.out)
    print(json.dumps(report["totals"], indent=1))
    return 0


def _run(soak: Soak) -> dict:
    """Start, soak, count and stop; whatever happens (an error, SIGTERM, SIGINT), the server
    and everything it started are stopped."""
    orphans: list[dict] = []
    try:
        soak.server.start()
        soak.set_up()
        say(f"faults: {[(f.kind, f.at, f.project) for f in soak.faults]}")
        soak.start_annotators()
        soak.run()
        soak.wind_down()
        final = soak.final_checks()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up is not cut short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        soak.stop.set()
        soak.finished.set()
        (soak.faults_dir / "enospc").unlink(missing_ok=True)
        soak.sample_processes()
        soak.server.stop()
        orphans = soak.orphans()
    return soak.report(final, orphans)


def _write(report: dict, out: Path) -> None:
    write_report(report, out)
    png = out.with_suffix(".png")
    plot(report, png)
    out.with_suffix(".md").write_text(page(report, png.name))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, required=True, help="how long the annotators work")
    p.add_argument(
        "--db", default="sqlite", help="sqlite (in --work), postgresql (a throwaway server) or a URL"
    )
    p.add_argument("--seed", type=int, default=0, help="draws the faults' times, projects and targets")
    p.add_argument(
        "--out", type=Path, required=True, help="the JSON; the page and plot go beside it (.md, .png)"
    )
    p.add_argument("--work", type=Path, required=True, help="the app's data and the fault switches (emptied)")
    p.add_argument("--data", type=Path, nargs="+", default=DATA, help="one project per dataset")
    p.add_argument("--annotators", type=int, default=ANNOTATORS, help="people at once, dealt to the projects")
    p.add_argument(
        "--round-steps",
        type=int,
        default=ROUND_STEPS,
        help="the trainers' steps a round (FEWCLICK_TRAINER_ROUND_STEPS): short rounds switch versions often",
    )
    return p


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: everything started is stopped by now
        say(f"stopped ({exc or 'SIGINT'}); no report written")
        sys.exit(130)
