"""DSB 2018 nuclei reader: one object per mask PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import ImageError, detect_format, dsb
from fewclick.io.errors import FormatError
from fewclick.io.rle import rle_to_mask


def _sample(root: Path, name: str, masks: list[np.ndarray], size=(12, 8)) -> Path:
    folder = root / name
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    Image.new("RGBA", size, (10, 20, 30, 255)).save(folder / "images" / f"{name}.png")
    for k, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"m{k}.png")
    return folder


def _square(x0, y0, x1, y1, shape=(8, 12)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_dsb_two_images(tmp_path):
    _sample(tmp_path, "bbb", [_square(0, 0, 2, 3)])
    _sample(tmp_path, "aaa", [_square(1, 2, 4, 5), _square(6, 0, 12, 8)])
    assert dsb.sniff(tmp_path) and detect_format(tmp_path) == "dsb2018"
    data = dsb.read(tmp_path)
    assert data.classes == ["nucleus"]
    assert [r.file_name for r in data.images] == ["aaa/images/aaa.png", "bbb/images/bbb.png"]
    first = data.images[0]
    assert (first.width, first.height) == (12, 8)
    np.testing.assert_array_equal(first.objects.boxes, [[1, 2, 4, 5], [6, 0, 12, 8]])
    np.testing.assert_array_equal(rle_to_mask(first.objects.segmentations[0]), _square(1, 2, 4, 5))
    assert first.objects.labels.tolist() == [0, 0]


def test_dsb_accepts_parent_of_stage1_train(tmp_path):
    _sample(tmp_path / "stage1_train", "aaa", [_square(0, 0, 1, 1)])
    assert dsb.sniff(tmp_path)
    assert len(dsb.read(tmp_path).images) == 1


def test_dsb_empty_mask_is_skipped_with_warning(tmp_path):
    _sample(tmp_path, "aaa", [_square(0, 0, 2, 2), np.zeros((8, 12), bool)])
    with pytest.warns(UserWarning, match=r"m1\.png: empty mask"):
        data = dsb.read(tmp_path)
    assert len(data.images[0].objects) == 1


def test_dsb_mask_of_other_size(tmp_path):
    _sample(tmp_path, "aaa", [_square(0, 0, 2, 2, shape=(9, 12))])
    with pytest.raises(FormatError, match=r"m0\.png: expected a mask of the image size 12 x 8, got 12 x 9"):
        dsb.read(tmp_path)


def test_dsb_corrupt_mask(tmp_path):
    folder = _sample(tmp_path, "aaa", [_square(0, 0, 2, 2)])
    (folder / "masks" / "m0.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ImageError, match=r"m0\.png"):
        dsb.read(tmp_path)


def test_dsb_corrupt_image(tmp_path):
    folder = _sample(tmp_path, "aaa", [_square(0, 0, 2, 2)])
    (folder / "images" / "aaa.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"aaa\.png: not a readable image"):
        dsb.read(tmp_path)


@pytest.mark.parametrize("layout", ["flat_images", "images_only"])
def test_dsb_sniff_rejects_other_layouts(tmp_path, layout):
    if layout == "flat_images":
        Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    else:
        (tmp_path / "x" / "images").mkdir(parents=True)
    assert not dsb.sniff(tmp_path)
    with pytest.raises(FormatError, match="expected subfolders"):
        dsb.read(tmp_path)


@pytest.mark.shared_data
def test_dsb_shared_counts():
    data = dsb.read(shared_dataset("dsb2018_nuclei"))
    assert len(data) == 100
    assert data.summary()["objects"] == 4_182
    per_image = [len(r.objects) for r in data.images]
    assert (min(per_image), max(per_image), float(np.median(per_image))) == (3, 196, 31.5)
    assert data.summary()["image_sizes"]["256x256"] == 56
