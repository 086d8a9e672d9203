"""The CPU a job's steps lose to the app's own work for the person (issue 53: the page's
time left of a training must hold when images are being prepared).

A job runs below the server and its model worker (``jobs.run.JOB_NICENESS``): while the
worker encodes images with SAM ahead of the person, a trainer's step takes ten times as long
as on an idle machine, and the time left said at that moment is ten times too long once the
preparation ends. :class:`Rivals` measures that work: the CPU seconds taken since its last
look by the server and those of its children that run above the job (the model worker; the
other jobs run at the job's own niceness and are not counted), read from ``/proc``. Where
``/proc`` cannot be read, it says nothing (None) and every step counts as uncontended.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
REFRESH_SECONDS = 3.0  # how often the processes to watch are looked for again
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command's name (index 0 is the state,
    1 the parent, 11 and 12 the user and system ticks, 16 the niceness); None if gone."""
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


class Rivals:
    """CPU seconds taken by the app's work that runs above this process: ``server`` (the
    job's parent by default) and its children of a lower niceness than this process."""

    def __init__(self, server: int | None = None, niceness: int | None = None) -> None:
        self.server = str(server if server is not None else os.getppid())
        self.niceness = niceness  # this process's (None: read at each look)
        self.me = str(os.getpid())
        self.ticks: dict[str, int] = {}
        self.pids: list[str] = []
        self.found = float("-inf")

    def _look(self) -> None:
        """The processes to watch: the server, and its children above this one."""
        mine = self.niceness if self.niceness is not None else os.getpriority(os.PRIO_PROCESS, 0)
        pids = [self.server]
        for entry in PROC.iterdir():
            if not entry.name.isdigit() or entry.name in (self.me, self.server):
                continue
            fields = _stat(entry.name)
            if fields and fields[1] == self.server and int(fields[16]) < mine:
                pids.append(entry.name)
        self.pids, self.found = pids, time.monotonic()

    def seconds(self) -> float | None:
        """CPU seconds the watched processes took since the last call (0 at the first; a
        process first seen counts from then); None where ``/proc`` is not there."""
        if not PROC.is_dir():
            return None
        if time.monotonic() - self.found > REFRESH_SECONDS:
            self._look()
        taken, ticks = 0, {}
        for pid in self.pids:
            fields = _stat(pid)
            if fields is None:
                continue
            ticks[pid] = int(fields[11]) + int(fields[12])
            taken += max(ticks[pid] - self.ticks.get(pid, ticks[pid]), 0)
        self.ticks = ticks
        return taken / TICKS
