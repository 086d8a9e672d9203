"""benchmarks/segment.py with the methods of issue 54 on a small synthetic dataset: SAM
zoomed in on small boxes (``sam_zoom``) and finished by outline edits (``sam_edit``) are
scored by the rounds protocol, by object size, and the edits' summary is written."""

import importlib
import json
from pathlib import Path

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_zoom_and_edit_methods_are_scored_by_round_and_size(sam_files, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("segment")
    make_dataset("cells", 4, seed=3, width=480, height=360, out_dir=tmp_path / "cells")
    data = tmp_path / "cells" / "annotations.json"
    out = tmp_path / "segment.json"
    args = ["--train", str(data), "--test", str(data), "--out", str(out), "--work", str(tmp_path / "work")]
    counts = ["--max-instances", "8", "--noc-instances", "2", "--ranker-instances", "8"]
    assert bench.main([*args, *counts, "--methods", "sam", "sam_zoom", "sam_edit"]) == 0
    report = json.loads(out.read_text())
    assert set(report["rounds"]) == {"sam", "sam_zoom", "sam_edit"}
    assert all(len(m) == 4 for m in report["rounds"].values()), "round 0 and the 3 rounds of clicks"
    assert report["rounds"]["sam_edit"] == report["rounds"]["sam_zoom"], "the same clicks, then edits"
    assert set(report["by_size"]["sam_zoom"]) == {"small", "medium", "large"}
    edits = report["edits"]
    assert set(edits) == {"all", "small", "medium", "large"} and edits["all"]["count"] == report["instances"]
    for row in edits.values():
        if row["count"]:
            assert row["mIoU_edited"] >= row["mIoU_clicks"], "an edit is kept only when it gains"
            assert row["at_target_edited"] >= row["at_target_clicks"]
            assert row["edit_seconds_per_object"] >= 0
    assert "sam_edit" not in report["ranker_by_method"], "its sessions are sam_zoom's"
    assert out.with_suffix(".png").is_file()
