"""What served each image of a campaign (issue 68): the source per class a version's test,
then train record names, and the fast learner's refits, from the rows as the campaign keeps them."""

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def served(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("_campaign_served")


def _row(serving: dict | None = None) -> dict:
    return {"serving": serving or {}}


def test_each_class_is_marked_with_the_source_the_version_before_named(served):
    v2 = {
        "version": 2,
        "serves": [0],
        "saved_s": {"trainer": 12.5, "learner": 4.0, "look-alikes": 1.0},
        "sources": {"0": "trainer", "1": "learner", "2": "look-alikes", "3": "none"},
        "learner_fit_s": {"p50": 0.2, "p95": 0.4, "n": 3},
    }
    rows = [_row(), _row(v2), _row(v2)]
    served.served_by(rows, ["a", "b", "c", "d"], proposals=True)
    assert {k: v["source"] for k, v in rows[0]["served_by"].items()} == dict.fromkeys("abcd", "look-alikes")
    after = rows[2]["served_by"]  # as image 2 left the project
    assert {k: v["source"] for k, v in after.items()} == {
        "a": "trainer v2", "b": "learner", "c": "look-alikes", "d": "none",
    }  # fmt: skip
    assert [after[k]["saved_s_so_far"] for k in "abcd"] == [12.5, 4.0, 1.0, None]
    old = {"version": 1, "serves": [1], "saved_s": {"trainer": 3.0}}  # before sources per class
    rows = [_row(old), _row()]
    served.served_by(rows, ["a", "b"], proposals=True)
    assert [v["source"] for v in rows[1]["served_by"].values()] == ["none", "trainer v1"]


def test_the_learner_s_refits_are_summed_up_from_the_app_and_kept_per_version_from_the_trainer(served):
    rows = [_row({"version": 1, "learner_fit_s": {"p50": 0.1, "p95": 0.3, "n": 4}}), _row()]
    got = served.learner_fits([0.1, 0.2, 0.3, 0.4], rows)
    assert got["count"] == 4 and got["p50"] == 0.25 and 0.38 <= got["p95"] <= 0.4
    assert got["trainer"] == {"1": {"p50": 0.1, "p95": 0.3, "n": 4}}
    assert served.learner_fits([], [_row()]) == {"count": 0, "trainer": {}}, "no refit: no quantile made up"
