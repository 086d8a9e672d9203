"""The server owns its processes: its model worker and job processes end with it, however it
ends (kill -9, SIGTERM, SIGINT), and a job an earlier server left "running" is failed when the
next one starts, so training can start again at once.

Each test runs ``fewclick serve`` (or ``fewclick demo``) in a process of its own, as a user
does, with a training job under way, and signals that process alone (not its group): what
remains must be what the server itself takes down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from benchmarks._server import ServerProcess, descendants, free_port, wait_gone

from fewclick.data.synthetic import make_dataset
from fewclick.server.db import Job, make_engine, session_factory, sqlite_url

pytestmark = pytest.mark.slow

GONE_WITHIN = 30.0  # seconds for the children to notice and exit: generous on a busy machine
STARTED_WITHIN = 180.0  # seconds for a job process to spawn, import torch and start training


def wait_for(check, what: str, timeout: float = STARTED_WITHIN):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.2)
    return value


def job_row(data: Path, job_id: int) -> Job:
    engine = make_engine(sqlite_url(data / "fewclick.db"))
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        session.expunge(job)
    engine.dispose()
    return job


class Server(ServerProcess):
    """A server whose every start's process group is killed at the end of the test: the
    tests signal the server alone, and a failed one must not leave its children running."""

    def __init__(self, data: Path) -> None:
        super().__init__(data)
        self.groups: list[int] = []

    def start(self, timeout: float = 120) -> None:
        super().start(timeout)
        self.groups.append(self.process.pid)

    def kill_groups(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture()
def server(tmp_path):
    """(server, client, project id): ``fewclick serve`` with a project of 2 finished images
    (cells: masks and boxes) that trains only when asked."""
    data = tmp_path / "data"
    make_dataset("cells", 2, seed=4, width=160, height=160, out_dir=data / "cells")
    server = Server(data)
    server.start()
    client = httpx.Client(base_url=server.base, headers=server.add_user("admin", "admin"), timeout=60)
    r = client.post(
        "/api/projects", json={"name": "cells", "dataset": str(data / "cells" / "annotations.json")}
    )
    assert r.status_code == 201, r.text
    project_id = r.json()["project"]["id"]
    client.patch(f"/api/projects/{project_id}", json={"auto_train_every": 0})
    for im in client.get(f"/api/projects/{project_id}/images").json():
        assert client.patch(f"/api/images/{im['id']}", json={"status": "done"}).status_code == 200
    yield server, client, project_id
    server.kill()
    server.kill_groups()


def train(client: httpx.Client, project_id: int) -> int:
    """Start a 10-minute training job; its id."""
    r = client.post(f"/api/projects/{project_id}/train", json={"minutes": 10})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def training_children(server: ServerProcess, client: httpx.Client, project_id: int) -> tuple[int, set[int]]:
    """Start training and wait until it runs; (job id, the server's processes then: the
    model worker, the job's process, multiprocessing's resource tracker)."""
    job_id = train(client, project_id)
    wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["status"] == "running", "the job running")
    children = descendants(server.process.pid)
    assert len(children) >= 2, f"expected the model worker and the job's process, got {children}"
    return job_id, children


def test_after_kill_9_of_the_server_alone_its_processes_exit_and_a_new_server_trains_at_once(server):
    server, client, project_id = server
    job_id, children = training_children(server, client, project_id)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.process = None
    assert wait_gone(children) == set(), "the model worker and the job's process outlived the server"
    server.start()
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "failed", job
    again = train(client, project_id)  # at once: no 409 for the dead job
    assert again != job_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_server_stopped_by_a_signal_leaves_no_process_and_no_running_job(server, sig):
    server, client, project_id = server
    job_id, children = training_children(server, client, project_id)
    os.kill(server.process.pid, sig)
    server.process.wait(GONE_WITHIN)
    server.process = None
    assert wait_gone(children) == set(), "a process of the server outlived it"
    job = job_row(server.data, job_id)
    assert job.status == "failed" and "stopped" in job.message, (job.status, job.message)


def test_the_demo_stopped_by_sigterm_leaves_no_process(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "fewclick.cli", "demo", "--out", str(tmp_path / "demo")]
    command += ["--port", str(port), "--train-minutes", "10"]
    with open(tmp_path / "demo.log", "wb") as log:
        demo = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:

        def up() -> bool:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/projects", timeout=2)
            except httpx.TransportError:
                return False
            return len(descendants(demo.pid)) >= 2  # the model worker and the training job

        wait_for(up, "the demo serving and training")
        children = descendants(demo.pid)
        demo.send_signal(signal.SIGTERM)
        demo.wait(GONE_WITHIN)
        assert wait_gone(children) == set(), "a process of the demo outlived it"
    finally:  # its group: whatever a failed test left
        try:
            os.killpg(demo.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        demo.wait()
