"""What every training loop shares: its config's schedule, the learning-rate schedule, the step
budget and the clock that turns it into steps, bf16."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

CALIBRATION_SKIP, CALIBRATION_STEPS = 3, 20  # a budget in minutes becomes steps from these


@dataclass(frozen=True)
class TrainSchedule:
    """The settings every training loop's config starts from (each config adds its own and
    may change these defaults): AdamW's rate and weight decay, the warm-up, and the budget,
    ``steps`` or, when None, as many as fit ``budget_minutes`` on this machine
    (:func:`steps_for_budget`); ``threads`` torch's threads; ``bf16`` bfloat16 autocast, None:
    where the CPU runs it natively (:func:`bf16_supported`)."""

    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    steps: int | None = None
    budget_minutes: float = 10.0
    seed: int = 0
    threads: int = 2
    bf16: bool | None = None


def set_lr(optim: torch.optim.Optimizer, lr: float, warmup_steps: int, step: int, total: int | None) -> None:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total`` (constant
    while ``total`` is still unknown, i.e. before a minute budget has become steps); a
    parameter group's ``lr_scale`` (default 1) multiplies its rate."""
    if step < warmup_steps:
        value = lr * (step + 1) / warmup_steps
    elif total is None:
        value = lr
    else:
        progress = (step - warmup_steps) / max(total - warmup_steps, 1)
        value = lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    for group in optim.param_groups:
        group["lr"] = value * group.get("lr_scale", 1.0)


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def steps_for_budget(
    step_times: list[float], budget_s: float, spent_s: float, step: int, min_steps: int = 0
) -> tuple[float, int]:
    """``(seconds per step, total steps)`` for a budget of ``budget_s`` seconds of which
    ``spent_s`` are gone at ``step``. The speed is the lower quartile of the timed steps:
    the machine's own, even when other programs slowed some of them. ``min_steps`` is a
    floor: on a busy machine a training takes longer than its budget rather than stopping
    before it has learnt anything."""
    per_step = float(np.percentile(step_times, 25))
    return per_step, max(int((budget_s - spent_s) / per_step) + step, step + 1, min_steps)


_PAUSED = [0.0]  # the seconds this process's training has waited in a person's pause


def working_clock() -> float:
    """``time.perf_counter()`` less the seconds this process's training waited in a person's
    pause (:func:`paused`): a budget of minutes is one of work, a pause does not use it up."""
    return time.perf_counter() - _PAUSED[0]


def paused(seconds: float) -> None:
    """Training waited ``seconds`` in a pause (:mod:`fewclick.server.jobs.pause` says so)."""
    _PAUSED[0] += seconds


class StepClock:
    """A training loop's step count, progress bar and clock, from step ``step`` (a resumed
    run's, its ``elapsed`` seconds before) to ``total``. With ``total`` None the count comes
    from a budget of ``budget_s`` seconds: the steps after the first :data:`CALIBRATION_SKIP`
    are timed (allocation makes those slow) and after :data:`CALIBRATION_STEPS` of them
    :func:`steps_for_budget` fixes ``total``, the bar's too, and ``per_step``."""

    def __init__(
        self,
        desc: str,
        step: int,
        total: int | None,
        budget_s: float,
        elapsed: float = 0.0,
        min_steps: int = 0,
    ) -> None:
        self.step, self.total = step, total
        self.budget_s, self.min_steps = budget_s, min_steps
        self.per_step: float | None = None
        self.started = working_clock() - elapsed
        self.times: list[float] = []
        self.tick = self.started
        self.bar = tqdm(total=total, initial=step, desc=desc, unit="step", mininterval=2)

    @property
    def running(self) -> bool:
        """Whether steps are left (always, until a budget has become ``total``)."""
        return self.total is None or self.step < self.total

    def elapsed(self) -> float:
        """Seconds of training so far, a resumed run's earlier ones included."""
        return working_clock() - self.started

    def start(self) -> None:
        """A step begins: its time counts from here."""
        self.tick = working_clock()

    def done(self, postfix: dict[str, str]) -> bool:
        """The step has been made (``postfix``: its losses, for the bar); True when it was
        the one that turned the budget into ``total``."""
        self.step += 1
        if self.total is None and self.step > CALIBRATION_SKIP:
            self.times.append(working_clock() - self.tick)
        calibrated = self.total is None and len(self.times) == CALIBRATION_STEPS
        if calibrated:
            self.per_step, self.total = steps_for_budget(
                self.times, self.budget_s, self.elapsed(), self.step, self.min_steps
            )
            self.bar.reset(total=self.total)
            self.bar.update(self.step - 1)  # the line below counts this step
        self.bar.update(1)
        self.bar.set_postfix(postfix, refresh=False)
        return calibrated

    def close(self) -> None:
        self.bar.close()


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> int:
    """Copy every tensor (weights and buffers) of ``source`` whose name and shape match one
    of ``target``. A convolution weight that has more input channels in ``target`` gets the
    source's channels first and zeros for the rest, so new inputs (clicks) start with no
    say and ``target`` begins as ``source``. Returns how many tensors were copied."""
    own = target.state_dict()
    copied = 0
    with torch.no_grad():
        for name, value in source.state_dict().items():
            if name not in own:
                continue
            into = own[name]
            if into.shape == value.shape:
                into.copy_(value)
            elif into.ndim == 4 and into.shape[0] == value.shape[0] and into.shape[1] > value.shape[1]:
                into.zero_()
                into[:, : value.shape[1]] = value
            else:
                continue
            copied += 1
    return copied
