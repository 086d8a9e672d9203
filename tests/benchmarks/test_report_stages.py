"""benchmarks/report_stages.py: the stage table per window from lookalikes.py's keys."""

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
STAGES = ("encode", "prompts", "decode", "select", "features", "nms", "storage")


def _run(path: Path, encode: float, decode: float, windows: int) -> Path:
    seconds = dict.fromkeys(STAGES, 0.0) | {"encode": encode, "decode": decode}
    quality = {"recall70": 0.5, "recall50": 0.6, "precision": 0.7, "precision50": 0.8}
    report = {
        "date": "2026-11-29T00:00:00+00:00",
        "command": "python benchmarks/lookalikes.py ...",
        "stages": {s: {"seconds": v, "share": None} for s, v in seconds.items()},
        "latency": {"windows": windows, "window_s_p95": 9.5, "load": 2.0},
        "first_click": quality,
        "opened": quality,
    }
    path.write_text(json.dumps(report))
    return path


def test_the_table_gives_each_stage_a_window_and_the_plot_is_written(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    report = importlib.import_module("report_stages")
    before = _run(tmp_path / "a.json", encode=40.0, decode=100.0, windows=10)
    after = _run(tmp_path / "b.json", encode=30.0, decode=20.0, windows=10)
    out = tmp_path / "stages.md"
    assert report.main([f"before={before}", f"after={after}", "--out", str(out)]) == 0
    page = out.read_text()
    assert "| encode | 4.00 | 3.00 |" in page and "| decode | 10.00 | 2.00 |" in page
    assert "| **all** | **14.00** | **5.00** |" in page
    assert out.with_suffix(".png").is_file()


def test_a_result_without_stages_is_refused_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    report = importlib.import_module("report_stages")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"latency": {}}))
    with pytest.raises(SystemExit):
        report.main([f"old={old}", "--out", str(tmp_path / "x.md")])
    assert "old.json: no 'stages' key" in capsys.readouterr().err
