"""What every training loop shares: the learning-rate schedule, the step budget, bf16."""

from __future__ import annotations

import math

import numpy as np
import torch

CALIBRATION_SKIP, CALIBRATION_STEPS = 3, 20  # a budget in minutes becomes steps from these


def set_lr(optim: torch.optim.Optimizer, lr: float, warmup_steps: int, step: int, total: int | None) -> None:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total`` (constant
    while ``total`` is still unknown, i.e. before a minute budget has become steps)."""
    if step < warmup_steps:
        value = lr * (step + 1) / warmup_steps
    elif total is None:
        value = lr
    else:
        progress = (step - warmup_steps) / max(total - warmup_steps, 1)
        value = lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    for group in optim.param_groups:
        group["lr"] = value


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def steps_for_budget(
    step_times: list[float], budget_s: float, spent_s: float, step: int
) -> tuple[float, int]:
    """``(seconds per step, total steps)`` for a budget of ``budget_s`` seconds of which
    ``spent_s`` are gone at ``step``. The speed is the lower quartile of the timed steps:
    the machine's own, even when other programs slowed some of them."""
    per_step = float(np.percentile(step_times, 25))
    return per_step, max(int((budget_s - spent_s) / per_step) + step, step + 1)
