"""benchmarks/fullimage.py on a small synthetic dataset: the JSON keys the issue names,
integer step budgets, and the box floor's curve rising with scribbles."""

import importlib
import json
from pathlib import Path

import pytest

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_quick_run_writes_the_curves_of_both_allocations(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("fullimage")
    monkeypatch.setattr(bench, "_pretrained", lambda work: (None, None))  # SAM has its own tests
    make_dataset("cells", 2, seed=3, width=96, height=96, out_dir=tmp_path / "cells")
    data = tmp_path / "cells" / "annotations.json"
    out = tmp_path / "fullimage.json"
    args = [
        "--train",
        str(data),
        "--test",
        str(data),
        "--out",
        str(out),
        "--quick",
        "--work",
        str(tmp_path / "work"),
    ]
    assert bench.main([*args, "--train-steps", "20"]) == 0
    report = json.loads(out.read_text())
    for allocation in ("one_per_region", "free"):
        curve = report["curves"]["box_fill"][allocation]
        assert curve["scribbles_per_region"] == list(range(bench.QUICK_STEPS + 1))
        assert len(curve["mIoU"]) == bench.QUICK_STEPS + 1 and curve["mIoU"][-1] > curve["mIoU"][0]
        assert allocation in report["to85"]["box_fill"] and allocation in report["to90"]["box_fill"]
    assert report["choice"]["full_image"] == "full_image_scratch"  # the only one without SAM's files
    assert report["curves"]["full_image"] == report["curves"]["full_image_scratch"]
    assert set(report["curves"]["single_region"]) == {"one_per_region"}
    assert report["latency_ms"]["method"] == "full_image" and report["latency_ms"]["first"]["p95"] > 0

    # --only-latency re-measures latency_ms with the same models and keeps everything else
    report["latency_ms"] = {"stale": True}
    out.write_text(json.dumps(report))
    assert bench.main([*args, "--only-latency"]) == 0
    again = json.loads(out.read_text())
    assert again["latency_ms"]["serves"] == "full_image_scratch" and again["latency_ms"]["first"]["p95"] > 0
    assert "stale" not in again["latency_ms"] and again["curves"] == report["curves"]

    # ... and names the model file when it is gone, leaving the JSON as it was
    Path(again["training"]["single_region"]["path"]).unlink()
    with pytest.raises(SystemExit, match="single_region model"):
        bench.main([*args, "--only-latency"])
    assert json.loads(out.read_text()) == again
