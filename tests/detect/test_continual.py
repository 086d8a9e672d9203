"""The trainer that keeps learning (issue 32, part 2): rounds warm-started from the round
before, promotion only beyond the held-out score's noise, its state surviving a restart.

The promotion tests score "models" whose answers are known (the reference boxes, or
nothing), so what is promoted does not depend on what a short run learned on this CPU.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fewclick.active.continual import ContinualConfig, ContinualTrainer, held_out, paired_bootstrap
from fewclick.data.synthetic import make_dataset
from fewclick.io.images import load_image
from fewclick.metrics.thresholds import NONE_SHOWN
from fewclick.models.detector import load_detector
from fewclick.train.detect import detector_config_for
from fewclick.types import Detections


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("continual")
    return make_dataset("aerial", 4, seed=2, width=96, height=96, out_dir=out)


def _held(data, n):
    return [(load_image(r.path), r.objects) for r in data.images[:n]]


class _Known:
    """A predictor that answers every image with the reference boxes (``right``) or nothing."""

    def __init__(self, held, right: bool) -> None:
        self.answers = {id(image): objects for image, objects in held}
        self.right, self.image = right, None

    def set_image(self, image) -> None:
        self.image = image

    def predict(self, clicks) -> Detections:
        objects = self.answers[id(self.image)]
        if not self.right:
            return Detections.empty()
        return Detections(objects.boxes, np.ones(len(objects), np.float32), objects.labels)


def _config(**kw):
    kw.setdefault("min_held_out_objects", 1)
    kw.setdefault("min_held_out", 2)
    return ContinualConfig(round_steps=2, crop=64, batch_size=2, resamples=50, **kw)


def test_the_paired_bootstrap_counts_the_wins_and_ties_half(data):
    held = _held(data, 3)
    gts = [o for _, o in held]
    right = [[Detections(o.boxes, np.ones(len(o), np.float32), o.labels) for o in gts]]
    nothing = [[Detections.empty() for _ in gts]]
    assert paired_bootstrap(gts, right, nothing, len(data.classes), 40, 0) == 1.0
    assert paired_bootstrap(gts, nothing, right, len(data.classes), 40, 0) == 0.0
    assert paired_bootstrap(gts, right, right, len(data.classes), 40, 0) == 0.5


def test_held_out_images_are_fixed_by_their_id_one_in_four_whatever_order_they_come_in():
    assert (
        [held_out(i) for i in range(1, 5)]
        == [held_out(i) for i in range(1, 5)]
        == [False, False, True, False]
    )
    for stride in (1, 2, 4, 8):  # a person annotating every image, or every 4th by name, ...
        for start in range(1, stride + 1):
            ids = range(start, start + 40 * stride, stride)
            assert 0.15 <= sum(map(held_out, ids)) / 40 <= 0.35, (stride, start)


def test_a_round_warm_starts_from_the_round_before(data, tmp_path):
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config())
    first = trainer.round(data, [])
    assert not first.promoted and first.candidate_mAP is None, "unscored: it never serves, not even first"
    frozen = ContinualTrainer(tmp_path, config, _config(lr=0.0))  # the same folder, a restart
    assert frozen.serving is None and len(frozen.state.rounds) == 1
    second = frozen.round(data, [])
    assert second.number == 2 and not second.promoted
    a, _ = load_detector(first.path)
    b, _ = load_detector(second.path)
    convs = [k for k, v in a.state_dict().items() if k.endswith("weight") and v.dim() == 4]
    assert convs and all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in convs)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["total_steps"] == 4 and state["serving_round"] is None


def test_a_candidate_scored_on_too_few_held_out_objects_never_serves(data, tmp_path):
    held = _held(data, 2)
    objects = sum(len(o) for _, o in held)
    config = detector_config_for(data, "c3det")
    loader = lambda path: _Known(held, True)  # noqa: E731 (a "model" that is always right)
    few = ContinualTrainer(tmp_path / "few", config, _config(min_held_out_objects=objects + 1), load=loader)
    r = few.round(data, held)
    assert not r.promoted and r.candidate_mAP is None and few.serving is None, "nothing served, still not"
    assert (
        r.note
        == f"{objects} held-out objects on 2 images; {objects + 1} objects on 2 images needed to score it"
    )
    assert r.held_out_objects == objects
    enough = ContinualTrainer(tmp_path / "enough", config, _config(min_held_out_objects=objects), load=loader)
    r = enough.round(data, held)
    assert r.promoted and r.candidate_mAP == 1.0 and enough.serving == r.path


def test_a_candidate_is_promoted_only_when_it_wins_beyond_the_noise(data, tmp_path):
    held = _held(data, 3)
    config = detector_config_for(data, "c3det")
    better = {"round1": False, "round2": True, "round3": False}  # round 2's "model" is right

    def loader(path):
        return _Known(held, better[Path(path).parent.name.split("-")[0]])

    trainer = ContinualTrainer(tmp_path, config, _config(), load=loader)
    r1 = trainer.round(data, held)
    assert r1.promoted and r1.wins is None and r1.candidate_mAP == 0.0, "nothing served before"
    r2 = trainer.round(data, held)
    assert r2.promoted and r2.wins == 1.0 and r2.candidate_mAP > r2.serving_mAP
    r3 = trainer.round(data, held)
    assert not r3.promoted and r3.wins == 0.0
    present = {int(c) for _, o in held for c in o.labels}
    # per class, where proposals on open leave the least work: all of the right ones; none of nothing
    assert r2.thresholds == [1.0 if c in present else None for c in range(len(data.classes))]
    assert r3.thresholds == [NONE_SHOWN if c in present else None for c in range(len(data.classes))]
    assert trainer.serving == r2.path
    assert all(Path(r.path).is_file() for r in (r1, r2, r3)), "a round deletes nothing"
    assert trainer.collect({r1.path}) == [], "round 1 is named elsewhere (a version row): kept"
    relative = (
        Path(r1.path).resolve().relative_to(Path.cwd().resolve(), walk_up=True)
        if hasattr(Path, "walk_up")
        else Path(os.path.relpath(r1.path))
    )
    assert trainer.collect({str(relative)}) == [], "named by a relative path (serve --data DIR): kept"
    assert trainer.collect() == [Path(r1.path).parent], "named by nothing: collected"
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir() if p.is_dir()) == ["round2", "round3"]


def test_a_round_cut_short_leaves_its_folder_to_collect_and_an_empty_set_is_refused(data, tmp_path):
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config())
    (tmp_path / "round1-killed").mkdir()  # a round whose process was killed mid-write
    (tmp_path / "round1-killed" / "last.pt").write_bytes(b"half a checkpoint")
    done = trainer.round(data, [])
    assert done.number == 1 and load_detector(done.path)[0] is not None
    assert Path(done.path).parent.name != "round1-killed", "a new round never writes into an old folder"
    assert trainer.collect() == [tmp_path / "round1-killed"]
    with pytest.raises(ValueError, match="no finished image"):
        trainer.round(type(data)(data.classes, []), [])


def test_a_round_that_cannot_write_its_checkpoint_is_dropped_and_touches_nothing(data, tmp_path, monkeypatch):
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path / "work", config, _config())
    served = trainer.round(data, [])
    before = (tmp_path / "work" / "state.json").read_text(), Path(served.path).read_bytes()
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "enospc").touch()
    monkeypatch.setenv("FEWCLICK_FAULTS", str(faults))
    with pytest.raises(OSError, match="No space left on device"):
        trainer.round(data, [])
    assert [p.name for p in (tmp_path / "work").iterdir() if p.is_dir()] == [Path(served.path).parent.name]
    assert ((tmp_path / "work" / "state.json").read_text(), Path(served.path).read_bytes()) == before
    assert len(ContinualTrainer(tmp_path / "work", config, _config()).state.rounds) == 1


def test_a_torn_checkpoint_is_passed_over_as_warm_start_and_beaten_as_the_serving_one(data, tmp_path):
    held = _held(data, 3)
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config(), load=lambda path: _Known(held, False))
    first = trainer.round(data, held)
    second = trainer.round(data, held)
    assert first.promoted and not second.promoted, "scored against nothing, then a tie"
    data_bytes = Path(second.path).read_bytes()
    Path(second.path).write_bytes(data_bytes[: len(data_bytes) // 2])  # the newest round, torn
    assert trainer._warm_start() == first.path
    Path(first.path).write_bytes(b"")  # and the serving one
    assert trainer._warm_start() is None, "nothing readable: the config's own weights"

    def loader(path):
        load_detector(path)  # raises for the torn serving file, as the app's loader does
        return _Known(held, False)

    trainer.load = loader
    third = trainer.round(data, held)
    assert third.promoted and third.wins is None and "could not be read" in third.note
    assert trainer.serving == third.path


def test_a_torn_state_file_starts_the_trainer_afresh(data, tmp_path):
    (tmp_path / "state.json").write_text('{"rounds": [{"number": 1,')
    trainer = ContinualTrainer(tmp_path, detector_config_for(data, "c3det"), _config())
    assert trainer.state.rounds == [] and trainer.serving is None
