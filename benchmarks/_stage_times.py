"""What a benchmark reports of where the seconds of SAM's proposals went (issue 69), read off
a :class:`~fewclick.predict.stage_clock.StageClock`: per window latencies, and a table of
the stages. ``lookalikes.py`` writes both; the windows read from a cache are not timed."""

from __future__ import annotations

import numpy as np

from fewclick.predict.stage_clock import STAGES, StageClock


def window_latency(clock: StageClock) -> dict:
    """Per window timed: ``window_s`` (every stage, encoding included), ``encode_s``,
    ``prepare_s`` (the window without its encoding: prompts, decoder, selection, features),
    and the decoder's milliseconds per prompt asked; p50 and p95 of each, and ``windows``."""
    windows = clock.windows
    total = [w.total for w in windows]
    encode = [w.seconds.get("encode", 0.0) for w in windows]
    per_prompt = [1000 * w.seconds.get("decode", 0.0) / w.prompts for w in windows if w.prompts]
    out: dict = {}
    for name, values in (
        ("window_s", total),
        ("encode_s", encode),
        ("prepare_s", [t - e for t, e in zip(total, encode)]),
        ("decode_ms_per_prompt", per_prompt),
    ):
        out[f"{name}_p50"] = quantile(values, 0.5)
        out[f"{name}_p95"] = quantile(values, 0.95)
    out["windows"] = len(windows)
    out["prompts_per_window_p50"] = quantile([w.prompts for w in windows], 0.5)
    return out


def stage_table(clock: StageClock) -> dict:
    """Per stage: its seconds over everything timed and its share of them."""
    total = sum(clock.seconds.values())
    return {
        stage: {
            "seconds": round(clock.seconds[stage], 3),
            "share": round(clock.seconds[stage] / total, 4) if total > 0 else None,
        }
        for stage in STAGES
    }


def quantile(values, q: float) -> float | None:
    """The ``q`` quantile of ``values`` (None when there are none)."""
    return float(np.quantile(values, q)) if len(values) else None
