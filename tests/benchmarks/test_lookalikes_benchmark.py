"""benchmarks/lookalikes.py on a small synthetic dataset: the JSON keys the issue names, rates
that are shares, and the proposals kept in --work for the next run."""

import importlib
import json
from pathlib import Path

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_quick_run_writes_the_first_click_per_image_and_the_latency(sam_files, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("lookalikes")
    make_dataset("cells", 8, seed=3, width=160, height=160, out_dir=tmp_path / "cells")
    data = tmp_path / "cells" / "annotations.json"
    out = tmp_path / "lookalikes.json"
    args = ["--train", str(data), "--test", str(data), "--out", str(out), "--work", str(tmp_path / "work")]
    assert bench.main([*args, "--images", "1", "--calibrate", "1", "--limit", "32"]) == 0
    report = json.loads(out.read_text())
    first = report["first_click"]
    assert set(first) >= {"recall70", "recall50", "precision", "precision50"} and first["images"] == 1
    for key in ("recall70", "recall50", "precision", "precision50"):
        assert first[key] is None or 0 <= first[key] <= 1
    assert first["recall50"] is None or first["recall50"] >= first["recall70"]
    (image,) = report["images"]
    assert image["objects"] >= 1 and image["prompts"] <= 32 and image["window"] >= 160
    latency = report["latency"]
    assert set(latency) >= {"prepare_s_p50", "prepare_s_p95", "click_ms_p95", "load"}
    assert set(latency) >= {"encode_s_p95", "decode_ms_per_prompt_p50", "window_s_p95"}, "issue 69's keys"
    assert latency["windows"] == 2, "one window for each of the two images"
    assert 0 < latency["encode_s_p95"] <= latency["window_s_p95"], "a window's seconds hold its encoding"
    assert latency["prepare_s_p95"] <= latency["window_s_p95"]
    stages = report["stages"]
    assert set(stages) == {"encode", "prompts", "decode", "select", "features", "nms", "storage"}
    assert all(s["seconds"] > 0 for s in stages.values()), "every stage was timed"
    assert abs(sum(s["share"] for s in stages.values()) - 1) < 1e-3
    assert len(list((tmp_path / "work" / "proposals").glob("*.npz"))) == 2
    assert out.with_suffix(".png").is_file()
