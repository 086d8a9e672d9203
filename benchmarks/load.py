"""Load benchmark: simulated annotators saving at once against the real server.

    python benchmarks/load.py --annotators 20 --minutes 2 [--pace burst|person] \\
        [--db sqlite|postgresql|URL] [--work DIR] [--out docs/benchmarks/load_sqlite_burst.json]

Starts ``fewclick serve`` as a process of its own on loopback (``--db``: SQLite in the work
folder by default; ``postgresql``, a throwaway PostgreSQL server in a temporary folder,
benchmarks/_postgres.py, as the API tests use; or the database at a URL, e.g.
``postgresql+psycopg://...``) with a project of synthetic 512 x 512 images, ``--images-each``
per annotator (no two annotators share an image, as a team splits the work). Each annotator is
a thread with its own HTTP connection that:

1. logs in (:func:`login`), all of them in the same second as a server restart makes them;
2. opens one of its images: ``GET /api/images/N`` (annotations and revision) and
   ``GET /api/images/N/file`` (its first open, right after the log-ins, is also counted
   on its own);
3. saves 5 to 15 times on it, at ``--pace``: ``burst`` (the default) 0 to 2 x ``--think``
   seconds apart (uniform; by default 0.5 s on average, faster than a person clicks), or
   ``person`` 3 to 10 s apart (uniform, seeded by the annotator's name): a batch of 1 or 2
   new boxes and, one time in three, the deletion of one of its boxes, with the revision it holds
   (``POST /api/images/N/annotations/batch``), as the page's autosave does;
4. then reads the project page's lists (``GET /api/projects/P``, ``.../images``,
   ``.../jobs``) and goes on with its next image.

The project's automatic training is off, so no training job competes for the CPU. First
one annotator alone for ``--idle-minutes`` (the idle save latency; always at the burst pace,
for enough saves to give a p95: alone, it loads nothing whatever its pace), then
``--annotators`` at once for ``--minutes``. Any answer other than 2xx, or none, is an error.
Every user has a strong random password (``secrets.token_urlsafe``).
At the end the server is stopped and the database read directly: a lost write is an
acknowledged save whose boxes are missing or whose deleted boxes are still there, or an
image whose revision is not the last acknowledged one. Writes FILE.json and FILE.md beside it
(date, machine: CPU count and model, load averages before and after, and the lowest and
highest 1-minute load average while each phase ran). Targets, with 0 errors and 0 lost
writes: at a person's pace, p95 save latency at most 150 ms and p95 open at most 1 s, the
first opens after the log-ins included; at the burst pace (a stress figure), p95 save
latency under load at most 2x the idle p95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from _common import load_average, load_averages, now
from _postgres import start_postgres
from _server import ServerProcess, stop_on_signals
from tqdm import tqdm

from fewclick.data.synthetic import make_dataset
from fewclick.server.auth import SESSION_COOKIE
from fewclick.server.db import Annotation, Image, make_engine, session_factory, sqlite_url

PASSWORD = secrets.token_urlsafe(16)  # every user's, new each run
SAVES_PER_IMAGE = (5, 15)
PACES = ("burst", "person")
PERSON_THINK = (3.0, 10.0)  # seconds between a person's saves
P95_RATIO_TARGET = 2.0  # at the burst pace: p95 under load at most 2x idle
P95_MS_TARGET = 150.0  # at a person's pace
OPEN_P95_MS_TARGET = 1000.0  # at a person's pace, the first opens after the log-ins included


def think_range(pace: str, think: float) -> tuple[float, float]:
    """Seconds between an annotator's saves (uniform) at ``pace``: ``burst``, 0 to 2 x
    ``think``; ``person``, :data:`PERSON_THINK`."""
    if pace not in PACES:
        raise ValueError(f"expected a pace of {', '.join(PACES)}, got {pace!r}")
    return PERSON_THINK if pace == "person" else (0.0, 2 * think)


@contextmanager
def database(choice: str, data: Path) -> Iterator[tuple[str | None, str]]:
    """The database the server runs on, for ``--db`` ``choice``: ``sqlite`` (in ``data``),
    ``postgresql`` (a throwaway server, stopped on exit) or a URL. Yields the server's
    ``--db`` (None: its own SQLite in ``data``) and the URL to read it at."""
    if choice == "sqlite":
        yield None, sqlite_url(data / "fewclick.db")
    elif choice == "postgresql":
        server = start_postgres()
        try:
            url = server.new_database("load")
            yield url, url
        finally:
            server.stop()
    elif "://" in choice:
        yield choice, choice
    else:
        raise ValueError(f"expected sqlite, postgresql or a database URL, got {choice!r}")


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (else what platform knows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def login(base: str, name: str, password: str) -> dict[str, str]:
    """Log ``name`` in as the browser does (``POST /api/login``): the headers of every later
    request, the session cookie and the session's CSRF token."""
    r = httpx.post(f"{base}/api/login", json={"name": name, "password": password}, timeout=60)
    r.raise_for_status()
    cookie = r.cookies[SESSION_COOKIE]
    return {"Cookie": f"{SESSION_COOKIE}={cookie}", r.json()["csrf_header"]: r.json()["csrf"]}


@dataclass
class Tally:
    """What the annotators measured, shared by their threads (append is thread-safe)."""

    saves: list[float] = field(default_factory=list)  # seconds per acknowledged save
    opens: list[float] = field(default_factory=list)  # GET image + GET file
    first_opens: list[float] = field(default_factory=list)  # each annotator's first, after the log-ins
    logins: list[float] = field(default_factory=list)  # seconds per log-in
    lists: list[float] = field(default_factory=list)  # the project page's three lists
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds in the phase
    load: list[float] = field(default_factory=list)  # the 1-minute load average, every second


@dataclass
class Kept:
    """What the server acknowledged for one image: its revision and its boxes by id."""

    revision: int
    boxes: dict[int, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Shift:
    """What every annotator of a phase shares: where to work and until when."""

    base: str  # the server's URL
    project_id: int
    class_id: int
    think: tuple[float, float]  # seconds between an annotator's saves (uniform)
    until: float  # time.monotonic() when they stop


class Annotator(threading.Thread):
    def __init__(self, name: str, images: list[int], shift: Shift, tally: Tally) -> None:
        super().__init__(name=name, daemon=True)
        self.images, self.shift, self.tally = images, shift, tally
        self.rng = random.Random(name)
        self.kept: dict[int, Kept] = {}  # image id -> what the server acknowledged

    def run(self) -> None:
        start = time.perf_counter()
        try:
            headers = login(self.shift.base, self.name, PASSWORD)
        except (httpx.HTTPError, KeyError) as exc:
            self.tally.errors.append(f"log-in of {self.name}: {exc!r}")
            return
        self.tally.logins.append(time.perf_counter() - start)
        with httpx.Client(base_url=self.shift.base, headers=headers, timeout=60) as client:
            turn = 0
            while time.monotonic() < self.shift.until:
                image_id = self.images[turn % len(self.images)]
                turn += 1
                if self._open(client, image_id, first=turn == 1):
                    self._work(client, image_id)
                page = f"/api/projects/{self.shift.project_id}"
                self._timed((self.tally.lists,), client, page, f"{page}/images", f"{page}/jobs")

    def _open(self, client: httpx.Client, image_id: int, first: bool) -> bool:
        into = (self.tally.opens, self.tally.first_opens) if first else (self.tally.opens,)
        got = self._timed(into, client, f"/api/images/{image_id}", f"/api/images/{image_id}/file")
        if got is None:
            return False
        image = got[0].json()
        self.kept[image_id] = Kept(
            image["revision"], {a["id"]: a["geometry"]["box"] for a in image["annotations"]}
        )
        return True

    def _work(self, client: httpx.Client, image_id: int) -> None:
        kept = self.kept[image_id]
        for _ in range(self.rng.randint(*SAVES_PER_IMAGE)):
            time.sleep(self.rng.uniform(*self.shift.think))
            if time.monotonic() >= self.shift.until:
                return
            delete = [self.rng.choice(sorted(kept.boxes))] if kept.boxes and self.rng.random() < 1 / 3 else []
            boxes = [self._box() for _ in range(self.rng.randint(1, 2))]
            create = [{"class_id": self.shift.class_id, "geometry": {"box": b}} for b in boxes]
            body = {"revision": kept.revision, "delete": delete, "create": create}
            start = time.perf_counter()
            try:
                r = client.post(f"/api/images/{image_id}/annotations/batch", json=body)
            except httpx.TransportError as exc:
                self.tally.errors.append(f"save on image {image_id}: no answer ({exc!r})")
                return
            if r.status_code != 200:
                self.tally.errors.append(f"save on image {image_id}: {r.status_code} {r.text[:200]}")
                return  # opening the image again takes the server's state
            self.tally.saves.append(time.perf_counter() - start)
            out = r.json()
            for ann_id in delete:
                del kept.boxes[ann_id]
            kept.boxes.update({a["id"]: a["geometry"]["box"] for a in out["created"]})
            kept.revision = out["revision"]

    def _box(self) -> list[float]:
        x, y = self.rng.uniform(0, 480), self.rng.uniform(0, 480)
        w, h = self.rng.uniform(8, 30), self.rng.uniform(8, 30)
        return [round(v, 1) for v in (x, y, x + w, y + h)]

    def _timed(
        self, into: tuple[list[float], ...], client: httpx.Client, *urls: str
    ) -> list[httpx.Response] | None:
        """GET ``urls`` one after the other; their total time goes into each list of ``into``
        when all are 2xx."""
        start = time.perf_counter()
        answers = []
        for url in urls:
            try:
                r = client.get(url)
            except httpx.TransportError as exc:
                self.tally.errors.append(f"GET {url}: no answer ({exc!r})")
                return None
            if not r.is_success:
                self.tally.errors.append(f"GET {url}: {r.status_code} {r.text[:200]}")
                return None
            answers.append(r)
        for seconds in into:
            seconds.append(time.perf_counter() - start)
        return answers


def run_phase(server: ServerProcess, project: dict, teams: list[list[int]], minutes: float,
              think: tuple[float, float], label: str) -> tuple[Tally, list[Annotator]]:  # fmt: skip
    """One annotator per list of image ids in ``teams``, all at once for ``minutes``; returns
    the :class:`Tally` (with the CPU time the server and the annotators took) and the annotators."""
    tally = Tally()
    cpu = (cpu_seconds(server.process.pid), time.process_time())
    seconds = minutes * 60
    shift = Shift(server.base, project["id"], project["classes"][0]["id"], think, time.monotonic() + seconds)
    team = [Annotator(f"{label}{i}", images, shift, tally) for i, images in enumerate(teams)]
    for a in team:
        a.start()
    with tqdm(total=round(seconds), desc=f"{label}: {len(team)} annotator(s)", unit="s") as bar:
        while any(a.is_alive() for a in team):
            time.sleep(1)
            tally.load.append(load_average())
            bar.update(min(1, bar.total - bar.n))
            bar.set_postfix(saves=len(tally.saves), errors=len(tally.errors), p95_ms=_ms(tally.saves, 95))
    tally.cpu = {
        "server": cpu_seconds(server.process.pid) - cpu[0],
        "annotators": time.process_time() - cpu[1],
    }
    return tally, team


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lost_writes(db_url: str, kept: dict[int, Kept]) -> tuple[int, list[str]]:
    """How many acknowledged writes (``kept``: image id -> what the server acknowledged) the
    database at ``db_url`` does not hold, read directly with the server stopped: boxes missing
    or changed, boxes there that were deleted (or never acknowledged), a revision other than
    the acknowledged one; and examples."""
    engine = make_engine(db_url)
    lost, examples = 0, []
    with session_factory(engine)() as session:
        for image_id, want in kept.items():
            revision = session.get(Image, image_id).revision
            rows = session.query(Annotation).filter_by(image_id=image_id, reference=False)
            stored = {ann.id: ann.geometry["box"] for ann in rows}
            missing = sum(stored.get(k) != box for k, box in want.boxes.items())
            extra = len(stored.keys() - want.boxes.keys())
            wrong = missing + extra + (revision != want.revision)
            if wrong:
                examples.append(
                    f"image {image_id}: {missing} boxes missing or changed, {extra} deleted or never "
                    f"acknowledged, revision {revision} (acknowledged {want.revision})"
                )
            lost += wrong
    engine.dispose()
    return lost, examples[:10]


def _ms(seconds: list[float], q: float) -> float | None:
    return round(float(np.percentile(seconds, q)) * 1000, 1) if seconds else None


def _summary(tally: Tally, minutes: float) -> dict:
    return {
        "saves": len(tally.saves),
        "saves_per_second": round(len(tally.saves) / (minutes * 60), 1),
        "save_p50_ms": _ms(tally.saves, 50),
        "save_p95_ms": _ms(tally.saves, 95),
        "save_p99_ms": _ms(tally.saves, 99),
        "open_p95_ms": _ms(tally.opens, 95),
        "open_max_ms": _ms(tally.opens, 100),
        "first_open_p95_ms": _ms(tally.first_opens, 95),
        "login_p95_ms": _ms(tally.logins, 95),
        "lists_p95_ms": _ms(tally.lists, 95),
        "errors": len(tally.errors),
        "error_examples": tally.errors[:10],
        "cpu_percent": {k: round(100 * v / (minutes * 60)) for k, v in tally.cpu.items()},
        "load_average_during": [min(tally.load), max(tally.load)] if tally.load else None,
    }


@dataclass
class Run:
    """What one run measured: the phases' tallies, the images and what was acknowledged."""

    images: list[int]
    idle: Tally
    load: Tally
    kept: dict[int, Kept]  # image id -> what the server acknowledged, all annotators


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fewclick-load-", ignore_cleanup_errors=True) as temp:
        result = _measure(args, args.work or Path(temp))  # the temporary folder goes, whatever happens
    out = args.out or Path(f"docs/benchmarks/load_{result['database']}_{args.pace}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(_render(result))
    print(_render(result))
    return 0


def _measure(args: argparse.Namespace, work: Path) -> dict:
    """Run the benchmark in ``work``; the result of the run, the report's JSON."""
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)  # a fresh project and, on SQLite, a fresh database
    make_dataset("aerial", (args.annotators + 1) * args.images_each, seed=0, out_dir=data / "scenes")
    load_before = load_averages()
    with database(args.db, data) as (server_db, db_url):
        run = _serve(args, data, server_db)
        lost, lost_examples = lost_writes(db_url, run.kept)  # the server stopped, the database not yet
    result = {
        "date": now(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "load_average_before": load_before,
        "load_average_after": load_averages(),
        "database": db_url.split(":", 1)[0].split("+")[0],
        "annotators": args.annotators,
        "minutes": args.minutes,
        "idle_minutes": args.idle_minutes,
        "pace": args.pace,
        "think_seconds": args.think,
        "think_range_seconds": list(think_range(args.pace, args.think)),
        "images": len(run.images),
        "idle": _summary(run.idle, args.idle_minutes),
        "load": _summary(run.load, args.minutes),
        "lost_writes": lost,
        "lost_examples": lost_examples,
    }
    idle_p95, load_p95 = result["idle"]["save_p95_ms"], result["load"]["save_p95_ms"]
    result["p95_ratio"] = round(load_p95 / idle_p95, 2) if idle_p95 and load_p95 else None
    result["target"], result["target_met"] = _target(result)
    return result


def _serve(args: argparse.Namespace, data: Path, server_db: str | None) -> Run:
    """Start the server on ``server_db``, add the users and the project, run the idle and the
    load phase, and stop the server."""
    each = args.images_each
    server = ServerProcess(data, server_db)
    server.start()
    try:
        server.add_user("admin", "admin", PASSWORD)  # the first admin, with the CLI
        admin = httpx.Client(base_url=server.base, headers=login(server.base, "admin", PASSWORD), timeout=60)
        for i in range(args.annotators):  # the admin adds the annotators (named as their threads)
            for label in ("idle", "load"):
                user = {"name": f"{label}{i}", "role": "annotator", "password": PASSWORD}
                admin.post("/api/users", json=user).raise_for_status()
        name = f"load {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
        body = {"name": name, "folder": str(data / "scenes" / "images"), "classes": ["car"]}
        r = admin.post("/api/projects", json=body)
        r.raise_for_status()
        project = r.json()["project"]
        r = admin.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})  # no training jobs
        r.raise_for_status()
        images = [im["id"] for im in admin.get(f"/api/projects/{project['id']}/images").json()]
        alone = [images[-each:]]  # images no annotator of the load phase opens
        split = [images[i * each : (i + 1) * each] for i in range(args.annotators)]
        burst = think_range("burst", args.think)  # alone, an annotator loads nothing at any pace
        idle, idle_team = run_phase(server, project, alone, args.idle_minutes, burst, "idle")
        pace = think_range(args.pace, args.think)
        busy, busy_team = run_phase(server, project, split, args.minutes, pace, "load")
    finally:
        server.stop()
    kept = {k: v for a in idle_team + busy_team for k, v in a.kept.items()}
    return Run(images, idle, busy, kept)


def _target(r: dict) -> tuple[str, bool]:
    """The target of ``r``'s pace, in words, and whether ``r`` met it."""
    clean = r["idle"]["errors"] == r["load"]["errors"] == r["lost_writes"] == 0
    if r["pace"] == "person":
        words = f"save p95 at most {P95_MS_TARGET:g} ms, open p95 at most {OPEN_P95_MS_TARGET:g} ms"
        return f"{words} (the first opens too), 0 errors, 0 lost writes", (
            _within(r["load"]["save_p95_ms"], P95_MS_TARGET) and _opens_met(r) and clean
        )
    ratio = r["p95_ratio"]
    return f"save p95 at most {P95_RATIO_TARGET:g}x idle, 0 errors, 0 lost writes", (
        ratio is not None and ratio <= P95_RATIO_TARGET and clean
    )


def _within(ms: float | None, target: float) -> bool:
    return ms is not None and ms <= target


def _opens_met(r: dict) -> bool:
    """Whether the load phase's opens, and its first opens on their own, met their target."""
    load = r["load"]
    return _within(load["open_p95_ms"], OPEN_P95_MS_TARGET) and _within(
        load["first_open_p95_ms"], OPEN_P95_MS_TARGET
    )


def _render(r: dict) -> str:
    idle, load = r["idle"], r["load"]

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    no_errors = idle["errors"] == load["errors"] == 0

    def row(what: str, key: str, unit: str = " ms", target: str = "") -> str:
        return f"| {what} | {idle[key]}{unit} | {load[key]}{unit} | {target} |"

    rows = [
        row("save latency p50", "save_p50_ms"),
        row("save latency p95", "save_p95_ms", target=_p95_target(r)),
        row("save latency p99", "save_p99_ms"),
        row("saves", "saves", ""),
        row("saves per second", "saves_per_second", ""),
        row("open an image p95 (GET image + file)", "open_p95_ms", target=_open_target(r)),
        row("open an image p95, each annotator's first (after the log-ins)", "first_open_p95_ms"),
        row("open an image, the slowest", "open_max_ms"),
        row("log-in p95 (argon2, one at a time)", "login_p95_ms"),
        row("project page's lists p95 (3 GETs)", "lists_p95_ms"),
        row("errors", "errors", "", f"0: {met(no_errors)}"),
        f"| CPU of the server, of the annotators' threads | {_cpu(idle)} | {_cpu(load)} | |",
        f"| load average (1 min) during the phase, lowest - highest | {_during(idle)} | {_during(load)} | |",
    ]
    lines = [
        "# Load benchmark",
        "",
        "Generated by `benchmarks/load.py` (the real server, `fewclick serve`, as a process of its own; "
        "the simulated annotators are threads of the benchmark's process on the same machine, over "
        "loopback; what each does is in the script's docstring).",
        "",
        f"- run {r['date']} on {r['machine']} ({r['cpu_model']}), Python {r['python']}; load average "
        f"{r['load_average_before']} before, {r['load_average_after']} after",
        f"- database: {r['database']}; {r['images']} images of 512 x 512",
        f"- idle: 1 annotator for {r['idle_minutes']} min at the burst pace, "
        f"{_think(think_range('burst', r['think_seconds']))}",
        f"- load: {r['annotators']} annotators at once for {r['minutes']} min at the {r['pace']} pace, "
        f"{_think(r['think_range_seconds'])}",
        "",
        f"| measure | idle | {r['annotators']} annotators | target |",
        "|---|---|---|---|",
        *rows,
        f"| lost writes (acknowledged, not in the database) | | {r['lost_writes']} | "
        f"0: {met(r['lost_writes'] == 0)} |",
        "",
        f"Target ({r['target']}): {met(r['target_met'])}.",
    ]
    for what, examples in (
        ("Errors", idle["error_examples"] + load["error_examples"]),
        ("Lost", r["lost_examples"]),
    ):
        if examples:
            lines += ["", f"{what}, the first ones:", "", *[f"- {e}" for e in examples]]
    return "\n".join(lines) + "\n"


def _p95_target(r: dict) -> str:
    """The p95 row's target cell: the pace's target and, for the burst pace, the ratio."""
    ratio = r["p95_ratio"]
    if r["pace"] == "person":
        p95 = r["load"]["save_p95_ms"]
        ok = p95 is not None and p95 <= P95_MS_TARGET
        return f"<= {P95_MS_TARGET:g} ms: {'met' if ok else '**not met**'} ({ratio}x idle)"
    ok = ratio is not None and ratio <= P95_RATIO_TARGET
    return f"<= {P95_RATIO_TARGET:g}x idle: {ratio}x, {'met' if ok else '**not met**'}"


def _open_target(r: dict) -> str:
    """The open row's target cell: at a person's pace, p95 and the first opens' p95 at most 1 s."""
    if r["pace"] != "person":
        return ""
    return f"<= {OPEN_P95_MS_TARGET:g} ms, the first opens too: {'met' if _opens_met(r) else '**not met**'}"


def _during(phase: dict) -> str:
    during = phase.get("load_average_during")
    return f"{during[0]:.2f} - {during[1]:.2f}" if during else ""


def _think(seconds: tuple[float, float] | list[float]) -> str:
    return f"{seconds[0]:g} to {seconds[1]:g} s between saves"


def _cpu(phase: dict) -> str:
    return f"{phase['cpu_percent']['server']} %, {phase['cpu_percent']['annotators']} %"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annotators", type=int, default=20)
    p.add_argument("--minutes", type=float, default=2.0, help="how long the annotators work at once")
    p.add_argument("--idle-minutes", type=float, default=0.5, help="how long one annotator works alone first")
    p.add_argument("--pace", choices=PACES, default="burst",
                   help="burst: 0 to 2 x --think s between saves; person: 3 to 10 s")  # fmt: skip
    p.add_argument("--think", type=float, default=0.5, help="mean seconds between saves at the burst pace")
    p.add_argument("--images-each", type=int, default=3, help="images per annotator")
    where = "sqlite (in the work folder), postgresql (a throwaway server) or a database URL"
    p.add_argument("--db", default="sqlite", help=where)
    p.add_argument("--work", type=Path, help="work folder, kept (default: a temporary one, removed)")
    p.add_argument("--out", type=Path, help="default: docs/benchmarks/load_DATABASE_PACE.json")
    return p


if __name__ == "__main__":
    with stop_on_signals():  # SIGTERM and SIGINT stop the server and its workers too
        raise SystemExit(main())
