"""Batch jobs: ``fewclick encode`` in this process and on a local Ray with 2 workers write
the same embeddings; bad input (no Ray at an address, a broken image) is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewclick.batch import BatchError, embedding_path, encode_dataset
from fewclick.cli import main
from fewclick.data.synthetic import make_dataset
from fewclick.io import read_dataset
from fewclick.models.cpr import CPRNet, CPRNetConfig, save_cprnet
from fewclick.predict.pretrained import default_model_files


def _encoder_or_skip() -> None:
    try:
        default_model_files()
    except (FileNotFoundError, ValueError) as exc:
        pytest.skip(f"the pretrained encoder is not fetched here ({exc}); `make models` fetches it")


IMAGES = 6  # enough for two workers to share; each image is SAM-encoded twice per test


@pytest.fixture(scope="module")
def several(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("several")
    make_dataset("cells", IMAGES, seed=11, width=96, height=80, out_dir=root)
    return root / "annotations.json"


@pytest.mark.slow
def test_in_process_and_two_ray_workers_write_identical_embeddings(several, tmp_path, capsys):
    _encoder_or_skip()
    pytest.importorskip("ray")
    assert main(["encode", "--data", str(several), "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        main(["encode", "--data", str(several), "--out", str(tmp_path / "ray"), "--ray", "--workers", "2"])
        == 0
    )
    on_ray = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert local["images"] == on_ray["images"] == IMAGES
    assert (local["runner"], on_ray["runner"], on_ray["workers"]) == ("in-process", "ray (local)", 2)
    for rec in read_dataset(several).images:
        a = np.load(embedding_path(tmp_path / "local", rec.file_name))
        b = np.load(embedding_path(tmp_path / "ray", rec.file_name))
        assert a.shape == (1, 256, 64, 64) and a.dtype == np.float32
        assert np.abs(a - b).max() <= 1e-5, rec.file_name
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["images_per_second"] > 0


def test_a_ray_address_that_does_not_answer_is_named_and_nothing_is_written(several, tmp_path):
    _encoder_or_skip()
    pytest.importorskip("ray")
    with pytest.raises(BatchError, match=r"no Ray cluster answers at 127.0.0.1:9"):
        encode_dataset(read_dataset(several), tmp_path / "out", ray="127.0.0.1:9", workers=2)
    assert not any((tmp_path / "out").rglob("*.npy"))


def test_a_broken_image_is_named_and_the_others_are_written(tmp_path):
    _encoder_or_skip()
    make_dataset("cells", 2, seed=2, width=64, height=64, out_dir=tmp_path / "d")
    data = read_dataset(tmp_path / "d" / "annotations.json")
    broken = data.images[1]
    Path(broken.path).write_bytes(Image.new("RGB", (4, 4)).tobytes()[:10])  # not an image any more
    with pytest.raises(BatchError, match=rf"image {broken.file_name!r}: .*1 image\(s\) failed"):
        encode_dataset(data, tmp_path / "out")
    assert embedding_path(tmp_path / "out", data.images[0].file_name).is_file()
    assert not embedding_path(tmp_path / "out", broken.file_name).exists()
    assert not (tmp_path / "out" / "summary.json").exists()


def test_workers_without_ray_are_refused(several, capsys):
    assert main(["encode", "--data", str(several), "--out", "unused", "--workers", "2"]) == 2
    assert "--workers needs --ray" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_in_process_and_on_ray_write_the_same_scored_results(tmp_path, capsys):
    pytest.importorskip("ray")
    make_dataset("aerial", 4, seed=7, width=160, height=128, out_dir=tmp_path / "d")
    data = tmp_path / "d" / "annotations.json"
    model = tmp_path / "m"
    assert (
        main(["train", "detect", "--data", str(data), "--out", str(model), "--steps", "2", "--crop", "64"])
        == 0
    )
    predict = [
        "predict",
        "--model",
        str(model),
        "--data",
        str(data),
        "--score-threshold",
        "0",
    ]  # 2 steps: keep all
    assert main([*predict, "--out", str(tmp_path / "a.json")]) == 0
    assert main([*predict, "--out", str(tmp_path / "b.json"), "--ray", "--workers", "2"]) == 0
    capsys.readouterr()
    local, on_ray = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert local and {"image_id", "category_id", "score"} <= set(local[0]) and "poly" in local[0]  # oriented
    assert [(r["image_id"], r["category_id"]) for r in local] == [
        (r["image_id"], r["category_id"]) for r in on_ray
    ]
    np.testing.assert_allclose(
        [r["poly"] + [r["score"]] for r in local], [r["poly"] + [r["score"]] for r in on_ray]
    )


def test_predict_without_a_trained_detector_names_the_folder(several, tmp_path, capsys):
    assert (
        main(["predict", "--model", str(tmp_path), "--data", str(several), "--out", str(tmp_path / "r.json")])
        == 2
    )
    assert "no trained detector here" in capsys.readouterr().err


def _class_blind_cpr(path: Path, classes: list[str], radius: int = 5) -> Path:
    """A CPRNet whose class maps are 0.5 everywhere (zero class weights and biases): its
    first class wins every argmax, so a point of that class moves to the mean of its bag
    as the image's edge and its neighbours' bags clip it. The moves follow from geometry
    alone, the same on any CPU, where a short training run moves points on some machines
    and not on others."""
    torch.manual_seed(0)
    net = CPRNet(CPRNetConfig(len(classes), widths=(8, 8, 8), blocks=(1, 1, 1), features=8, head_width=8))
    with torch.no_grad():
        net.cls.weight.zero_()
        net.cls.bias.zero_()
    return save_cprnet(path, net, classes=classes, train={"radius": radius})


@pytest.mark.slow
def test_refine_points_in_process_and_on_ray_move_the_points_alike(several, tmp_path, capsys):
    pytest.importorskip("ray")
    given = read_dataset(several)
    checkpoint = _class_blind_cpr(tmp_path / "cpr.pt", list(given.classes))
    refine = ["refine", "points", "--model", str(checkpoint), "--data", str(several)]
    assert main([*refine, "--out", str(tmp_path / "a.json")]) == 0
    assert main([*refine, "--out", str(tmp_path / "b.json"), "--ray", "--workers", "2"]) == 0
    local, on_ray = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:])
    assert (local["images"], on_ray["images"], on_ray["runner"]) == (IMAGES, IMAGES, "ray (local)")
    a, b = (read_dataset(tmp_path / f"{n}.json") for n in "ab")
    moved = 0
    for ra, rb, rg in zip(a.images, b.images, given.images, strict=True):
        assert ra.file_name == rb.file_name == rg.file_name
        np.testing.assert_allclose(ra.objects.points, rb.objects.points, atol=1e-5)
        assert len(ra.objects.points) == len(rg.objects)
        still = rg.objects.labels != 0  # the other classes never win the argmax: they stay
        np.testing.assert_array_equal(ra.objects.points[still], rg.objects.centers[still])
        moved += int((np.abs(ra.objects.points - rg.objects.centers) > 1e-3).any())
    assert moved > 0  # the model moved points: the comparison is not of untouched inputs


class _DiesOnce:
    """A job whose worker process dies (no exception: ``os._exit``) the first time it meets
    image ``c``; a marker file remembers that it did."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def __call__(self, batch: dict) -> dict:
        import os

        rows: dict[str, list] = {"rel": [], "error": [], "seconds": []}
        for rel in batch["rel"]:
            if rel == "c" and not self.marker.exists():
                self.marker.write_text("died")
                os._exit(1)
            rows["rel"].append(str(rel))
            rows["error"].append("")
            rows["seconds"].append(0.0)
        return rows


@pytest.mark.slow
def test_a_worker_that_dies_mid_job_is_restarted_and_its_image_runs_again(tmp_path):
    import sys

    from fewclick.batch import run

    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests
    items = [{"path": str(tmp_path / f"{rel}.png"), "rel": rel} for rel in "abcdef"]
    rows = run(_DiesOnce, items, {"marker": str(tmp_path / "died")}, ray="", workers=2)
    assert (tmp_path / "died").read_text() == "died"  # a worker did die on image c
    assert [r["rel"] for r in rows] == list("abcdef") and not any(r["error"] for r in rows)


def test_a_large_image_is_predicted_by_overlapping_windows_merged_once(tmp_path):
    """A 5000 x 3000 tiled TIFF is never read whole: its windows are the batch's items
    (each read alone), cover it with overlaps, and an object two windows both found is one
    box (kept by the window whose core holds its centre)."""
    import tifffile

    from fewclick.batch import (
        PREDICT_OVERLAP,
        PREDICT_WINDOW,
        _detections_text,
        _items,
        detections_of,
        merge_windows,
        window_items,
    )
    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.io.regions import load_pixels
    from fewclick.types import Detections, Objects

    pixels = np.random.default_rng(3).integers(0, 255, (3000, 5000, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "big.tif", pixels, tile=(512, 512), photometric="rgb")
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, pixels[:100, :100], photometric="rgb")
    empty = Objects(np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
    data = Dataset(["car"], [ImageRecord("big.tif", 5000, 3000, empty, tmp_path / "big.tif"),
                             ImageRecord("small.tif", 100, 100, empty, small)])  # fmt: skip
    items, windows = window_items(_items(data))
    assert list(windows) == ["big.tif"] and items[-1]["rel"] == "small.tif"
    tiles = [tile for _, tile, _ in windows["big.tif"]]
    assert len(items) == len(tiles) + 1 == 3 * 2 + 1
    covered = np.zeros((3000, 5000), bool)
    for tile in tiles:
        assert tile.width <= PREDICT_WINDOW and tile.height <= PREDICT_WINDOW
        covered[tile.y0 : tile.y1, tile.x0 : tile.x1] = True
    assert covered.all() and tiles[1].x0 == PREDICT_WINDOW - PREDICT_OVERLAP
    item = items[1]
    t = tiles[1]
    np.testing.assert_array_equal(load_pixels(item["path"]), pixels[t.y0 : t.y1, t.x0 : t.x1])
    # a car at x 1800..1830 lies in windows 0 and 1: each finds it in its own pixels
    rows = [
        {"rel": i["rel"], "detections": _detections_text(Detections.empty()), "error": "", "model": 1.0}
        for i in items
    ]
    for row, (_, tile, _) in zip(rows[:2], windows["big.tif"][:2], strict=True):
        box = np.float32([[1800 - tile.x0, 500 - tile.y0, 1830 - tile.x0, 520 - tile.y0]])
        row["detections"] = _detections_text(Detections(box, np.float32([0.9]), np.zeros(1, np.int64)))
    merged = merge_windows(rows, windows)
    assert [r["rel"] for r in merged] == ["big.tif", "small.tif"] and merged[0]["model"] == 6.0
    np.testing.assert_allclose(detections_of(merged[0]).boxes, [[1800, 500, 1830, 520]])
    rows[3]["error"] = "ImageError: cannot decode the region"
    assert merge_windows(rows, windows)[0]["error"] == rows[3]["error"], "a window's failure is its image's"


def test_predict_s_summary_counts_images_and_windows_apart(tmp_path, monkeypatch):
    """A large image predicted by windows is one image in the summary, its windows counted
    beside it (the rows of the run are windows)."""
    import tifffile

    from fewclick import batch
    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.types import Detections, Objects

    pixels = np.zeros((3000, 5000, 3), np.uint8)
    tifffile.imwrite(tmp_path / "big.tif", pixels, tile=(512, 512), photometric="rgb")
    tifffile.imwrite(tmp_path / "small.tif", pixels[:100, :100], photometric="rgb")
    empty = Objects(np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
    data = Dataset(["car"], [ImageRecord("big.tif", 5000, 3000, empty, tmp_path / "big.tif"),
                             ImageRecord("small.tif", 100, 100, empty, tmp_path / "small.tif")])  # fmt: skip

    def run_all(job, items, options, ray, workers, what):  # every window answers at once, empty
        rows = [{"rel": i["rel"], "detections": batch._detections_text(Detections.empty()), "error": "",
                 "model": 0.5} for i in items]  # fmt: skip
        return rows, batch._summary(rows, 2.0, workers, ray)

    monkeypatch.setattr(batch, "_run_all", run_all)
    (tmp_path / "last.pt").write_bytes(b"")
    summary = batch.predict_dataset(data, tmp_path / "last.pt", tmp_path / "r.json")
    assert summary["images"] == 2 and summary["windows"] == 3 * 2 + 1 and summary["large_images"] == 1
    assert summary["images_per_second"] == 1.0
