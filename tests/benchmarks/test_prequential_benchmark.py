"""benchmarks/prequential.py on a small synthetic dataset: every source scored on every image
before it learns from it, the served totals, the false promotions per level, and the plot."""

import importlib
import json
from pathlib import Path

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_quick_run_scores_each_source_on_each_image_and_counts_the_promotions(
    sam_files, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("prequential")
    make_dataset("cells", 6, seed=3, width=160, height=160, out_dir=tmp_path / "cells")
    out = tmp_path / "prequential.json"
    args = ["--data", str(tmp_path / "cells" / "annotations.json"), "--part", "all", "--images", "4"]
    assert bench.main([*args, "--z", "1", "0", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    names = report["sources"]
    assert {"look-alikes", "look-alikes + E", "learner"} <= set(names)
    assert len(report["per_image"]) == report["images"] == 4
    first = report["per_image"][0]
    assert all(v == 0 for name in names for v in first["saved"][name].values()), (
        "nothing learnt before image 1"
    )
    for row in report["per_image"]:
        assert set(row["saved"]) == set(names)
        assert all(source in (*names, "none") for source in row["served"].values())
    totals = report["totals"]
    assert totals["hand"]["seconds"] > 0 and all(totals[n]["ratio_seconds"] > 0 for n in [*names, "served"])
    assert set(report["false_promotions"]) == {"1.0", "0.0"}
    for level in report["false_promotions"].values():
        assert 0 <= level["false"] <= level["judged"]
    assert set(report["learner_fit_s"]) == {"p50", "p95"}
    assert len(list((tmp_path / "work" / "proposals").glob("*.npz"))) == 4
    assert out.with_suffix(".png").is_file()
