"""benchmarks/mask_bound.py: the oracle's prices per way and its totals from rows with known
ways, and a run with SAM on a tiny synthetic dataset of cells."""

import importlib
import json
from pathlib import Path

import pytest

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("mask_bound")


def test_each_way_is_priced_as_the_campaign_prices_its_steps(bench):
    cost = bench.COST_SECONDS
    square = [[[0, 0], [4, 0], [4, 4], [0, 4]]]  # 4 vertices and Enter
    ways = bench._costs({"proposal": True, "click": 0, "box": 3}, square, 4, 4)["ways"]
    assert ways["proposal"] == (cost["verify"], 0), "a look, no interaction (the Enter is the image's)"
    assert ways["click"] == (cost["click"] + cost["accept"], 2)
    # the 4th of 4 candidates: one Shift+Tab back round, not three Tabs
    assert ways["box"] == (cost["draw"] + cost["tab"] + cost["accept"], 3)
    assert ways["polygon"] == (4 * cost["vertex"] + cost["accept"], 5)
    none = bench._costs({"proposal": False, "click": None, "box": None}, square, 4, 4)["ways"]
    assert none["proposal"] is none["click"] is none["box"] is None


def test_the_oracle_takes_the_cheapest_way_and_one_enter_for_the_proposals(bench):
    cost = bench.COST_SECONDS
    square = [[[0, 0], [4, 0], [4, 4], [0, 4]]]
    rows = [
        {"size": "small", **bench._costs({"proposal": True, "click": 0, "box": 0}, square, 4, 4)},
        {"size": "small", **bench._costs({"proposal": True, "click": None, "box": None}, square, 4, 4)},
        {"size": "large", **bench._costs({"proposal": False, "click": None, "box": None}, square, 4, 4)},
    ]
    bench._oracles(rows)
    assert rows[0]["oracle"] == (cost["verify"] + cost["accept"], 1), "the image's Enter on the first"
    assert rows[1]["oracle"] == (cost["verify"], 0)
    assert rows[0]["without_proposals"] == (cost["click"] + cost["accept"], 2)
    assert rows[1]["without_proposals"] == rows[2]["oracle"] == (4 * cost["vertex"] + cost["accept"], 5)
    totals = bench._totals(rows)
    polygon = 3 * (4 * cost["vertex"] + cost["accept"])
    spent = 2 * cost["verify"] + cost["accept"] + 4 * cost["vertex"] + cost["accept"]
    assert totals["polygon_seconds"] == pytest.approx(polygon, abs=0.05)
    assert totals["oracle_ratio"] == pytest.approx(polygon / spent, abs=1e-3)
    assert totals["oracle_interactions_ratio"] == pytest.approx(15 / 6, abs=1e-3)
    assert totals["share"] == {"proposal": 0.667, "click": 0.333, "box": 0.333, "any": 0.667}


@pytest.mark.slow
def test_a_run_on_synthetic_cells_writes_its_totals_and_plot(bench, tmp_path, sam_files):
    make_dataset("cells", 1, seed=5, width=160, height=160, out_dir=tmp_path / "cells")
    out = tmp_path / "bound.json"
    args = ["--data", str(tmp_path / "cells"), "--part", "all", "--images", "1"]
    assert bench.main([*args, "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    totals = report["totals"]
    assert totals["objects"] > 0 and len(report["images"]) == 1
    assert totals["oracle_seconds"] <= totals["without_proposals_seconds"] <= totals["polygon_seconds"]
    assert 0 <= totals["share"]["box"] <= totals["share"]["any"] <= 1
    assert out.with_suffix(".png").stat().st_size > 0
    with pytest.raises(SystemExit, match="no images in its test part"):
        bench.main([*args[:2], "--part", "test", "--work", str(tmp_path / "work"), "--out", str(out)])
