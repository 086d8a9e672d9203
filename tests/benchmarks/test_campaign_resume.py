"""``campaign.py --resume``: a campaign stopped after an image goes on from the next one in
the same app, and a checkpoint of other arguments is refused."""

import importlib
import json
from pathlib import Path

import pytest

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_a_stopped_campaign_goes_on_from_the_next_image_in_the_same_project(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("campaign")
    make_dataset("aerial", 2, seed=5, width=160, height=160, out_dir=tmp_path / "aerial")
    out = tmp_path / "campaign.json"
    args = ["--data", str(tmp_path / "aerial"), "--mode", "detect", "--images", "2", "--out", str(out)]
    args += ["--retrain-every", "0", "--work", str(tmp_path / "work")]
    real = bench.Annotator.annotate
    done: list[str] = []

    def stop_at_the_second(self, im, truth, mode):
        if done:
            raise KeyboardInterrupt  # the session ends while the second image is open
        done.append(im["file_name"])
        return real(self, im, truth, mode)

    monkeypatch.setattr(bench.Annotator, "annotate", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        bench.main(args)
    assert not out.exists()
    monkeypatch.setattr(bench.Annotator, "annotate", real)
    assert bench.main([*args, "--resume"]) == 0
    report = json.loads(out.read_text())
    rows = report["per_image"]
    assert [r["file_name"] for r in rows] == sorted(r["file_name"] for r in rows)
    assert len(rows) == 2 and rows[0]["file_name"] == done[0]
    assert [r["at_image"] for r in report["resumed"]] == [1]
    assert report["totals"]["manual_quality"] is True and report["project_id"] == 1
    assert "--resume" not in report["command"]


def test_a_checkpoint_of_other_arguments_is_refused(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    resume = importlib.import_module("_campaign_resume")
    resume.Checkpoint(["--data", "a", "--images", "40"], {"project_id": 1}).save(tmp_path)
    assert resume.load(tmp_path, ["--data", "a", "--images", "40"]).report == {"project_id": 1}
    with pytest.raises(SystemExit, match="other arguments"):
        resume.load(tmp_path, ["--data", "a", "--images", "48"])
    assert resume.load(tmp_path / "none", []) is None


def test_resume_needs_a_work_folder_and_one_annotator(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("campaign")
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "o.json"), "--resume"])
    assert "--resume needs --work" in capsys.readouterr().err


def test_a_resumed_trainer_owes_its_steps_beyond_the_rounds_it_finished(monkeypatch, tmp_path):
    """The trainer started again counts on from its finished rounds' steps (``state.json``),
    not from 0: what it owed when the run stopped is due beyond those."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    resume = importlib.import_module("_campaign_resume")
    bench = importlib.import_module("campaign")
    state = tmp_path / "app" / "models" / "1" / "trainer" / "state.json"
    assert resume.rounds_steps(tmp_path / "app") == 0, "no round yet"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"total_steps": 800}))
    checkpoint = resume.Checkpoint(["--x"], {}, rows=[{"trainer_steps": 1000}])
    checkpoint.trainer = {"due": 1050.0, "started": True, "ended": False}
    pace = bench.TrainerPace(1, 1.0)
    annotator = type("Person", (), {})()
    recorder = bench.Recorder()
    checkpoint.restore(annotator, pace, recorder, tmp_path / "app")
    assert pace.due == 850.0 and not pace.started, "800 steps of finished rounds, and the 50 it owed"
