"""DOTA labelTxt: tiny hand-made folders and the shared samples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import dota
from fewclick.io.errors import FormatError
from fewclick.io.parsing import FormatWarning
from fewclick.types import rboxes_to_polygons


def dota_folder(root: Path, text: str, image: bool = True) -> Path:
    (root / "labelTxt").mkdir(parents=True)
    (root / "labelTxt" / "P1.txt").write_text(text)
    if image:
        (root / "images").mkdir()
        Image.new("RGB", (64, 48)).save(root / "images" / "P1.png")
    return root


LABELS = """imagesource:GoogleEarth
gsd:0.1
10.0 10.0 30.0 10.0 30.0 20.0 10.0 20.0 small-vehicle 0
40 5 50 15 40 25 30 15 plane 1
1.0 1.0 1.0 1.0 1.0 9.0 1.0 9.0 small-vehicle 2
"""


def test_tiny_dota_is_read_field_by_field(tmp_path):
    ds = dota.read(dota_folder(tmp_path, LABELS))
    rec = ds.images[0]
    assert ds.classes == dota.DOTA_V1_CLASSES
    assert (rec.file_name, rec.width, rec.height) == ("P1.png", 64, 48)
    assert rec.extra == {"imagesource": "GoogleEarth", "gsd": "0.1"}
    objs = rec.objects
    assert [ds.classes[i] for i in objs.labels] == ["small-vehicle", "plane", "small-vehicle"]
    assert objs.difficult.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(objs.boxes, [[10, 10, 30, 20], [30, 5, 50, 25], [1, 1, 1, 9]])
    corners = sorted(rboxes_to_polygons(objs.rboxes[:1])[0].tolist())
    np.testing.assert_allclose(corners, [[10, 10], [10, 20], [30, 10], [30, 20]], atol=1e-4)
    np.testing.assert_array_equal(objs.segmentations[1][0], [[40, 5], [50, 15], [40, 25], [30, 15]])
    cx, cy, w, h, angle = objs.rboxes[1]
    assert (
        (cx, cy) == (pytest.approx(40), pytest.approx(15))
        and w == pytest.approx(np.hypot(10, 10))
        and h == pytest.approx(w)
    )
    assert angle % (np.pi / 2) == pytest.approx(np.pi / 4)


def test_write_gives_the_label_file_back(tmp_path):
    ds = dota.read(dota_folder(tmp_path / "in", LABELS))
    dota.write(ds, tmp_path / "out")
    written = (tmp_path / "out" / "labelTxt" / "P1.txt").read_text()
    assert (
        written.split()
        == LABELS.replace("40 5 50 15 40 25 30 15", "40.0 5.0 50.0 15.0 40.0 25.0 30.0 15.0").split()
    )
    # The images are linked beside the labels, not copied, so the written folder reads back whole.
    linked = tmp_path / "out" / "images" / "P1.png"
    assert linked.is_symlink() == (ds.images[0].path is not None and ds.images[0].path.is_file())


def test_write_uses_rbox_then_box_corners(tmp_path):
    ds = dota.read(dota_folder(tmp_path / "in", LABELS))
    objs = ds.images[0].objects
    objs.segmentations = None
    objs.rboxes[2] = np.nan  # this one falls back to its axis-aligned box
    dota.write(ds, tmp_path / "out")
    lines = (tmp_path / "out" / "labelTxt" / "P1.txt").read_text().splitlines()
    assert lines[4] == "1.0 1.0 1.0 1.0 1.0 9.0 1.0 9.0 small-vehicle 2"
    corners = np.array(lines[2].split()[:8], np.float32).reshape(4, 2)
    np.testing.assert_allclose(sorted(corners.tolist()), [[10, 10], [10, 20], [30, 10], [30, 20]], atol=1e-4)


def test_unknown_class_is_appended_with_a_warning(tmp_path):
    with pytest.warns(FormatWarning, match=r"P1.txt:1: class 'container-crane' is not in the class list"):
        ds = dota.read(dota_folder(tmp_path, "1 1 5 1 5 5 1 5 container-crane 0\n"))
    assert ds.classes[-1] == "container-crane" and ds.images[0].objects.labels.tolist() == [15]


def test_explicit_classes_replace_the_v1_list(tmp_path):
    ds = dota.read(dota_folder(tmp_path, "1 1 5 1 5 5 1 5 car\n"), classes=["car"])
    assert ds.classes == ["car"] and ds.images[0].objects.difficult.tolist() == [0]


def test_label_file_without_image_gets_zero_size_and_a_warning(tmp_path):
    with pytest.warns(FormatWarning, match="P1.txt: image not found"):
        ds = dota.read(dota_folder(tmp_path, "1 1 5 1 5 5 1 5 plane 0\n", image=False))
    assert (ds.images[0].width, ds.images[0].height, ds.images[0].path) == (0, 0, None)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1 1 5 1 5 5 plane 0", r"P1.txt:2: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class \[difficult\]'"),
        ("1 1 5 1 5 5 1 x plane 0", r"P1.txt:2: expected 8 numbers before the class name"),
        ("1 1 5 1 5 5 1 5 plane 3", r"P1.txt:2: expected difficult 0, 1 or 2, got '3'"),
        ("1 1 5 1 5 nan 1 5 plane 0", r"P1.txt:2: expected finite corner coordinates"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, match):
    folder = dota_folder(tmp_path, f"gsd:null\n{line}\n")
    with pytest.raises(FormatError, match=match):
        dota.read(folder)


# --------------------------------------------------------------------------- shared data
@pytest.mark.shared_data
def test_dota_samples_counts_match_source_md(tmp_path):
    root = shared_dataset("dota_samples")
    assert dota.sniff(root)
    ds = dota.read(root)
    counts = Counter(ds.classes[label] for r in ds.images for label in r.objects.labels)
    assert len(ds) == 5 and counts == {"small-vehicle": 343, "large-vehicle": 308}
    assert Counter(int(d) for r in ds.images for d in r.objects.difficult) == {0: 575, 1: 71, 2: 5}
    crop = ds.image("P1478__1__853___962")
    assert crop.extra == {} and (crop.width, crop.height) == (1024, 1024)
    assert ds.image("P0003").extra == {"imagesource": "GoogleEarth", "gsd": "0.115726939386"}
    dota.write(ds, tmp_path)
    for source in sorted((root / "labelTxt").glob("*.txt")):
        original, written = (
            source.read_text().split(),
            (tmp_path / "labelTxt" / source.name).read_text().split(),
        )
        assert len(original) == len(written)
        for a, b in zip(original, written, strict=True):
            assert a == b or float(a) == float(b)
