"""Where the seconds of making SAM's proposals go (issue 69): per stage, per window.

:class:`~fewclick.predict.proposals.ProposalMaker` charges each stage of a window to a
:class:`StageClock` handed to it: the encoder, the choice of prompt points, SAM's decoder,
the bookkeeping that keeps or drops each candidate, the masks and features of those kept,
and the NMS over the image's windows. Whoever writes the proposals charges ``storage``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

STAGES = ("encode", "prompts", "decode", "select", "features", "nms", "storage")


@dataclass
class Window:
    """One window's seconds per stage (encoding included) and the prompts its decoder asked."""

    seconds: dict[str, float] = field(default_factory=dict)
    prompts: int = 0

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@dataclass
class StageClock:
    """Seconds per stage over everything timed with it (``seconds``), and per window
    (``windows``, the latest last); the stages outside a window (NMS, storage) count in
    ``seconds`` only."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    windows: list[Window] = field(default_factory=list)
    _open: Window | None = None

    def start_window(self) -> Window:
        """A new window: the stages timed from now on are charged to it too."""
        self._open = Window()
        self.windows.append(self._open)
        return self._open

    def end_window(self) -> None:
        self._open = None

    def asked(self, prompts: int) -> None:
        """The decoder was asked ``prompts`` points in the open window."""
        if self._open is not None:
            self._open.prompts += int(prompts)

    def charge(self, stage: str, seconds: float) -> None:
        if stage not in self.seconds:
            raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
        self.seconds[stage] += seconds
        if self._open is not None:
            self._open.seconds[stage] = self._open.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Charge the seconds of the ``with`` block to ``stage``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.charge(stage, time.perf_counter() - started)


def timed(clock: StageClock | None, stage: str):
    """``clock.timed(stage)``, or a block that times nothing when there is no clock."""
    return clock.timed(stage) if clock is not None else _untimed()


@contextmanager
def _untimed() -> Iterator[None]:
    yield
