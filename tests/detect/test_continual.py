"""The trainer that keeps learning (issue 32, part 2): rounds warm-started from the round
before, each scored on the images finished while it trained (test, then train: issue 68),
promoted when it saves more than what serves beyond the noise, its state surviving a restart.

The promotion tests score "models" whose answers are known (the reference boxes, or
nothing), so what is promoted does not depend on what a short run learned on this CPU.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fewclick.active.continual import ContinualConfig, ContinualTrainer, Fresh, held_out
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


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """Images that share a class (class 2 on each): a class's savings pair up image by image."""
    return make_dataset("cells", 4, seed=2, width=96, height=96, out_dir=tmp_path_factory.mktemp("cells"))


def _fresh(data, first_id: int, n: int = 3) -> list[Fresh]:
    """``n`` finished images no round trained on (the dataset's, under ids of their own)."""
    return [Fresh(first_id + k, load_image(r.path), r.objects) for k, r in enumerate(data.images[:n])]


class _Known:
    """A predictor that answers every image with the reference boxes (``right``) or nothing."""

    def __init__(self, data, right: bool) -> None:
        self.answers = {r.path: r.objects for r in data.images}
        self.right, self.image = right, None

    def set_image(self, image) -> None:
        self.image = image

    def predict(self, clicks) -> Detections:
        if not self.right:
            return Detections.empty()
        objects = next(o for p, o in self.answers.items() if np.array_equal(load_image(p), self.image))
        return Detections(objects.boxes, np.ones(len(objects), np.float32), objects.labels)


def _config(**kw):
    return ContinualConfig(round_steps=2, crop=64, batch_size=2, **kw)


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
    assert not first.promoted and first.scored == [], "unscored: it never serves, not even first"
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


def test_a_round_serves_once_it_saved_work_on_images_it_never_saw_beyond_the_noise(cells, tmp_path):
    config = detector_config_for(cells, "c3det")
    right = ContinualTrainer(tmp_path / "right", config, _config(), load=lambda path: _Known(cells, True))
    two = right.round(cells, _fresh(cells, 100, 2))
    # the first image opens with nothing (no image before chose a threshold): one saving is no evidence
    assert not two.promoted and two.scored == [100, 101] and right.serving is None
    three = right.round(cells, _fresh(cells, 200, 3))
    assert three.promoted and right.serving == three.path and three.saved["trainer"] > 0
    assert 2 in three.serves and "more than showing nothing" in three.note
    # the classes it serves open from the score that saved most; the others show nothing
    assert three.thresholds == [1.0 if c in three.serves else NONE_SHOWN for c in range(3)]
    nothing = ContinualTrainer(
        tmp_path / "nothing", config, _config(), load=lambda path: _Known(cells, False)
    )
    for first in (100, 200):
        r = nothing.round(cells, _fresh(cells, first, 3))
        assert not r.promoted and r.saved["trainer"] == 0.0 and nothing.serving is None
    assert r.thresholds == [NONE_SHOWN] * 3


def test_an_image_is_scored_only_while_no_round_trained_on_it(data, tmp_path):
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config(), load=lambda path: _Known(data, True))
    for k, r in enumerate(data.images):
        r.id = 10 + k
    try:
        done = trainer.round(data, lambda seen: [f for f in _fresh(data, 10, 4) if f.image_id not in seen])
        assert done.trained == [10, 11, 12, 13] and done.scored == [], (
            "everything finished trains: none held out"
        )
        again = trainer.round(data, _fresh(data, 10, 4) + _fresh(data, 50, 1))
        assert again.scored == [50], "images a round trained on are never scored again"
    finally:
        for r in data.images:
            r.id = None


def test_the_look_alikes_keep_serving_where_they_save_more_than_the_trainer(cells, tmp_path):
    config = detector_config_for(cells, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config(), load=lambda path: _Known(cells, False))

    def look_alikes(fresh):
        return {
            "look-alikes": [
                Detections(f.objects.boxes, np.ones(len(f.objects), np.float32), f.objects.labels)
                for f in fresh
            ]
        }

    done = trainer.round(cells, _fresh(cells, 100, 3), look_alikes)
    assert not done.promoted and done.saved["look-alikes"] > done.saved["trainer"] == 0.0
    record = trainer.record()
    assert set(record.serving.values()) == {"look-alikes"}
    assert ContinualTrainer(tmp_path, config, _config()).record().serving == record.serving, (
        "kept in state.json"
    )


def test_a_round_is_registered_when_a_source_it_does_not_make_serves_a_class(cells, tmp_path):
    """Issue 68: the fast learner serves a class (it saves the most there) while the trainer
    serves none: the round is promoted all the same, since its version is what tells the app
    which source serves each class; the learner's classes show from the score that saved
    most, the trainer's own boxes from none."""
    config = detector_config_for(cells, "c3det")
    trainer = ContinualTrainer(
        tmp_path, config, _config(), load=lambda path: _Known(cells, False), versioned=("learner",)
    )

    def learner(fresh):
        return {
            "learner": [
                Detections(f.objects.boxes, np.full(len(f.objects), 0.8, np.float32), f.objects.labels)
                for f in fresh
            ]
        }

    done = trainer.round(cells, _fresh(cells, 100, 3), learner)
    assert done.promoted and done.serves == [], "the trainer serves no class, the learner does"
    served = trainer.record().serving
    assert served and set(served.values()) == {"learner"}
    assert all(t == NONE_SHOWN for t in done.thresholds), "the trainer's boxes show nowhere"
    cuts = trainer.source_thresholds("learner", sorted(served))
    assert list(cuts) == sorted(served) and np.allclose(list(cuts.values()), 0.8), cuts
    again = trainer.round(cells, _fresh(cells, 200, 3), learner)
    assert again.promoted, "the app did not register the first (it failed, or stopped): the next one is"
    trainer.registered()
    third = trainer.round(cells, _fresh(cells, 300, 3), learner)
    assert third.promoted and trainer.record().serves(0) == "learner", "class 0's second pair: a new source"
    trainer.registered()
    same = trainer.round(cells, _fresh(cells, 400, 3), learner)
    assert not same.promoted, "the sources are those the registered version names: nothing to register"
    plain = ContinualTrainer(tmp_path / "plain", config, _config(), load=lambda path: _Known(cells, False))
    assert not plain.round(cells, _fresh(cells, 100, 3), learner).promoted, (
        "a source not named versioned serves without a version (the look-alikes)"
    )


def test_a_candidate_is_promoted_only_when_it_wins_beyond_the_noise(cells, tmp_path):
    config = detector_config_for(cells, "c3det")
    better = {"round1": False, "round2": True, "round3": True}  # round 2 on is right

    def loader(path):
        return _Known(cells, better[Path(path).parent.name.split("-")[0]])

    trainer = ContinualTrainer(tmp_path, config, _config(), load=loader)
    r1 = trainer.round(cells, _fresh(cells, 100))
    assert not r1.promoted
    r2 = trainer.round(cells, _fresh(cells, 200, 4))
    assert r2.promoted and trainer.serving == r2.path
    r3 = trainer.round(cells, [])
    assert not r3.promoted and trainer.serving == r2.path, "nothing new scored: what serves stays"
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


def test_a_torn_checkpoint_is_passed_over_as_warm_start(data, tmp_path):
    config = detector_config_for(data, "c3det")
    trainer = ContinualTrainer(tmp_path, config, _config(), load=lambda path: _Known(data, False))
    first = trainer.round(data, [])
    second = trainer.round(data, [])
    data_bytes = Path(second.path).read_bytes()
    Path(second.path).write_bytes(data_bytes[: len(data_bytes) // 2])  # the newest round, torn
    assert trainer._warm_start() == first.path
    Path(first.path).write_bytes(b"")
    assert trainer._warm_start() is None, "nothing readable: the config's own weights"


def test_a_torn_state_file_starts_the_trainer_afresh(data, tmp_path):
    (tmp_path / "state.json").write_text('{"rounds": [{"number": 1,')
    trainer = ContinualTrainer(tmp_path, detector_config_for(data, "c3det"), _config())
    assert trainer.state.rounds == [] and trainer.serving is None


def test_a_state_written_before_test_then_train_keeps_its_rounds(data, tmp_path):
    old = {
        "rounds": [
            {"number": 1, "train_images": 6, "held_out_images": 2, "steps": 200, "candidate_mAP": 0.4,
             "serving_mAP": None, "wins": None, "promoted": True, "path": "round1-x/last.pt",
             "thresholds": None, "note": None, "held_out_objects": 30}
        ],
        "serving": "round1-x/last.pt", "serving_round": 1, "total_steps": 200, "start": None,
    }  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(old))
    trainer = ContinualTrainer(tmp_path, detector_config_for(data, "c3det"), _config())
    (kept,) = trainer.state.rounds
    assert (kept.number, kept.promoted, kept.path, kept.scored) == (1, True, "round1-x/last.pt", [])
    assert trainer.serving == "round1-x/last.pt" and trainer.record().serving == {}
