"""ADE20K 2021 reader: json objects (parts included) with instance-mask PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import ImageError, ade20k, detect_format
from fewclick.io.errors import FormatError
from fewclick.io.rle import rle_to_mask

H, W = 8, 10


def _object(ade_id: int, name: str, ndx: int, part_level: int = 0, ispartof=(), polygon=None) -> dict:
    return {
        "id": ade_id,
        "name": name,
        "name_ndx": ndx,
        "raw_name": name.split(",")[0],
        "parts": {"hasparts": [], "ispartof": list(ispartof) or [], "part_level": part_level},
        "instance_mask": f"scene/instance_{ade_id:03d}_scene.png",
        "polygon": polygon or {"x": [], "y": []},
    }


def _scene(folder: Path, car_mask: np.ndarray | None = None) -> Path:
    """A car (id 0) with a wheel part (id 3, its ispartof given as a bare int) and a sky (id 5)
    that has only a polygon."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scene").mkdir()
    Image.new("RGB", (W, H)).save(folder / "scene.jpg")
    Image.new("RGB", (W, H)).save(folder / "scene_seg.png")
    car = np.zeros((H, W), np.uint8)
    car[4:8, 2:8] = 255
    car[4:6, 6:8] = 128  # occluded corner
    wheel = np.zeros((H, W), np.uint8)
    wheel[6:8, 2:4] = 255
    Image.fromarray(car if car_mask is None else car_mask).save(folder / "scene" / "instance_000_scene.png")
    Image.fromarray(wheel).save(folder / "scene" / "instance_003_scene.png")
    wheel_obj = _object(3, "wheel", 2900, part_level=1)
    wheel_obj["parts"]["ispartof"] = 0
    objects = [
        _object(0, "car, auto", 400),
        wheel_obj,
        _object(5, "sky", 2420, polygon={"x": [0, 10, 10, 0], "y": [0, 0, 2, 2]}),
    ]
    doc = {"annotation": {"filename": "scene.jpg", "imsize": [H, W, 3], "object": objects}}
    (folder / "scene.json").write_text(json.dumps(doc))
    return folder


def test_ade20k_objects_parts_and_polygon_fallback(tmp_path):
    _scene(tmp_path / "training" / "street")
    assert ade20k.sniff(tmp_path) and detect_format(tmp_path) == "ade20k"
    data = ade20k.read(tmp_path)
    assert data.classes == ["car, auto", "sky", "wheel"] and data.category_ids == [400, 2420, 2900]
    rec = data.images[0]
    assert rec.file_name == "training/street/scene.jpg" and (rec.width, rec.height) == (W, H)
    objs = rec.objects
    assert [data.classes[k] for k in objs.labels] == ["car, auto", "wheel", "sky"]
    assert objs.extra["ade_id"].tolist() == [0, 3, 5]
    assert objs.extra["part_level"].tolist() == [0, 1, 0]
    assert objs.extra["parent"].tolist() == [-1, 0, -1]
    assert objs.extra["raw_name"] == ["car", "wheel", "sky"]
    car = rle_to_mask(objs.segmentations[0])
    assert car.sum() == 4 * 6 - 2 * 2  # visible pixels only
    np.testing.assert_array_equal(objs.boxes, [[2, 4, 8, 8], [2, 6, 4, 8], [0, 0, 10, 2]])


def test_ade20k_amodal_masks(tmp_path):
    _scene(tmp_path)
    car = rle_to_mask(ade20k.read(tmp_path, amodal=True).images[0].objects.segmentations[0])
    assert car.sum() == 4 * 6


def test_ade20k_mask_of_other_size(tmp_path):
    _scene(tmp_path, car_mask=np.full((H + 1, W), 255, np.uint8))
    with pytest.raises(
        FormatError, match=r"instance_000_scene\.png: expected a mask of the image size 10 x 8, got 10 x 9"
    ):
        ade20k.read(tmp_path)


def test_ade20k_corrupt_mask(tmp_path):
    _scene(tmp_path)
    (tmp_path / "scene" / "instance_003_scene.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ImageError, match=r"instance_003_scene\.png"):
        ade20k.read(tmp_path)


def test_ade20k_object_without_name(tmp_path):
    _scene(tmp_path)
    doc = json.loads((tmp_path / "scene.json").read_text())
    del doc["annotation"]["object"][1]["name"]
    (tmp_path / "scene.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"scene\.json: object\[1\] lacks \['name'\]"):
        ade20k.read(tmp_path)


def test_ade20k_object_without_mask_or_polygon(tmp_path):
    _scene(tmp_path)
    (tmp_path / "scene" / "instance_003_scene.png").unlink()
    with pytest.raises(FormatError, match=r"scene\.json: object 3 has no instance mask and no polygon"):
        ade20k.read(tmp_path)


def test_ade20k_sniff_needs_seg_beside_json(tmp_path):
    _scene(tmp_path)
    (tmp_path / "scene_seg.png").unlink()
    assert not ade20k.sniff(tmp_path)


@pytest.mark.shared_data
def test_ade20k_shared_counts():
    data = ade20k.read(shared_dataset("ade20k_sample"))
    assert [len(r.objects) for r in data.images] == [70, 37, 32]
    assert [(r.width, r.height) for r in data.images] == [(2048, 1536), (2200, 1650), (2200, 1467)]
    assert [int((r.objects.extra["part_level"] > 0).sum()) for r in data.images] == [19, 3, 8]
    for rec in data.images:
        parents = rec.objects.extra["parent"]
        assert ((parents >= 0) == (rec.objects.extra["part_level"] > 0)).all()
        assert (rec.objects.boxes[:, 2:] > rec.objects.boxes[:, :2]).all()
    car = data.classes.index("car, auto, automobile, machine, motorcar")
    assert data.category_ids[car] == 401
