"""``benchmarks/segment.py``'s latency figures: SAM's encoding and a click's ``predict``."""

from __future__ import annotations

import time

import numpy as np

from fewclick.protocols.segment import tight_box
from fewclick.types import Clicks

#: SAM whose candidate masks the annotator may Tab through, and SAM tuned (segment.py's names)
MULTIMASK, TUNED = "sam_multimask", "sam_tuned"


def latencies(predictors: dict, items) -> dict:
    """p50 / p95 in ms: ``predict`` (the model's, 1..9 clicks), ``sam_encode`` (uncached,
    per test image) and ``sam_predict`` (a box and 1..9 clicks with the previous logits)."""
    out = {}
    if "model" in predictors:
        out["predict"] = _click_latency(predictors["model"], items)
    if "sam" in predictors:
        sam = predictors["sam"]
        times, seen = [], set()
        for image, *_ in items:
            if id(image) in seen:
                continue
            seen.add(id(image))
            t, cpu = time.perf_counter(), time.process_time()
            sam.encoder.encode(image, key=f"latency-{len(seen)}-{time.time_ns()}")
            times.append((time.perf_counter() - t, time.process_time() - cpu))
            if len(times) >= 10:
                break
        out["sam_encode"] = _percentiles(times)
        out["sam_predict"] = _click_latency(sam, items)
    for name in (MULTIMASK, TUNED):
        if name in predictors:
            out[f"{name}_predict"] = _click_latency(predictors[name], items)
    return out


def _click_latency(predictor, items) -> dict:
    """predict with 1..9 clicks (and the last ``state`` as ``previous``) on the first test
    objects: p50 / p95 in ms."""
    rng = np.random.default_rng(0)
    times = []
    for image, masks, *_ in items:
        predictor.set_image(image)
        for gt in masks[:10]:
            if not gt.any():
                continue
            box = tight_box(gt)
            ys, xs = np.nonzero(gt)
            previous = predictor.predict(box).state
            for n in range(1, 10):
                pick = rng.integers(0, len(xs), n)
                clicks = Clicks(np.stack([xs[pick], ys[pick]], 1), np.zeros(n), rng.random(n) < 0.5)
                t, cpu = time.perf_counter(), time.process_time()
                previous = predictor.predict(box, clicks, previous).state
                times.append((time.perf_counter() - t, time.process_time() - cpu))
        if len(times) >= 90:
            break
    return _percentiles(times)


def _percentiles(times: list[tuple[float, float]]) -> dict:
    """p50 / p95 of wall-clock ms and, as ``cpu_p50`` / ``cpu_p95``, of the process's CPU
    ms (all threads): on a loaded machine the wall clock stretches, the CPU time much less."""
    ms = np.asarray(times).reshape(-1, 2) * 1000
    out = {}
    for prefix, column in (("", ms[:, 0]), ("cpu_", ms[:, 1])):
        for q in (50, 95):
            out[f"{prefix}p{q}"] = round(float(np.percentile(column, q)), 1)
    return out
