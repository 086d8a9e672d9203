"""The app as a user runs it, ``fewclick serve``, in a child process: started on a free
loopback port, waited for until it answers, and killed with SIGKILL (its model worker with
it) or stopped, and the processes under it read from /proc. The load benchmark, the probes
and the tests of what the server's processes do when it stops share it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``fewclick serve --data data [--db db_url]`` on 127.0.0.1 (SQLite in ``data`` when
    ``db_url`` is None). The port stays the same across restarts; output goes to
    ``data/server.log``."""

    def __init__(
        self, data: Path, db_url: str | None = None, port: int | None = None, data_roots: list | None = None
    ) -> None:
        self.data, self.db_url = Path(data), db_url
        self.data_roots = [Path(r) for r in data_roots or []]  # --data-root: where datasets may come from
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    def start(self, timeout: float = 120) -> None:
        """Start it and return once it answers HTTP (any status: with accounts, 401 is up)."""
        command = [sys.executable, "-m", "fewclick.cli", "serve", "--data", str(self.data)]
        command += ["--port", str(self.port)] + (["--db", self.db_url] if self.db_url else [])
        for root in self.data_roots:
            command += ["--data-root", str(root)]
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            # a session of its own: kill() ends the model worker too, as a crash of the service would
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.base}/api/projects", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def add_user(self, name: str, role: str, password: str | None = None) -> dict[str, str]:
        """Add a user with the CLI, as an admin would (``fewclick users add``, ``fewclick token
        create``); returns the headers of a bearer token of theirs."""
        where = ["--data", str(self.data)] + (["--db", self.db_url] if self.db_url else [])
        cli = [sys.executable, "-m", "fewclick.cli"]
        add = [*cli, "users", "add", name, "--role", role, *where]
        if password is not None:
            add.append("--password-stdin")
        subprocess.run(add, input=f"{password or ''}\n", text=True, check=True, capture_output=True)
        token = subprocess.run(
            [*cli, "token", "create", name, *where], text=True, check=True, capture_output=True
        )
        return {"Authorization": f"Bearer {token.stdout.strip()}"}

    def kill(self) -> None:
        """SIGKILL to the server and its model worker: no shutdown code runs."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), SIGKILL after 10 s."""
        try:
            self._signal(signal.SIGTERM, wait=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: int, wait: float | None = None) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(wait)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def descendants(pid: int) -> set[int]:
    """The living processes under ``pid`` (children, theirs, ...), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, p in parents.items() if p == parent}
        todo.extend(children - found)
        found |= children
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float = 30.0) -> set[int]:
    """The ones among ``pids`` still alive after ``timeout`` seconds (empty once all exit)."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
