"""The model worker: a worker process that dies is replaced, and the request that found it
dead gets a clear 503 instead of hanging or a 500; it ends when the server closes it, busy or
not, and by itself once the server is gone. A click a trained detector leaves unboxed gets
SAM's box from the training-free start."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks._server import alive
from fastapi import HTTPException

from fewclick.server import worker, worker_detect
from fewclick.server.deps import WorkerHandle
from fewclick.server.worker import ModelWorker
from fewclick.types import Clicks, Detections


def test_a_dead_worker_answers_503_and_the_next_request_gets_a_new_one():
    handle = WorkerHandle()
    try:
        with pytest.raises(HTTPException) as err:
            asyncio.run(handle.run(os._exit, 3))
        assert err.value.status_code == 503 and "restarted" in err.value.detail
        assert asyncio.run(handle.run(abs, -7)) == 7
    finally:
        handle.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_closing_the_worker_stops_its_process_even_while_it_works():
    model_worker = ModelWorker()
    pid = model_worker.submit(os.getpid).result(timeout=120)
    model_worker.submit(time.sleep, 120)
    model_worker.close()
    assert not alive(pid), "the busy worker outlived close()"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_the_whole_group_lets_the_worker_answer_its_request(stop):
    """SIGTERM to the server's process group (the soak's restart, a service manager) reached
    the worker too: its requests in flight failed with 503. It now goes on while the server
    lives, and ends when the server closes it."""
    model_worker = ModelWorker()
    try:
        pid = model_worker.submit(os.getpid).result(timeout=120)
        busy = model_worker.submit(time.sleep, 1.0)
        os.kill(pid, stop)
        assert busy.result(timeout=60) is None and model_worker.submit(abs, -3).result(timeout=60) == 3
    finally:
        model_worker.close()
    assert not alive(pid)


def test_a_process_whose_parent_is_gone_exits():
    """``watch_parent`` of a pid that is not the parent: the parent is "gone" at once, and the
    process ends by SIGTERM (its default: exit) long before its 60 s of sleep."""
    code = (
        "import time\n"
        "from fewclick.server.processes import watch_parent\n"
        "watch_parent(-1, every=0.05)\n"
        "time.sleep(60)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=50, capture_output=True)
    assert done.returncode == -signal.SIGTERM, done.stderr


def test_a_click_the_detector_left_unboxed_gets_sams_box_from_the_training_free_start(monkeypatch):
    asked = []

    class Similar:  # the training-free start, as the worker keeps it per embedding folder
        def clicked_box(self, x, y, label, sizes):
            asked.append((float(x), float(y), int(label), sizes))
            return np.array([x - 4, y - 4, x + 4, y + 4], np.float32)

    monkeypatch.setattr(worker, "encoded", lambda key, make, path, encoding: Similar())
    det = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32), np.array([0]))
    clicks = Clicks(np.array([[5, 5], [30, 30]], np.float32), np.array([0, 1]), np.ones(2, bool))
    out = worker_detect._own_boxes(det, clicks, "im.png", ("cache", "key"), 2, {1: 8.0})
    assert asked == [(30.0, 30.0, 1, {1: 8.0})], "only the click without a box of its class around it"
    assert out.boxes.tolist() == [[0, 0, 10, 10], [26, 26, 34, 34]]
    assert out.scores.tolist() == pytest.approx([0.9, 1])


@pytest.mark.parametrize("making", [True, False])
def test_a_click_while_the_proposals_are_made_gets_its_own_box_alone(monkeypatch, making):
    """Issue 67: before the image's proposals exist, a click is answered with SAM's box of the
    clicked object and nothing else (no squares of its size where features look alike);
    feature similarity answers only when no proposals are coming."""
    from fewclick.predict.similar import SimilarityDetector
    from fewclick.server import worker_proposals

    class Similar:
        method = "training-free"
        clicked_boxes = SimilarityDetector.clicked_boxes  # over the clicked_box below

        def clicked_box(self, x, y, label, sizes):
            return np.array([x - 4, y - 4, x + 4, y + 4], np.float32)

        def predict(self, clicks, sizes, limit):  # its look-alikes: squares of the click's size
            boxes = np.array([[0, 0, 8, 8], [20, 20, 28, 28], [40, 40, 48, 48]], np.float32)
            return Detections(boxes, np.array([1, 0.95, 0.92], np.float32), np.array([0, 0, 0]))

    monkeypatch.setattr(worker, "encoded", lambda key, make, path, encoding: Similar())
    monkeypatch.setattr(worker_proposals, "making", lambda folder, key: making)
    monkeypatch.setattr(worker_proposals, "ready", lambda folder, key: None)
    out = worker_detect.detect("im.png", None, ["a"], [[30, 30, 0]], {}, ("cache", "key"))
    if making:
        assert out["boxes"] == [[26, 26, 34, 34]] and out["scores"] == [1.0], "the clicked object alone"
        assert out["proposals"] == {"state": "making"}, "the page asks again once they are made"
    else:
        assert len(out["boxes"]) == 3 and out["proposals"] is None


def test_own_boxes_move_by_the_edge_offsets_learnt(monkeypatch):
    from fewclick.predict.own_box import EdgeOffsets

    class Similar:
        def clicked_box(self, x, y, label, sizes):
            return np.array([x - 4, y - 4, x + 4, y + 4], np.float32)

    monkeypatch.setattr(worker, "encoded", lambda key, make, path, encoding: Similar())
    offsets = EdgeOffsets({1: np.array([0, -0.25, 0, 0], np.float32)})
    clicks = Clicks(np.array([[30, 30]], np.float32), np.array([1]), np.ones(1, bool))
    out = worker_detect._own_boxes(Detections.empty(), clicks, "im.png", ("cache", "key"), 2, {}, offsets)
    assert out.boxes.tolist() == [[26, 24, 34, 34]], "the top edge 2 px (a quarter of 8) higher"


def test_click_boxes_are_learnt_on_encoded_finished_images_only_and_fit_the_offsets(monkeypatch, tmp_path):
    """SAM (faked) boxes every object 2 px inside the person's box: the offsets fitted on the
    pairs learnt bring a new SAM box back out by as much; an image never encoded is not
    encoded for it and teaches nothing, nor does an image of several tiles."""
    from collections import OrderedDict

    from PIL import Image

    from fewclick.predict import similar
    from fewclick.server import embeddings

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    Image.new("RGB", (1300, 64)).save(tmp_path / "wide.png")  # two tiles: encoded apart, under other keys
    monkeypatch.setattr(worker_detect, "_CLICK_BOXES", OrderedDict())
    asked = []

    class Encoder:
        def cached(self, key):
            return object() if key.startswith("encoded") else None

    class Fitter:
        def __init__(self, num_classes, encoder):
            self.boxes = {}

        def set_image(self, image, key):
            asked.append(key)

        def clicked_box(self, x, y, label, sizes):
            return np.array([x - 8, y - 8, x + 8, y + 8], np.float32)

    monkeypatch.setattr(embeddings, "encoder", lambda folder: Encoder())
    monkeypatch.setattr(similar, "SimilarityDetector", Fitter)
    boxes = [[1, 10, 10, 30, 30], [1, 30, 30, 50, 50], [1, 5, 40, 25, 60]]  # 20 px boxes: SAM's are 16
    finished = [
        ["encoded", str(tmp_path / "a.png"), boxes],
        ["not-encoded", str(tmp_path / "a.png"), boxes],
        ["encoded-wide", str(tmp_path / "wide.png"), boxes],
    ]
    assert worker_detect._offsets(finished) is None, "nothing learnt yet: nothing moves"
    worker_detect.learn_click_boxes("cache", 2, {}, finished)
    embeddings.background(int).result(timeout=60)  # the encoding thread's work before it is done
    assert asked == ["encoded"]
    offsets = worker_detect._offsets(finished)
    assert offsets.per_class[1] == pytest.approx([-0.125, -0.125, 0.125, 0.125])  # 2 px of SAM's 16
    assert offsets.apply(np.array([[0, 0, 16, 16]], np.float32), [1]).tolist() == [[-2, -2, 18, 18]]
    worker_detect.learn_click_boxes("cache", 2, {}, finished)
    embeddings.background(int).result(timeout=60)  # the encoding thread's work before it is done
    assert asked == ["encoded"], "pairs learnt once are not learnt again"


def test_work_asked_for_later_runs_in_the_worker_and_a_failure_of_it_harms_no_request(tmp_path):
    handle = WorkerHandle()
    try:
        handle.later(os.mkdir, str(tmp_path / "made"))
        handle.later(os.mkdir, str(tmp_path / "made"))  # FileExistsError: logged, nothing else
        assert asyncio.run(handle.run(os.path.isdir, str(tmp_path / "made")))
        assert asyncio.run(handle.run(abs, -7)) == 7
    finally:
        handle.close()


@pytest.mark.parametrize(
    "method, waits_for_sam", [("imagenet", False), ("scratch", False), ("pretrained", True)]
)
def test_only_a_detector_on_sams_features_waits_for_the_images_embedding(monkeypatch, method, waits_for_sam):
    """The proposals on open of an ImageNet or scratch detector need no SAM embedding: the
    worker sets its image without waiting for one (SAM may still be encoding it)."""
    given = []

    class Detector:
        classes = ["a"]

        def __init__(self):
            self.method = method

        def predict(self, clicks):
            return Detections.empty()

    monkeypatch.setattr(worker, "PREDICTORS", {("detect", "m.pt"): Detector()})

    def encoded(key, make, path, encoding):
        given.append(encoding)
        return worker.PREDICTORS[key]

    monkeypatch.setattr(worker, "encoded", encoded)
    out = worker_detect.detect("im.png", "m.pt", ["a"], [], {}, ("cache", "key"))
    assert out["method"] == method and out["boxes"] == []
    assert given == [("cache", "key") if waits_for_sam else None]


def test_a_click_on_a_trained_detector_s_image_keeps_the_boxes_it_opened_with(monkeypatch):
    """Issue 67: the detector's answer with clicks comes with its answer without them (made
    once an image), and the route keeps the boxes the page showed on open: a class clicked
    shows from the slider's start, so its opening boxes are read on that scale."""
    from types import SimpleNamespace

    from fewclick.server import assisting
    from fewclick.wire.codec import ClassMap

    asked = []

    class Detector:
        classes, method = ["a", "b"], "imagenet"

        def predict(self, clicks):
            asked.append(len(clicks))
            if not len(clicks):  # on open: an "a" at 0.4 (its own score 0.35) and a "b" at 0.6
                return Detections(
                    np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32),
                    np.array([0.4, 0.6], np.float32),
                    np.array([0, 1]),
                )
            return Detections(np.array([[40, 0, 50, 10]], np.float32), np.ones(1, np.float32), np.array([0]))

    monkeypatch.setattr(worker, "PREDICTORS", {("detect", "m.pt"): Detector()})
    monkeypatch.setattr(worker, "encoded", lambda key, make, path, encoding: worker.PREDICTORS[key])
    monkeypatch.setattr(worker_detect, "_OPENED", worker_detect.OrderedDict())
    for _ in range(2):
        out = worker_detect.detect("im.png", "m.pt", ["a", "b"], [[45, 5, 0]], {}, None)
    assert asked == [1, 0, 1], "the answer without clicks is made once for the image"
    assert out["opened"]["boxes"] == [[0, 0, 10, 10], [20, 0, 30, 10]]

    version = SimpleNamespace(
        path="m.pt", version=3, method="imagenet", project_id=1,
        metrics={"score_threshold": 0.5, "score_thresholds": [0.35, 0.55]},
    )  # fmt: skip
    classes = ClassMap([SimpleNamespace(id=7, position=0), SimpleNamespace(id=9, position=1)])
    call = assisting.DetectCall(
        args=("im.png", "m.pt", ["a", "b"], [[45, 5, 0]]), classes=classes, names=["a", "b"],
        version=version, model=version, limit=None, ready_for_clicks=None,
    )  # fmt: skip
    answer = assisting.detect_answer(call, {**out, "classes": ["a", "b"]})
    shown = {
        tuple(b): s for b, s, c in zip(answer["boxes"], answer["scores"], answer["labels"])
        if s >= (0.5 if c == 7 else answer["min_scores"][9])
    }  # fmt: skip
    assert set(shown) == {(40, 0, 50, 10), (0, 0, 10, 10), (20, 0, 30, 10)}, "the click added, nothing went"
    assert shown[(0, 0, 10, 10)] == pytest.approx(0.4 * 0.5 / 0.35, abs=1e-3), "read on the slider's scale"


def test_ready_for_clicks_sets_the_training_free_start_on_the_image(monkeypatch):
    given = []
    monkeypatch.setattr(
        worker, "encoded", lambda key, make, path, encoding: given.append((key, path, encoding))
    )
    worker_detect.ready_for_clicks("im.png", ("cache", "key"), 3)
    assert given == [(("similar", "cache", 3), "im.png", ("cache", "key"))]


def test_proposals_of_a_tight_class_are_made_tight_once_the_embedding_is_ready(monkeypatch):
    from collections import OrderedDict

    from fewclick.server import embeddings

    asked = []
    ready = [False]

    class Encoder:
        def cached(self, key):
            return object() if ready[0] else None

    class Similar:
        def tight_box(self, box):
            asked.append(np.asarray(box).tolist())
            return np.asarray(box, np.float32) + [1, 1, -1, -1]

    monkeypatch.setattr(embeddings, "encoder", lambda folder: Encoder())
    monkeypatch.setattr(worker_detect, "_similar", lambda path, encoding, num_classes: Similar())
    monkeypatch.setattr(worker_detect, "_TIGHTENED", OrderedDict())
    det = Detections(
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32),
        np.array([0.9, 0.1, 0.8], np.float32),
        np.array([0, 0, 1]),
    )
    same = worker_detect._tightened(det, "im.png", ("cache", "key"), 2, {0}, 0.3)
    assert same.boxes.tolist() == det.boxes.tolist() and asked == [], "no embedding yet: never waited for"
    ready[0] = True
    out = worker_detect._tightened(det, "im.png", ("cache", "key"), 2, {0}, 0.3)
    # class 0 at 0.3 or more: the first only (the second under the score, the third of class 1)
    assert out.boxes.tolist() == [[1, 1, 9, 9], [20, 20, 30, 30], [40, 40, 50, 50]]
    assert out.scores.tolist() == pytest.approx([0.9, 0.1, 0.8]) and out.labels.tolist() == [0, 0, 1]
    worker_detect._tightened(det, "im.png", ("cache", "key"), 2, {0}, 0.3)
    assert asked == [[0, 0, 10, 10]], "a proposal is made tight once per image"


def test_tight_classes_are_learnt_on_encoded_held_out_images(monkeypatch, tmp_path):
    """The detector (faked) proposes each object's box 6 px too tall (IoU 0.62); SAM (faked)
    makes it exact for the objects of class 0 (the top row), 6 px too wide for those of class 1:
    class 0 is made tight, class 1 is not."""
    from collections import OrderedDict

    from PIL import Image

    from fewclick.predict import detect, similar
    from fewclick.server import embeddings

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    monkeypatch.setattr(worker_detect, "_TIGHT", OrderedDict())
    boxes = [[c, x, 10 + 30 * c, x + 10, 20 + 30 * c] for c in (0, 1) for x in (0, 15, 30)]
    seen = []

    class Encoder:
        def cached(self, key):
            return object() if key.startswith("encoded") else None

    class Detector:
        classes = ["a", "b"]

        @classmethod
        def load(cls, path, encoder=None):
            return cls()

        def set_image(self, image, key):
            seen.append(key)

        def predict(self, clicks=None):
            b = np.array([x[1:] for x in boxes], np.float32) + [0, 0, 0, 6]
            return Detections(b, np.full(len(b), 0.9, np.float32), np.array([x[0] for x in boxes]))

    class Fitter:
        def __init__(self, num_classes, encoder):
            pass

        def set_image(self, image, key):
            pass

        def tight_box(self, box):
            x0, y0, x1, y1 = box
            return np.array([x0, y0, x1, y1 - 6] if y0 < 30 else [x0, y0, x1 + 6, y1], np.float32)

    monkeypatch.setattr(embeddings, "encoder", lambda folder: Encoder())
    monkeypatch.setattr(detect, "ClickDetector", Detector)
    monkeypatch.setattr(similar, "SimilarityDetector", Fitter)
    held = [["encoded", str(tmp_path / "a.png"), boxes], ["not-encoded", str(tmp_path / "a.png"), boxes]]
    assert worker_detect._tight_classes("m.pt", ["encoded", "not-encoded"]) == set(), "nothing learnt yet"
    worker_detect.learn_tight_boxes("cache", "m.pt", 2, held)
    embeddings.background(int).result(timeout=60)  # the encoding thread's work before it is done
    assert seen == ["encoded"], "an image not encoded is not encoded for it"
    assert worker_detect._tight_classes("m.pt", ["encoded", "not-encoded"]) == {0}
    assert worker_detect._tight_classes("other.pt", ["encoded"]) == set(), "learnt per detector"


@pytest.mark.parametrize(
    "said, gb", [(None, 16.0), ("2.5", 2.5), ("0", None), ("lots", None), ("inf", None), ("nan", None)]
)
def test_the_embeddings_disk_budget_comes_from_the_environment(said, gb, monkeypatch):
    from fewclick.server import embeddings

    if said is None:
        monkeypatch.delenv(embeddings.DISK_ENV, raising=False)
    else:
        monkeypatch.setenv(embeddings.DISK_ENV, said)
    if gb is None:
        with pytest.raises(ValueError, match=f"{embeddings.DISK_ENV}='{said}': expected"):
            embeddings.disk_gb()
    else:
        assert embeddings.disk_gb() == gb
