"""Benchmarks clean up after themselves (benchmarks/_server.py): a ``fewclick serve`` that a
benchmark started ends, with its model worker, when the benchmark is killed with SIGKILL
(the parent-death signal), stopped with SIGTERM or SIGINT (``stop_on_signals``, even with
threads still waiting as the campaign's annotators do), or fails.

Each test runs a small script as a benchmark of its own, in a process of its own, and marks
its environment: every process it starts, and theirs, inherits the mark, so what is left
afterwards is found in /proc whoever its parent has become."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from benchmarks._server import alive, descendants, wait_gone

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
STARTED_WITHIN = 180.0  # seconds for the script to start the server and its model worker
# seconds for every process to exit: a server stop alone may wait 10 s for SIGKILL, and on a
# machine at load 12 the second signal's stop took over 90 s; what this catches, a process
# left behind, outlives the 900 s sleeps below
GONE_WITHIN = 240.0
MARK = "FEWCLICK_CLEANUP_TEST"

#: a benchmark as campaign.py runs one: its main under stop_on_signals, the server stopped in
#: a finally, threads waiting for as long as an annotator's request may (900 s) meanwhile
CAMPAIGN_LIKE = """
import sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from _server import ServerProcess, map_in_threads, stop_on_signals

def main():
    server = ServerProcess(Path({data!r}))
    server.start()
    try:
        Path({ready!r}).write_text(str(server.process.pid))
        if {fail!r}:
            raise RuntimeError("a benchmark's error")
        map_in_threads(lambda k: time.sleep(900), range(3), 3)
    finally:
        server.stop()

with stop_on_signals():
    main()
"""

#: a benchmark that starts a server and is then killed: no code of its own runs
KILLED = """
import sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from _server import ServerProcess

server = ServerProcess(Path({data!r}))
server.start()
Path({ready!r}).write_text(str(server.process.pid))
time.sleep(900)
"""


def marked(mark: str) -> set[int]:
    """The living processes whose environment holds ``MARK=mark``."""
    found = set()
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.add(int(entry.name))
    return found


class Benchmark:
    """The script ``source`` (formatted with its paths and ``fail``) running in a process of
    its own, with a marked environment; its server's pid once it is up."""

    def __init__(self, tmp_path: Path, source: str, fail: bool = False) -> None:
        self.mark, self.ready = uuid.uuid4().hex, tmp_path / "ready"
        script = tmp_path / "bench.py"
        paths = {"benchmarks": str(BENCHMARKS), "data": str(tmp_path / "data"), "ready": str(self.ready)}
        script.write_text(textwrap.dedent(source).format(**paths, fail=fail))
        self.log = tmp_path / "bench.log"
        env = {**os.environ, MARK: self.mark, "OMP_NUM_THREADS": "1"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(script)], stdout=log, stderr=log, env=env)

    def server_up(self) -> int:
        """The server's pid once it answers and its model worker runs."""
        deadline = time.monotonic() + STARTED_WITHIN
        while not (self.ready.is_file() and descendants(int(self.ready.read_text()))):
            assert self.process.poll() is None, f"the script exited early:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"no server within {STARTED_WITHIN:.0f} s"
            time.sleep(0.2)
        return int(self.ready.read_text())

    def clean_up(self) -> None:
        """SIGKILL to whatever a failed test left."""
        for pid in marked(self.mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()


@pytest.fixture()
def bench(tmp_path):
    started = []

    def run(source: str, fail: bool = False) -> Benchmark:
        started.append(Benchmark(tmp_path, source, fail))
        return started[-1]

    yield run
    for b in started:
        b.clean_up()


def test_a_benchmark_killed_with_sigkill_leaves_no_server_and_no_worker(bench):
    b = bench(KILLED)
    server = b.server_up()
    b.process.kill()
    b.process.wait()
    assert wait_gone({server}, GONE_WITHIN) == set(), "the server outlived the benchmark's SIGKILL"
    assert wait_gone(marked(b.mark), GONE_WITHIN) == set(), "a process of the server outlived it"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_benchmark_stopped_by_a_signal_stops_its_server_and_exits_with_threads_waiting(bench, sig):
    b = bench(CAMPAIGN_LIKE)
    b.server_up()
    b.process.send_signal(sig)
    assert b.process.wait(GONE_WITHIN) == 128 + sig, b.log.read_text()
    assert wait_gone(marked(b.mark), GONE_WITHIN) == set(), "a process of the server outlived the benchmark"


def test_a_second_signal_while_the_server_stops_leaves_nothing_behind(bench):
    b = bench(CAMPAIGN_LIKE)
    b.server_up()
    b.process.send_signal(signal.SIGTERM)
    b.process.send_signal(signal.SIGINT)
    # both pending at once, Python runs SIGINT's handler first (it goes by signal number): either
    # may be the one that stops it, and the other must not leave anything behind
    assert b.process.wait(GONE_WITHIN) in (128 + signal.SIGTERM, 128 + signal.SIGINT), b.log.read_text()
    assert wait_gone(marked(b.mark), GONE_WITHIN) == set(), "a process of the server outlived the benchmark"


#: the second signal comes after the first one's cleanup, as the process exits (where a busy
#: machine once put it): a thread still waits, as an annotator's does
SIGNAL_AS_IT_EXITS = """
import os, signal, sys, threading, time
sys.path.insert(0, {benchmarks!r})
import _server

exit_now = _server._exit_now

def second_signal_then_exit(status):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the handler runs here, if any: a sleep is woken by the signal
    exit_now(status)

_server._exit_now = second_signal_then_exit
threading.Thread(target=time.sleep, args=(900,)).start()
with _server.stop_on_signals():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(900)
"""


def test_a_second_signal_as_the_benchmark_exits_does_not_make_it_wait_for_its_threads(bench):
    b = bench(SIGNAL_AS_IT_EXITS)
    assert b.process.wait(60) == 128 + signal.SIGTERM, b.log.read_text()


#: the kernel gives the signal to one of the threads, not to the main thread (which blocks it
#: here, and which a busy machine can leave unscheduled): only the main thread runs handlers
SIGNAL_TO_A_THREAD = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from _server import map_in_threads, stop_on_signals

STOPS = {{signal.SIGTERM, signal.SIGINT}}

def wait_as_an_annotator(k):
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    Path({ready!r} + str(k)).write_text("")
    time.sleep(900)

with stop_on_signals():
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    map_in_threads(wait_as_an_annotator, range(2), 2)
"""


def test_a_signal_the_kernel_gives_to_an_annotator_s_thread_still_stops_the_benchmark(bench):
    b = bench(SIGNAL_TO_A_THREAD)
    deadline = time.monotonic() + 60
    while not all(Path(f"{b.ready}{k}").is_file() for k in range(2)):
        assert b.process.poll() is None and time.monotonic() < deadline, b.log.read_text()
        time.sleep(0.05)
    b.process.send_signal(signal.SIGTERM)
    assert b.process.wait(60) == 128 + signal.SIGTERM, b.log.read_text()


def test_a_benchmark_that_fails_stops_its_server(bench):
    b = bench(CAMPAIGN_LIKE, fail=True)
    assert b.process.wait(STARTED_WITHIN) == 1
    assert b.ready.is_file(), f"the server did not start:\n{b.log.read_text()}"
    assert "a benchmark's error" in b.log.read_text()
    assert wait_gone(marked(b.mark), GONE_WITHIN) == set(), "a process of the server outlived the benchmark"
