"""The security and robustness probes of issue 31, re-run against the real server.

    python benchmarks/probe.py [--work DIR] [--out docs/benchmarks/probe.json]

Starts ``fewclick serve`` (SQLite, a process of its own) with a global admin, a per-project
admin, two annotators and a reviewer on a project of three synthetic images, then sends what
the probe that found issue 31's failures sent, finding by finding:

1. image status bodies of the wrong JSON type, without and with credentials;
2. a reviewer finishing an image in progress, or marking a new image reviewed (automatic
   training on every finished image, so a wrongly accepted move would start a job);
3. a per-project admin changing the global admin's membership;
4. saves, log-in and events while another connection holds ``BEGIN EXCLUSIVE`` for 45 s;
5. an upload named ``..\\..\\pwn4.jpg``, then the ``masks`` and ``coco_panoptic`` exports;
6. kill -9 of the server alone during a training job (its processes must exit, the job must
   fail at the next start-up and a new one start at once), then SIGTERM during a job;
7. 100 wrong log-ins then the right one, weak passwords, a revoked token, a removed user;
8. a 1 MB class name, a 100,000-character project name, 200,000 events, 5,000 creates,
   a 30 MB JSON body and a 20000 x 20000 PNG of about 1 MB (the server's memory beside it);
9. the Label Studio routes without credentials for a project that exists and one that does
   not, and ``/health``;
R. what a review of the fixes got through: 30 wrong log-ins sent at once, an upload ``scene0.jpg``
   beside ``scene0.png`` then the exports that name files by stem, two uploads of one new name
   at once, a delete list of 100,001 ids, an event detail of 100 KB, a 1 MB status.

Each probe passes when every answer is the expected refusal (or success where the probe
checks that something still works). Every 5xx answer is a server error, but for a 503 with
Retry-After (a locked database's designed answer, counted apart as ``busy``). Writes FILE.json
and FILE.md (a row per check, the counts, date and machine).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
from _common import load_average, now
from _server import ServerProcess, descendants, stop_on_signals, wait_gone
from load import cpu_model, login
from PIL import Image as PILImage

LOCK_SECONDS = 45
GONE_WITHIN = 30.0
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Check:
    finding: str
    what: str
    expected: str
    got: str
    passed: bool


@dataclass
class Probe:
    server: ServerProcess
    checks: list[Check] = field(default_factory=list)
    answers: int = 0
    busy: int = 0  # 503 with Retry-After
    server_errors: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, headers: dict | None = None, **kwargs) -> httpx.Response:
        r = httpx.request(method, self.server.base + path, headers=headers, timeout=120, **kwargs)
        self.answers += 1
        if r.status_code == 503 and r.headers.get("Retry-After", "").isdigit():
            self.busy += 1  # the designed answer of a locked database (finding 4)
        elif r.status_code >= 500:
            self.server_errors.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r

    def check(self, finding: str, what: str, expected, got) -> bool:
        """Record one check: ``expected`` is a value, or a set of values ``got`` must be in."""
        passed = got in expected if isinstance(expected, set) else got == expected
        shown = " or ".join(map(str, sorted(expected))) if isinstance(expected, set) else str(expected)
        self.checks.append(Check(finding, what, shown, str(got), passed))
        print(f"{'ok  ' if passed else 'FAIL'} [{finding}] {what}: expected {shown}, got {got}", flush=True)
        return passed

    def cli(self, *words: str, stdin: str = "") -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "fewclick.cli", *words, "--data", str(self.server.data)]
        return subprocess.run(command, input=stdin, text=True, capture_output=True)


def _images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(3):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(folder / f"scene{k}.png")


def _big_png(width: int, height: int) -> bytes:
    """A real ``width x height`` black PNG, compressed row by row (never held whole)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, parts = zlib.compressobj(9), b"\0" * (1 + 3 * width), []
    for _ in range(height):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    total = 0
    for p in {pid} | descendants(pid):
        try:
            fields = Path(f"/proc/{p}/status").read_text().split("VmRSS:")[1].split()
            total += int(fields[0])
        except (OSError, IndexError):
            pass
    return total / 1024


def set_up(probe: Probe, photos: Path) -> dict:
    """Users, a project of the three images (training after every finished one), a box on
    each of the first two; returns what the probes need."""
    server, password = probe.server, "a long passphrase of the probe"
    who = {
        role: server.add_user(role, kind, password)
        for role, kind in [
            ("admin", "admin"),
            ("padmin", "annotator"),
            ("ann1", "annotator"),
            ("ann2", "annotator"),
            ("rev", "reviewer"),
        ]
    }
    admin = who["admin"]
    r = probe.send(
        "POST", "/api/projects", admin, json={"name": "probe", "folder": str(photos), "classes": ["car"]}
    )
    project = r.json()["project"]
    pid = project["id"]
    users = {u["name"]: u["id"] for u in probe.send("GET", "/api/users", admin).json()}
    probe.send("PUT", f"/api/projects/{pid}/members/{users['padmin']}", admin, json={"role": "admin"})
    probe.send("PATCH", f"/api/projects/{pid}", admin, json={"auto_train_every": 1})
    images = probe.send("GET", f"/api/projects/{pid}/images", admin).json()
    box = {"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [10, 10, 40, 40]}}
    for image in images[:2]:  # two images in progress; the third stays new
        probe.send(
            "POST",
            f"/api/images/{image['id']}/annotations/batch",
            who["ann1"],
            json={"revision": image["revision"], "create": [box]},
        )
    return {
        "who": who,
        "password": password,
        "project": project,
        "images": images,
        "users": users,
        "box": box,
    }


def finding_1(probe: Probe, s: dict) -> None:
    image = s["images"][1]["id"]
    for body in ({"status": {}}, {"status": []}, {"status": [1]}):
        r = probe.send("PATCH", f"/api/images/{image}", json=body)
        probe.check("1", f"PATCH status {json.dumps(body['status'])} without credentials", 401, r.status_code)
        r = probe.send("PATCH", f"/api/images/{image}", s["who"]["ann1"], json=body)
        probe.check("1", f"PATCH status {json.dumps(body['status'])} as an annotator", 422, r.status_code)


def _jobs(probe: Probe, s: dict) -> int:
    return len(probe.send("GET", f"/api/projects/{s['project']['id']}/jobs", s["who"]["admin"]).json())


def finding_2(probe: Probe, s: dict) -> None:
    started, new = s["images"][0]["id"], s["images"][2]["id"]
    state = probe.send("GET", f"/api/images/{started}", s["who"]["rev"]).json()["status"]
    probe.check("2", "the image with a box is in progress", "in_progress", state)
    r = probe.send("PATCH", f"/api/images/{started}", s["who"]["rev"], json={"status": "done"})
    probe.check("2", "a reviewer finishes an image in progress", 403, r.status_code)
    r = probe.send("PATCH", f"/api/images/{new}", s["who"]["rev"], json={"status": "reviewed"})
    probe.check("2", "a reviewer marks a new image reviewed", {403, 409}, r.status_code)
    probe.check("2", "training jobs started by the reviewer", 0, _jobs(probe, s))
    r = probe.send("PATCH", f"/api/images/{started}", s["who"]["ann1"], json={"status": "done"})
    probe.check("2", "an annotator finishes it", 200, r.status_code)
    probe.check("2", "training jobs started by the annotator", 1, _jobs(probe, s))
    r = probe.send("PATCH", f"/api/images/{started}", s["who"]["rev"], json={"status": "reviewed"})
    probe.check("2", "the reviewer marks the finished image reviewed", 200, r.status_code)
    probe.send(
        "PATCH", f"/api/projects/{s['project']['id']}", s["who"]["admin"], json={"auto_train_every": 0}
    )


def finding_3(probe: Probe, s: dict) -> None:
    pid, users, who = s["project"]["id"], s["users"], s["who"]
    r = probe.send(
        "PUT", f"/api/projects/{pid}/members/{users['admin']}", who["padmin"], json={"role": "reviewer"}
    )
    probe.check("3", "a per-project admin makes the global admin a reviewer", 403, r.status_code)
    r = probe.send(
        "PUT", f"/api/projects/{pid}/members/{users['ann2']}", who["padmin"], json={"role": "reviewer"}
    )
    probe.check("3", "the per-project admin changes an annotator's role", 200, r.status_code)
    r = probe.send("GET", f"/api/projects/{pid}", who["admin"])
    probe.check("3", "the global admin reads the project", 200, r.status_code)
    r = probe.send("PUT", f"/api/projects/{pid}/members/{users['ann2']}", who["admin"], json={"role": None})
    probe.check("3", "the global admin uses the member route", 200, r.status_code)


def finding_4(probe: Probe, s: dict) -> None:
    pid, image = s["project"]["id"], s["images"][2]
    cookie = login(probe.server.base, "ann1", s["password"])
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(probe.server.data / "fewclick.db", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(LOCK_SECONDS)
        conn.execute("COMMIT")
        conn.close()

    locker = threading.Thread(target=hold)
    locker.start()
    held.wait()
    started = time.monotonic()
    save = {"revision": image["revision"], "create": [s["box"]]}
    answers = {
        "save": probe.send("POST", f"/api/images/{image['id']}/annotations/batch", cookie, json=save),
        "log-in": probe.send("POST", "/api/login", json={"name": "ann1", "password": s["password"]}),
        "events": probe.send("POST", f"/api/projects/{pid}/events", cookie, json=[{"action": "click"}]),
    }
    waited = time.monotonic() - started
    locker.join()
    for what, r in answers.items():
        got = f"{r.status_code}, Retry-After {r.headers.get('Retry-After')}"
        probe.check(
            "4",
            f"{what} with the database locked {LOCK_SECONDS} s",
            r.status_code == 503 and r.headers.get("Retry-After", "").isdigit(),
            True,
        )
        print(f"      {what}: {got}")
    probe.check("4", "the three answers came before the lock ended", waited < LOCK_SECONDS, True)
    r = probe.send("POST", f"/api/images/{image['id']}/annotations/batch", cookie, json=save)
    probe.check("4", "the same save once the lock is gone", 200, r.status_code)


def finding_5(probe: Probe, s: dict) -> None:
    pid, admin = s["project"]["id"], s["who"]["admin"]
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(buffer, "JPEG")
    name, content = "..\\..\\pwn4.jpg", buffer.getvalue()
    r = probe.send("POST", f"/api/projects/{pid}/images", admin, files={"file": (name, content)})
    stored = r.json().get("file_name") if r.status_code == 201 else r.status_code
    probe.check("5", f"upload named {name}: stored as", name.rsplit("\\", 1)[1], stored)
    for format in ("masks", "coco_panoptic", "coco"):
        r = probe.send("GET", f"/api/projects/{pid}/export", admin, params={"format": format})
        probe.check("5", f"the {format} export after that upload", 200, r.status_code)


def _running_job(probe: Probe, s: dict, timeout: float = 240) -> tuple[int, set[int]]:
    """Start a 10-minute training job and wait for it to run; (job id, the server's children)."""
    pid = s["project"]["id"]
    r = probe.send("POST", f"/api/projects/{pid}/train", s["who"]["admin"], json={"minutes": 10})
    probe.check("6", "a training job is accepted", 202, r.status_code)
    job = r.json()["id"]
    deadline = time.monotonic() + timeout
    while probe.send("GET", f"/api/jobs/{job}", s["who"]["admin"]).json()["status"] != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job} did not start within {timeout:.0f} s")
        time.sleep(0.5)
    return job, descendants(probe.server.process.pid)


def finding_6(probe: Probe, s: dict) -> None:
    server, admin = probe.server, s["who"]["admin"]
    # a second finished image to train on; the job finding 2 started must end first
    body = {"status": "done", "empty": True}  # whether or not it holds boxes
    probe.send("PATCH", f"/api/images/{s['images'][1]['id']}", s["who"]["ann1"], json=body)
    _wait_idle(probe, s)
    job, children = _running_job(probe, s)
    probe.check(
        "6", "processes under the server while it trains (worker, job, ...)", len(children) >= 2, True
    )
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.process = None
    left = wait_gone(children, GONE_WITHIN)
    probe.check(
        "6", f"its processes alive {GONE_WITHIN:.0f} s after kill -9 of the server alone", 0, len(left)
    )
    server.start()
    probe.check(
        "6",
        "the job after a restart",
        "failed",
        probe.send("GET", f"/api/jobs/{job}", admin).json()["status"],
    )
    job, children = _running_job(probe, s)  # at once: no 409
    os.kill(server.process.pid, signal.SIGTERM)
    server.process.wait(GONE_WITHIN)
    server.process = None
    left = wait_gone(children, GONE_WITHIN)
    probe.check("6", f"its processes alive {GONE_WITHIN:.0f} s after SIGTERM", 0, len(left))
    server.start()
    probe.check(
        "6",
        "the job SIGTERM stopped",
        "failed",
        probe.send("GET", f"/api/jobs/{job}", admin).json()["status"],
    )


def _wait_idle(probe: Probe, s: dict, timeout: float = 600) -> None:
    """Wait until no job of the project runs (an automatic one may have started)."""
    deadline = time.monotonic() + timeout
    url = f"/api/projects/{s['project']['id']}/jobs"
    while any(j["status"] in ("queued", "running") for j in probe.send("GET", url, s["who"]["admin"]).json()):
        if time.monotonic() > deadline:
            raise RuntimeError("a job still runs")
        time.sleep(1)


def finding_7(probe: Probe, s: dict) -> None:
    codes = [
        probe.send("POST", "/api/login", json={"name": "ann2", "password": f"wrong {k}"}) for k in range(100)
    ]
    throttled = [r for r in codes if r.status_code == 429]
    probe.check("7", "429 answers among 100 wrong log-ins", len(throttled) > 0, True)
    probe.check(
        "7",
        "every 429 has Retry-After",
        all(r.headers.get("Retry-After", "").isdigit() for r in throttled),
        True,
    )
    r = probe.send("POST", "/api/login", json={"name": "ann2", "password": s["password"]})
    probe.check("7", "the right password right after", 429, r.status_code)
    for password in ("12345678", " " * 8, "probeuser"):
        r = probe.send(
            "POST",
            "/api/users",
            s["who"]["admin"],
            json={"name": "probeuser", "role": "annotator", "password": password},
        )
        probe.check("7", f"a new user with password {password!r}", 400, r.status_code)
    headers = s["who"]["rev"]
    probe.check("7", "fewclick token revoke", 0, probe.cli("token", "revoke", "rev").returncode)
    r = probe.send("GET", "/api/me", headers)
    probe.check("7", "the revoked token", 401, r.status_code)
    probe.check("7", "fewclick users remove", 0, probe.cli("users", "remove", "ann1").returncode)
    r = probe.send("GET", "/api/me", s["who"]["ann1"])
    probe.check("7", "the removed user's token", 401, r.status_code)


def finding_8(probe: Probe, s: dict) -> None:
    pid, admin = s["project"]["id"], s["who"]["admin"]
    image = probe.send("GET", f"/api/images/{s['images'][2]['id']}", admin).json()
    cases = {
        "a class name of 1 MB": ("POST", f"/api/projects/{pid}/classes", {"json": {"name": "c" * 2**20}}),
        "a project name of 100,000 characters": ("POST", "/api/projects", {"json": {"name": "p" * 100_000}}),
        "200,000 events in one POST": (
            "POST",
            f"/api/projects/{pid}/events",
            {"json": [{"action": "x"}] * 200_000},
        ),
        "5,000 creates in one batch": (
            "POST",
            f"/api/images/{image['id']}/annotations/batch",
            {"json": {"revision": image["revision"], "create": [s["box"]] * 5000}},
        ),
        "a 30 MB JSON body": (
            "POST",
            f"/api/projects/{pid}/events",
            {"json": [{"action": "x", "detail": {"pad": "p" * 2**20}}] * 30},
        ),
    }
    for what, (method, path, kwargs) in cases.items():
        r = probe.send(method, path, admin, **kwargs)
        detail = (
            r.json().get("detail") if r.headers.get("content-type", "").startswith("application/json") else ""
        )
        probe.check("8", what, {413, 422}, r.status_code)
        print(f"      says: {json.dumps(detail)[:160]}")
    png = _big_png(20000, 20000)
    before = _rss_mb(probe.server.process.pid)
    r = probe.send(
        "POST", f"/api/projects/{pid}/images", admin, files={"file": ("huge.png", png, "image/png")}
    )
    after = _rss_mb(probe.server.process.pid)
    probe.check("8", f"a 20000 x 20000 PNG of {len(png) / 2**20:.1f} MB", 413, r.status_code)
    probe.check(
        "8",
        f"server memory grew by under 100 MB ({before:.0f} -> {after:.0f} MB)",
        after - before < 100,
        True,
    )


def finding_9(probe: Probe, s: dict) -> None:
    pid = s["project"]["id"]
    for method, route in (("GET", "health"), ("POST", "webhook")):
        there = probe.send(method, f"/api/projects/{pid}/labelstudio/{route}", json={})
        not_there = probe.send(method, f"/api/projects/987654/labelstudio/{route}", json={})
        probe.check(
            "9",
            f"{route} without credentials: a project and none",
            True,
            (there.status_code, there.text) == (not_there.status_code, not_there.text),
        )
    body = probe.send("GET", f"/api/projects/{pid}/labelstudio/health").json()
    probe.check("9", "what health says", {"status": "UP"}, body)


def review_findings(probe: Probe, s: dict) -> None:
    """The review's findings (R): each a refusal, never a 500, and nothing broken after."""
    from concurrent.futures import ThreadPoolExecutor

    pid, admin = s["project"]["id"], s["who"]["admin"]
    probe.server.add_user("racer", "annotator", s["password"])
    wrong = {"name": "racer", "password": "a wrong guess at once"}
    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(lambda _: probe.send("POST", "/api/login", json=wrong).status_code, range(30)))
    probe.check("R", "401s among 30 wrong log-ins sent at once (5 at most)", True, codes.count(401) <= 5)
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    r = probe.send("POST", f"/api/projects/{pid}/images", admin, files={"file": ("scene0.jpg", jpeg)})
    probe.check("R", "an upload scene0.jpg beside scene0.png", 409, r.status_code)
    for format in ("voc", "yolo", "masks", "geojson"):
        r = probe.send("GET", f"/api/projects/{pid}/export", admin, params={"format": format})
        expected = 400 if format == "geojson" else 200  # the synthetic images have no georeference
        probe.check("R", f"the {format} export", expected, r.status_code)
    with ThreadPoolExecutor(2) as pool:
        files = {"file": ("twice.jpg", jpeg)}
        codes = sorted(
            pool.map(
                lambda _: probe.send("POST", f"/api/projects/{pid}/images", admin, files=files).status_code,
                range(2),
            )
        )
    probe.check("R", "two uploads of one new name at once", [201, 409], codes)
    image = probe.send("GET", f"/api/images/{s['images'][2]['id']}", admin).json()
    batch = f"/api/images/{image['id']}/annotations/batch"
    r = probe.send("POST", batch, admin, json={"revision": image["revision"], "delete": [1] * 100_001})
    probe.check("R", "a delete list of 100,001 ids", 422, r.status_code)
    event = [{"action": "x", "detail": {"pad": "p" * 100_000}}]
    r = probe.send("POST", f"/api/projects/{pid}/events", s["who"]["rev"], json=event)
    probe.check("R", "an event detail of 100 KB from a reviewer", 422, r.status_code)
    r = probe.send("PATCH", f"/api/images/{image['id']}", s["who"]["rev"], json={"status": "x" * 2**20})
    short = len(r.text) < 1024
    probe.check("R", "a 1 MB status: 400, the answer under 1 KB", (400, True), (r.status_code, short))


def report(probe: Probe, out: Path, seconds: float) -> None:
    result = {
        "date": now(),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "load_average": load_average(),
        "seconds": round(seconds, 1),
        "requests": probe.answers,
        "server_errors": len(probe.server_errors),
        "busy_503": probe.busy,
        "server_error_examples": probe.server_errors[:10],
        "checks": [asdict(c) for c in probe.checks],
        "passed": sum(c.passed for c in probe.checks),
        "failed": sum(not c.passed for c in probe.checks),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Probes of issue 31, against the real server",
        "",
        f"Generated by `benchmarks/probe.py` on {result['date'][:10]} ({result['machine']}, load average "
        f"{result['load_average']:.1f}): {result['requests']} requests, **{result['server_errors']} server "
        f"errors** (5xx but for {probe.busy} designed 503s with Retry-After), {result['passed']} checks "
        f"passed, {result['failed']} failed.",
        "",
        "| finding | check | expected | got | |",
        "|---|---|---|---|---|",
    ]
    for c in probe.checks:
        lines.append(
            f"| {c.finding} | {c.what} | {c.expected} | {c.got} | {'ok' if c.passed else '**failed**'} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(
        f"{probe.answers} requests, {len(probe.server_errors)} server errors, "
        f"{result['failed']} of {len(probe.checks)} checks failed: {out}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "probe.json")
    args = parser.parse_args(argv)
    holder = tempfile.TemporaryDirectory() if args.work is None else None
    work = Path(holder.name) if holder else args.work
    photos = work / "photos"
    _images(photos)
    server = ServerProcess(work / "data", data_roots=[photos])
    server.start()
    probe, started = Probe(server), time.monotonic()
    try:
        setup = set_up(probe, photos)
        for finding in (
            finding_1,
            finding_2,
            finding_3,
            finding_4,
            finding_5,
            finding_8,
            finding_9,
            review_findings,
            finding_6,
            finding_7,
        ):
            finding(probe, setup)
    finally:
        group = server.process.pid if server.process else None
        server.stop()
        if group:  # whatever a failed probe left in the group
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if holder:
            holder.cleanup()
    report(probe, args.out, time.monotonic() - started)
    return 0 if not probe.server_errors and all(c.passed for c in probe.checks) else 1


if __name__ == "__main__":
    with stop_on_signals():  # SIGTERM and SIGINT stop the server and its workers too
        raise SystemExit(main())
