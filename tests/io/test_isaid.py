"""iSAID reader: instance-id PNG + class-colour PNG -> masks, boxes and oriented boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import ImageError, detect_format, isaid
from fewclick.io.errors import FormatError
from fewclick.io.rle import rle_to_mask
from fewclick.types import rboxes_to_boxes

SHIP = isaid.CLASS_COLORS["ship"]
PLANE = isaid.CLASS_COLORS["plane"]


def _id_rgb(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def _write(folder: Path, name: str, ids: np.ndarray, colors: np.ndarray, size=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    h, w = ids.shape if size is None else size
    Image.new("RGB", (w, h)).save(folder / f"{name}.png")
    Image.fromarray(_id_rgb(ids)).save(folder / f"{name}{isaid.ID_SUFFIX}")
    Image.fromarray(colors.astype(np.uint8)).save(folder / f"{name}{isaid.COLOR_SUFFIX}")
    return folder


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Two instances on a 10 x 12 image: id 70000 a ship (spans all three id bytes), id 5 a plane."""
    ids = np.zeros((10, 12), np.int64)
    colors = np.zeros((10, 12, 3), np.uint8)
    ids[1:3, 1:9] = 70_000
    colors[1:3, 1:9] = SHIP
    ids[5:9, 8:10] = 5
    colors[5:9, 8:10] = PLANE
    return ids, colors


def test_isaid_instances(tmp_path):
    ids, colors = _scene()
    _write(tmp_path / "val" / "images", "P1", ids, colors)
    assert isaid.sniff(tmp_path) and detect_format(tmp_path) == "isaid"
    data = isaid.read(tmp_path)
    rec = data.images[0]
    assert rec.file_name == "val/images/P1.png" and (rec.width, rec.height) == (12, 10)
    objs = rec.objects
    assert objs.extra["instance_ids"].tolist() == [5, 70_000]
    assert [data.classes[k] for k in objs.labels] == ["plane", "ship"]
    np.testing.assert_array_equal(objs.boxes, [[8, 5, 10, 9], [1, 1, 9, 3]])
    np.testing.assert_array_equal(rle_to_mask(objs.segmentations[1]), ids == 70_000)
    # axis-aligned rectangles: the oriented box is the pixel box itself
    np.testing.assert_allclose(rboxes_to_boxes(objs.rboxes), objs.boxes, atol=1e-4)
    np.testing.assert_allclose(np.sort(objs.rboxes[:, 2:4], axis=1), [[2, 4], [2, 8]], atol=1e-4)
    assert data.extra["mixed_class_instances"] == 0


def test_isaid_rotated_instance():
    mask = np.zeros((40, 40), bool)
    for k in range(20):  # a diagonal bar, 3 pixels thick
        mask[10 + k, 10 + k : 13 + k] = True
    rbox = isaid.mask_rbox(mask)
    assert np.isclose(rbox[4] % (np.pi / 2), np.pi / 4, atol=0.05)
    assert rbox[2] * rbox[3] < 0.6 * 22 * 22  # much tighter than the axis-aligned box


def test_isaid_majority_class(tmp_path):
    ids, colors = _scene()
    colors[1, 1] = PLANE  # one pixel of the ship carries another class
    _write(tmp_path, "P1", ids, colors)
    with pytest.warns(
        UserWarning, match=r"P1_instance_id_RGB\.png: 1 instance\(s\) carry several class colours"
    ):
        data = isaid.read(tmp_path)
    assert [data.classes[k] for k in data.images[0].objects.labels] == ["plane", "ship"]
    assert data.extra["mixed_class_instances"] == 1


def test_isaid_unknown_colour(tmp_path):
    ids, colors = _scene()
    colors[1, 2] = (9, 9, 9)
    _write(tmp_path, "P1", ids, colors)
    with pytest.raises(
        FormatError, match=r"P1_instance_color_RGB\.png: unknown class colour \(9, 9, 9\) at \(x=2, y=1\)"
    ):
        isaid.read(tmp_path)


def test_isaid_instance_without_colour(tmp_path):
    ids, colors = _scene()
    colors[5:9, 8:10] = 0
    _write(tmp_path, "P1", ids, colors)
    with pytest.raises(FormatError, match=r"P1_instance_id_RGB\.png: instance 5 has no class colour"):
        isaid.read(tmp_path)


def test_isaid_id_map_of_other_size(tmp_path):
    ids, colors = _scene()
    _write(tmp_path, "P1", ids, colors, size=(11, 12))
    with pytest.raises(
        FormatError, match=r"P1_instance_id_RGB\.png: expected the image size 12 x 11, got 12 x 10"
    ):
        isaid.read(tmp_path)


def test_isaid_corrupt_id_map(tmp_path):
    ids, colors = _scene()
    _write(tmp_path, "P1", ids, colors)
    (tmp_path / f"P1{isaid.ID_SUFFIX}").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ImageError, match=r"P1_instance_id_RGB\.png"):
        isaid.read(tmp_path)


def test_isaid_sniff_rejects_plain_images(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "P1.png")
    assert not isaid.sniff(tmp_path)


@pytest.mark.shared_data
def test_isaid_shared_counts():
    data = isaid.read(shared_dataset("isaid_samples"))
    per_image = {Path(r.file_name).stem: len(r.objects) for r in data.images}
    assert per_image == {"P0003": 59, "P0004": 116, "P0005": 131}
    assert data.summary()["objects_per_class"] == {
        "storage_tank": 1,
        "Large_Vehicle": 231,
        "Small_Vehicle": 74,
    }
    assert data.extra["mixed_class_instances"] == 0
    for rec in data.images:
        enclosing = rboxes_to_boxes(rec.objects.rboxes)
        assert (enclosing[:, :2] <= rec.objects.boxes[:, :2] + 1e-3).all()
        assert (enclosing[:, 2:] >= rec.objects.boxes[:, 2:] - 1e-3).all()
