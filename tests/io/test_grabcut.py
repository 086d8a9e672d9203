"""GrabCut benchmark reader: object mask, void band and scribble maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import ImageError, detect_format, grabcut
from fewclick.io.errors import FormatError
from fewclick.io.rle import rle_to_mask

# 255 = object, 128 = void band, 0 = background
TRUTH = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 128, 128, 128, 0],
        [0, 128, 255, 128, 0],
        [0, 128, 255, 128, 0],
    ],
    np.uint8,
)


def _palette_png(path: Path, values: np.ndarray) -> None:
    img = Image.fromarray(values.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (253 * 3))
    img.save(path)


def _benchmark(root: Path, truth: np.ndarray = TRUTH, scribbles: bool = True) -> Path:
    for sub in ("images", "ground-truth", "scribbles-set-1"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    h, w = TRUTH.shape
    Image.new("RGB", (w, h), (50, 60, 70)).save(root / "images" / "cup.jpg")
    Image.fromarray(truth).save(root / "ground-truth" / "cup.png")
    if scribbles:
        marks = np.zeros((h, w), np.uint8)
        marks[2, 2], marks[0, :] = 1, 2
        _palette_png(root / "scribbles-set-1" / "cup-anno.png", marks)
    return root


def test_grabcut_object_void_and_scribbles(tmp_path):
    root = _benchmark(tmp_path)
    assert grabcut.sniff(root) and detect_format(root) == "grabcut"
    data = grabcut.read(root)
    rec = data.images[0]
    assert data.classes == ["object"] and rec.file_name == "images/cup.jpg"
    assert (rec.width, rec.height) == (5, 4)
    np.testing.assert_array_equal(rle_to_mask(rec.objects.segmentations[0]), TRUTH == 255)
    np.testing.assert_array_equal(rec.objects.boxes, [[2, 2, 3, 4]])
    np.testing.assert_array_equal(rle_to_mask(rec.extra["void"]), TRUTH == 128)
    assert rec.extra["scribble_maps"] == {"set-1": root / "scribbles-set-1" / "cup-anno.png"}
    marks = grabcut.load_scribble_map(rec.extra["scribble_maps"]["set-1"])
    assert marks.dtype == np.uint8 and marks[2, 2] == 1 and (marks[0] == 2).all() and marks.sum() == 11


def test_grabcut_without_void_or_object(tmp_path):
    root = _benchmark(tmp_path, truth=np.zeros_like(TRUTH), scribbles=False)
    rec = grabcut.read(root).images[0]
    assert len(rec.objects) == 0
    assert not rle_to_mask(rec.extra["void"]).any()
    assert rec.extra["scribble_maps"] == {}


def test_grabcut_truth_of_other_size(tmp_path):
    root = _benchmark(tmp_path, truth=np.zeros((5, 5), np.uint8))
    with pytest.raises(
        FormatError, match=r"cup\.png: expected a ground truth of the image size 5 x 4, got 5 x 5"
    ):
        grabcut.read(root)


def test_grabcut_truth_with_unknown_value(tmp_path):
    truth = TRUTH.copy()
    truth[0, 4] = 7
    root = _benchmark(tmp_path, truth=truth)
    with pytest.raises(FormatError, match=r"cup\.png: expected values 0, 128, 255, got 7 at \(x=4, y=0\)"):
        grabcut.read(root)


def test_grabcut_missing_truth(tmp_path):
    root = _benchmark(tmp_path)
    (root / "ground-truth" / "cup.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"cup\.png: no ground-truth file"):
        grabcut.read(root)


def test_grabcut_corrupt_truth(tmp_path):
    root = _benchmark(tmp_path)
    (root / "ground-truth" / "cup.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ImageError, match=r"ground-truth/cup\.png"):
        grabcut.read(root)


def test_scribble_map_with_bad_value(tmp_path):
    _palette_png(tmp_path / "s.png", np.full((2, 3), 5, np.uint8))
    with pytest.raises(FormatError, match=r"s\.png: expected values 0, 1, 2, got 5"):
        grabcut.load_scribble_map(tmp_path / "s.png")


def test_grabcut_sniff_needs_both_folders(tmp_path):
    (tmp_path / "images").mkdir()
    assert not grabcut.sniff(tmp_path)


@pytest.mark.shared_data
def test_grabcut_shared_counts():
    data = grabcut.read(shared_dataset("grabcut_scribbles"))
    assert len(data) == 23 and data.summary()["objects"] == 23
    assert all(set(r.extra["scribble_maps"]) == {"set-1", "set-2"} for r in data.images)
    without_void = {Path(r.file_name).stem for r in data.images if not rle_to_mask(r.extra["void"]).any()}
    assert without_void == {"llama", "teddy"}
    rec = data.image("banana1")
    marks = grabcut.load_scribble_map(rec.extra["scribble_maps"]["set-2"])
    assert marks.shape == (rec.height, rec.width) and set(np.unique(marks)) == {0, 1, 2}
