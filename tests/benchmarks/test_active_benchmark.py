"""benchmarks/active.py on a small synthetic dataset: the JSON keys the issue names, the
box counts of both levels, and the targets read off the curves."""

import importlib
import json
from pathlib import Path

import pytest

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("active")


@pytest.mark.slow
def test_a_tiny_run_writes_the_curves_of_every_level(bench, tmp_path):
    make_dataset("aerial", 8, seed=1, width=128, height=128, out_dir=tmp_path / "aerial")
    data = tmp_path / "aerial" / "annotations.json"
    out = tmp_path / "active.json"
    args = ["--train", str(data), "--test", str(data), "--out", str(out), "--work", str(tmp_path / "work")]
    args += ["--seeds", "1", "--episodes", "1", "--initial-steps", "2", "--episode-steps", "1"]
    args += ["--methods", "box_uncertainty", "image_random"]
    assert bench.main(args) == 0
    report = json.loads(out.read_text())
    assert {"curves", "full_supervision_mAP", "episodes", "total_boxes", "cost_model"} <= set(report)
    assert report["backbone"] == "imagenet" and report["episode_steps"] == 1
    check = report["consistency"]
    assert {"box_all", "image", "equal_targets"} <= set(check)
    assert check["equal_targets"] is True and check["equal_targets_before_drawing"] is False
    for method in ("box_uncertainty", "image_random"):
        curve = report["curves"][method]
        assert {"boxes", "mAP_mean", "mAP_std", "seconds"} <= set(curve)
        assert len(curve["boxes"]) == len(curve["mAP_mean"]) == len(curve["seconds"])
        assert curve["boxes"][0] > 0 and curve["seconds"][0] == 7.0 * curve["boxes"][0]
    assert len(report["curves"]["image_random"]["boxes"]) == 2, "the initial model and one episode"
    assert out.with_suffix(".png").is_file()
    # a second seed run apart, then joined into one report of two seeds
    second = tmp_path / "seed1.json"
    assert bench.main([*args[:5], str(second), *args[6:], "--first-seed", "1"]) == 0
    assert "consistency" not in json.loads(second.read_text()), "the check runs with seed 0"
    merge = importlib.import_module("active_merge")
    joined = tmp_path / "joined.json"
    assert merge.main([str(out), str(second), "--out", str(joined)]) == 0
    both = json.loads(joined.read_text())
    assert both["seeds"] == 2 and sorted(both["runs"]["image_random"]) == ["0", "1"]
    assert both["curves"]["box_uncertainty"]["seeds"] == 2 and both["consistency"] == check
    with pytest.raises(ValueError, match="two parts"):
        merge.merge([report, report])


def test_targets_read_the_boxes_each_curve_needed(bench):
    curve = lambda boxes, maps: {"boxes": boxes, "mAP_mean": maps}  # noqa: E731
    report = {
        "full_supervision_mAP": 0.8,
        "total_boxes": 1000,
        "curves": {
            "image_random": curve([100, 300, 500], [0.3, 0.5, 0.6]),
            "box_random": curve([100, 250, 400], [0.3, 0.55, 0.65]),
            "box_uncertainty": curve([100, 200, 300], [0.3, 0.6, 0.7]),
        },
    }
    found = bench.targets(report)
    reach = found["box_reaches_image_random_final"]["boxes_to_reach"]
    assert reach == {"box_random": 400, "box_uncertainty": 200}
    assert found["box_reaches_image_random_final"]["met"] is True  # 200 <= 0.6 * 500
    assert found["85_percent_of_full_with_half_the_boxes"]["met"] is True  # 0.7 >= 0.68 at 300 boxes
    assert found["uncertainty_above_random_after_episode_1"]["met"] is True
    report["curves"]["box_uncertainty"]["mAP_mean"] = [0.3, 0.6, 0.6]
    assert bench.targets(report)["uncertainty_above_random_after_episode_1"]["met"] is False
    assert found["box_above_initial_from_episode_1"]["met"] is True
    above = found["box_above_image_random_at_equal_boxes"]
    assert above["episodes_above"] == {"box_random": 2, "box_uncertainty": 2} and above["met"] is True
    report["consistency"] = {"box_all": 0.5, "image": 0.53, "equal_targets": True}
    assert bench.targets(report)["consistency"] == {"equal_targets": True, "gap": 0.03, "met": False}
    report["consistency"]["box_all"] = 0.52
    assert bench.targets(report)["consistency"]["met"] is True
    report["full_supervision_mAP"] = 0.34  # less than 0.05 above the initial model's 0.3
    assert bench.targets(report)["measurable"]["met"] is False
    report["full_supervision_mAP"] = 0.8
    # the initial model every method shares is not a box-level method's reach; and a detector
    # that full supervision does not improve on tells no method apart
    report["curves"]["box_random"]["mAP_mean"] = [0.9, 0.1, 0.1]
    report["curves"]["box_uncertainty"]["mAP_mean"] = [0.9, 0.1, 0.1]
    report["curves"]["image_random"]["mAP_mean"] = [0.9, 0.1, 0.2]
    found = bench.targets(report)
    assert found["box_reaches_image_random_final"]["boxes_to_reach"] == {
        "box_random": None,
        "box_uncertainty": None,
    }
    assert found["measurable"]["met"] is False and not found["85_percent_of_full_with_half_the_boxes"]["met"]
