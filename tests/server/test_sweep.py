"""The sweep of a large image in the worker (:mod:`fewclick.server.worker_sweep`), in this
process: a trained detector's proposals, window by window, each kept by the one window whose
core holds it; a new sweep stops the last; a failure is said, not raised."""

import time

import numpy as np
import pytest
import tifffile

from fewclick.server import worker_sweep

WIDTH, HEIGHT = 2600, 900


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(3)
    pixels = rng.integers(30, 60, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for k in range(12):
        x, y = 100 + 210 * k, 200 + 40 * (k % 5)
        pixels[y : y + 24, x : x + 24] = (220, 210, 90)
    path = root / "scene.tif"
    tifffile.imwrite(path, pixels, tile=(256, 256), photometric="rgb")
    return root, path


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A tiny detector from scratch made sure of objects everywhere (its heatmap's weights
    zero, its prior raised) and of no class's size range (none kept): proposals in every
    window, whatever the pixels."""
    import torch

    from fewclick.data.synthetic import make_dataset
    from fewclick.io import read_dataset
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    root = tmp_path_factory.mktemp("sweep-model")
    make_dataset("aerial", 2, seed=5, width=96, height=96, out_dir=root / "aerial")
    data = read_dataset(root / "aerial" / "annotations.json")
    path = train_detector(
        data, root, detector_config_for(data, "c3det"), TrainConfig(steps=1, crop=64), log=str
    )
    ckpt = torch.load(path, weights_only=False)
    bias = next(k for k in ckpt["model"] if k.endswith("heatmap.bias"))
    ckpt["model"][bias] = torch.full_like(ckpt["model"][bias], 2.0)
    weight = bias.replace(".bias", ".weight")
    ckpt["model"][weight] = torch.zeros_like(ckpt["model"][weight])
    ckpt["sizes"] = {}
    sure = root / "sure.pt"
    torch.save(ckpt, sure)
    return sure, list(data.classes)


def _until_ended(key: str, seconds: float = 300) -> dict:
    end = time.monotonic() + seconds
    while (found := worker_sweep.sweep_status(key))["status"] == "running" and time.monotonic() < end:
        time.sleep(0.2)
    return found


def test_a_trained_detectors_sweep_gives_its_proposals_of_every_window_each_once(
    scene, detector, sam_files, tmp_path
):
    from fewclick.io.regions import load_pixels, window_path
    from fewclick.io.tiling import Tile, owned
    from fewclick.predict.detect import ClickDetector
    from fewclick.predict.windows import sweep_cores
    from fewclick.types import Detections

    _, path = scene
    model, names = detector
    large = (str(path), "scene-1", WIDTH, HEIGHT)
    encoding = (str(tmp_path / "embeddings"), "scene-1")
    first = worker_sweep.start_sweep(large, str(model), names, [], {}, encoding, None, None, None)
    assert first["windows"] == 3 and first["status"] == "running"
    found = _until_ended("scene-1")
    assert found["status"] == "done" and found["windows_done"] == 3, found
    assert found["method"] == "scratch"
    # what the detector finds on each window, each kept by the window whose core holds it
    own = ClickDetector.load(model)
    per_window = []
    for window, core in sweep_cores(WIDTH, HEIGHT).items():
        own.set_image(load_pixels(window_path(path, window)))
        per_window.append(owned(own.predict(), Tile(*window), core))
    want = Detections.concatenate(per_window)
    assert len(want) > 0
    got = np.asarray(found["boxes"]).reshape(-1, 4)
    assert len(got) == len(want)
    np.testing.assert_allclose(
        np.sort(got, 0), np.sort(want.boxes, 0), atol=0.01
    )  # the wire rounds to 0.01 px
    assert worker_sweep.sweep_status("another image") is None


def test_a_new_sweep_stops_the_last_and_a_failure_is_said(scene, detector, sam_files, tmp_path):
    _, path = scene
    model, names = detector
    encoding = (str(tmp_path / "embeddings"), "scene-2")
    worker_sweep.start_sweep(
        (str(path), "scene-2", WIDTH, HEIGHT), str(model), names, [], {}, encoding, None, None, None
    )
    last = worker_sweep._SWEEP
    # another image's sweep: the detector knows other classes, so it fails, saying why
    other = ("elsewhere", "scene-3", WIDTH, HEIGHT)
    worker_sweep.start_sweep(
        other, str(model), ["no such class"], [], {}, (encoding[0], "scene-3"), None, None, None
    )
    assert last.stop.is_set(), "the last sweep is told to stop"
    failed = _until_ended("scene-3")
    assert failed["status"] == "failed" and "other classes" in failed["message"], failed
    assert _until_ended_sweep(last) in ("stopped", "done")


def _until_ended_sweep(sweep, seconds: float = 120) -> str:
    end = time.monotonic() + seconds
    while sweep.status == "running" and time.monotonic() < end:
        time.sleep(0.2)
    return sweep.status


def test_the_status_joins_windows_whatever_optional_fields_their_answers_carry():
    """A detector's empty answer has no box centres where its others have them: the boxes
    found so far are still answered (a 400 on every look stopped the page following it)."""
    from fewclick.types import Detections

    sweep = worker_sweep.Sweep("scene-4", "asked", 3, WIDTH, HEIGHT)
    boxes = np.float32([[10, 10, 30, 30], [50, 50, 70, 70]])
    with_points = Detections(boxes, np.float32([0.9, 0.5]), np.int64([0, 1]), points=boxes[:, :2] + 10)
    sweep.found += [Detections.empty(), with_points, Detections(boxes[:1], np.float32([0.7]), np.int64([0]))]
    out = worker_sweep._status(sweep)
    assert out["scores"] == pytest.approx([0.9, 0.7, 0.5]), "every window's boxes, best first"
