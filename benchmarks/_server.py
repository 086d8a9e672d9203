"""The app as a user runs it, ``fewclick serve``, in a child process: started on a free
loopback port, waited for until it answers, and killed with SIGKILL (its model worker with
it) or stopped, and the processes under it read from /proc. The load benchmark, the probes
and the tests of what the server's processes do when it stops share it.

A benchmark cleans up after itself however it ends:

- **its own death, even by SIGKILL:** the server gets SIGTERM from the kernel (Linux's
  parent-death signal, :func:`dies_with_parent`) and stops its worker and job processes
  (:mod:`fewclick.server.processes`);
- **SIGTERM and SIGINT:** a script's ``main`` runs under :func:`stop_on_signals`, so a signal
  raises :class:`Signalled` in the main thread and the ``finally: server.stop()`` blocks run;
  the process then exits at once, not waiting for threads still in a request or a pause
  (:func:`map_in_threads` leaves them behind);
- **an error:** the same ``finally`` blocks.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``fewclick serve --data data [--db db_url]`` on 127.0.0.1 (SQLite in ``data`` when
    ``db_url`` is None). The port stays the same across restarts; output goes to
    ``data/server.log``. The server gets SIGTERM when the thread that started it ends (the
    main thread: when this process ends), however it ends (:func:`dies_with_parent`)."""

    def __init__(
        self,
        data: Path,
        db_url: str | None = None,
        port: int | None = None,
        data_roots: list | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data, self.db_url = Path(data), db_url
        self.env = env  # added to this process's environment for the server (None: as is)
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
        env = None if self.env is None else {**os.environ, **self.env}
        # a session of its own: kill() ends the model worker too, as a crash of the service would
        detached = {"start_new_session": True, "preexec_fn": dies_with_parent()}
        with open(self.log, "ab") as log, uninterrupted():
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, **detached)
        try:
            self._wait_up(timeout)
        except BaseException:  # a signal (Signalled) or KeyboardInterrupt while it starts
            self.stop()
            raise

    def _wait_up(self, timeout: float) -> None:
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
        return self.token(name)

    def token(self, name: str) -> dict[str, str]:
        """The headers of a new bearer token of user ``name`` (``fewclick token create``)."""
        where = ["--data", str(self.data)] + (["--db", self.db_url] if self.db_url else [])
        token = subprocess.run(
            [sys.executable, "-m", "fewclick.cli", "token", "create", name, *where],
            text=True,
            check=True,
            capture_output=True,
        )
        return {"Authorization": f"Bearer {token.stdout.strip()}"}

    def kill(self) -> None:
        """SIGKILL to the server and its model worker: no shutdown code runs."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), SIGKILL after 10 s. A SIGTERM or SIGINT to
        this process meanwhile waits until the server is gone (:func:`uninterrupted`)."""
        with uninterrupted():
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


#: Linux's prctl option that sets the signal a process gets when its parent dies
PR_SET_PDEATHSIG = 1


def dies_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child get ``sig`` once
    this process is gone, even after SIGKILL (Linux's ``PR_SET_PDEATHSIG``, kept across
    ``exec``); None elsewhere. The kernel sends it when the *thread* that started the child
    ends, so start a child that should live as long as this process from the main thread.
    A parent that died before the signal was set is caught by comparing ``os.getppid()``."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the line above: no signal will come
            os.kill(os.getpid(), sig)

    return set_death_signal


class Signalled(SystemExit):
    """Raised in the main thread by the first SIGTERM or SIGINT under :func:`stop_on_signals`:
    the ``finally`` blocks run, and the exit status is the shell's, 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class _Signals:
    """What the handler of :func:`stop_on_signals` and :func:`uninterrupted` share."""

    installed = 0  # nesting depth of stop_on_signals
    received: int | None = None  # the first signal
    raised = False  # Signalled was raised (once per process: later signals are ignored)
    shielded = 0  # nesting depth of uninterrupted


def _on_signal(signum: int, frame) -> None:
    if _Signals.received is None:
        _Signals.received = signum
    if _Signals.raised or _Signals.shielded:
        return  # already stopping, or stopping a server: that goes on to its end
    _Signals.raised = True
    raise Signalled(signum)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Within it, a SIGTERM or SIGINT under :func:`stop_on_signals` waits: :class:`Signalled`
    is raised when it ends, so a server being started or stopped is never left half done.
    Only the main thread, where the signal's handler runs, is shielded (elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Signals.shielded += 1
    try:
        yield
    finally:
        _Signals.shielded -= 1
    if not _Signals.shielded and _Signals.received is not None and not _Signals.raised:
        _Signals.raised = True
        raise Signalled(_Signals.received)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Run a benchmark's ``main`` under it (from the main thread): the first SIGTERM or SIGINT
    raises :class:`Signalled` there, so ``finally: server.stop()`` runs; later ones are
    ignored while that cleanup goes on and until the exit. Once the block is left after a
    signal, the process exits at once with 128 + the signal (``os._exit``, output flushed),
    not waiting for threads still in a request or a pause. Nested uses share the outer one."""
    if _Signals.installed:
        _Signals.installed += 1
        try:
            yield
        finally:
            _Signals.installed -= 1
        return
    _Signals.received, _Signals.raised = None, False
    before = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    _Signals.installed = 1
    try:
        yield
    finally:
        _Signals.installed = 0
        if _Signals.received is not None:
            # the handler stays: a second signal arriving now is ignored. Restored, SIGINT's
            # would raise KeyboardInterrupt before the exit, and Python would wait for threads
            _exit_now(128 + _Signals.received)
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing more to say
            pass
    os._exit(status)


#: seconds the main thread waits on threads at a time before it looks for a signal's handler
SIGNAL_POLL = 0.5


def map_in_threads(fn: Callable, items: Iterable, threads: int) -> list:
    """``[fn(item) for item in items]``, ``threads`` at a time. When this thread is
    interrupted (a signal, an error), it returns at once: the calls not started are
    cancelled and those under way are left to end by themselves (stop the server to make
    their requests fail), never waited for.

    It waits :data:`SIGNAL_POLL` seconds at a time, never in one untimed wait: the kernel may
    give a SIGTERM or SIGINT to one of the threads, which only marks it for the main thread,
    and an untimed lock wait there is not woken by that (two quick signals on a busy machine
    once left a benchmark waiting for its threads' 900 s)."""
    pool = ThreadPoolExecutor(threads)
    try:
        calls = [pool.submit(fn, item) for item in items]
        running = set(calls)
        while running:
            done, running = wait(running, timeout=SIGNAL_POLL, return_when=FIRST_EXCEPTION)
            for call in done:
                call.result()  # a call's error is raised here, the others left running
        return [call.result() for call in calls]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


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
