"""Point formats: CRCHistoPhenotypes .mat files (io.points) and the user CSV/JSON (io.points_table)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from conftest import shared_dataset
from fewclick.io import detect_format, points, points_table, read_dataset, write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.types import Objects

# --------------------------------------------------------------------------- CRCHistoPhenotypes


def _crc_image(root: Path, name: str, detection, classes: dict[str, list], size=(40, 30)) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    Image.new("RGB", size).save(folder / f"{name}.bmp")
    savemat(folder / f"{name}_detection.mat", {"detection": np.asarray(detection, np.float64).reshape(-1, 2)})
    for cls in points.CLASSES:
        pts = classes.get(cls, [])
        arr = np.asarray(pts, np.float64).reshape(-1, 2) if pts else np.zeros((0, 0), np.uint8)
        savemat(folder / f"{name}_{cls}.mat", {"detection": arr})


def test_crchisto_objects_are_exactly_the_detection_points(tmp_path):
    det = [[10.0, 5.0], [20.0, 7.0], [20.0, 7.0], [30.0, 9.0], [50.0, 9.0]]  # a duplicated detection point
    classes = {
        "epithelial": [[10.3, 5.0]],  # detection 0
        "fibroblast": [[20.0, 7.0], [1.0, 1.0]],  # detection 1; (1, 1) is 10 px from any
        "others": [[20.0, 7.0]],  # the duplicate detection 2
        "inflammatory": [[55.5, 9.0], [54.0, 9.0]],  # the nearer one labels detection 4
    }
    _crc_image(tmp_path, "img1", det, classes, size=(60, 30))
    _crc_image(tmp_path, "img2", [], {})  # no points at all
    assert points.sniff(tmp_path) and detect_format(tmp_path) == "crchisto"
    data = points.read(tmp_path)
    assert data.classes == [*points.CLASSES, "unclassified"]
    first, second = data.image("img1"), data.image("img2")
    assert (first.width, first.height) == (60, 30)
    names = [data.classes[k] for k in first.objects.labels]
    assert names == ["epithelial", "fibroblast", "others", "unclassified", "inflammatory"]
    np.testing.assert_array_equal(first.objects.points, np.asarray(det, np.float32))
    assert np.isnan(first.objects.boxes).all()
    assert len(second.objects) == 0 and second.objects.points.shape == (0, 2)
    assert data.extra == {"unclassified_detection_points": 1, "unpaired_class_points": 2}


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        ([], []),
        ([[0.0, 0.0]], [0]),
        ([[5.9, 0.0]], [0]),  # a class point marked a few px off its nucleus
        ([[6.1, 0.0]], [-1]),
        ([[4.0, 0.0], [0.1, 0.0]], [-1, 0]),  # the nearer point wins the detection
    ],
)
def test_match_points(others, expected):
    match = points.match_points(np.array([[0.0, 0.0]]), np.asarray(others, float).reshape(-1, 2))
    assert match.tolist() == expected


def test_crchisto_without_detection_variable(tmp_path):
    _crc_image(tmp_path, "img1", [[1.0, 2.0]], {})
    savemat(tmp_path / "img1" / "img1_detection.mat", {"points": np.ones((2, 2))})
    with pytest.raises(FormatError, match=r"img1_detection\.mat: expected a variable 'detection'"):
        points.read(tmp_path)


def test_crchisto_corrupt_mat_and_bad_shape(tmp_path):
    _crc_image(tmp_path, "img1", [[1.0, 2.0]], {})
    (tmp_path / "img1" / "img1_others.mat").write_bytes(b"not a mat file")
    with pytest.raises(FormatError, match=r"img1_others\.mat: cannot read"):
        points.read(tmp_path)
    savemat(tmp_path / "img1" / "img1_others.mat", {"detection": np.ones((2, 3))})
    with pytest.raises(FormatError, match=r"img1_others\.mat: expected 'detection' of shape \(N, 2\)"):
        points.read(tmp_path)


@pytest.mark.shared_data
def test_crchisto_shared_counts():
    data = points.read(shared_dataset("crchisto_phenotypes"))
    assert len(data) == 75
    assert sum(len(rec.objects) for rec in data.images) == 21_491, "the detection points, no more"
    per_class = data.summary()["objects_per_class"]
    assert per_class == {
        "epithelial": 5_857,
        "fibroblast": 4_278,
        "inflammatory": 4_789,
        "others": 1_399,
        "unclassified": 5_168,
    }
    assert data.extra["unpaired_class_points"] == 0
    assert {(r.width, r.height) for r in data.images} == {(500, 500)}


# --------------------------------------------------------------------------- user points CSV / JSON


def _points_dataset() -> Dataset:
    one = Objects(
        labels=[0, 1, 0],
        boxes=np.full((3, 4), np.nan),
        points=[[1.5, 2.25], [10.0, 3.0], [0.1, 0.2]],
        extra={"scores": np.array([0.9, np.nan, 0.5], np.float32)},
    )
    return Dataset(
        classes=["cell", "dust", "unused"],
        images=[ImageRecord("a.png", 16, 12, one), ImageRecord("sub/b.png", 8, 6, Objects.empty())],
    )


def _write_images(folder: Path, dataset: Dataset) -> None:
    for rec in dataset.images:
        (folder / rec.file_name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (rec.width, rec.height)).save(folder / rec.file_name)


@pytest.mark.parametrize("name", ["points.csv", "points.json"])
def test_points_round_trip(tmp_path, name):
    original = _points_dataset()
    _write_images(tmp_path / "images", original)
    points_table.write(original, tmp_path / name)
    assert points_table.sniff(tmp_path / name) and points_table.sniff(tmp_path)
    assert detect_format(tmp_path / name) == "points"
    data = points_table.read(tmp_path)
    assert data.classes == original.classes
    assert [(r.file_name, r.width, r.height) for r in data.images] == [("a.png", 16, 12), ("sub/b.png", 8, 6)]
    got, want = data.images[0].objects, original.images[0].objects
    np.testing.assert_array_equal(got.points, want.points)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.extra["scores"], want.extra["scores"])
    assert len(data.images[1].objects) == 0
    assert data.images[0].path == tmp_path / "images" / "a.png"


def test_points_writes_box_centres(tmp_path):
    boxes = Objects(labels=[0], boxes=[[0, 0, 4, 2]])
    points_table.write(Dataset(["car"], [ImageRecord("x.png", 9, 9, boxes)]), tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["images"][0]["points"] == [[2.0, 1.0, "car"]]


def test_points_write_rejects_other_suffix(tmp_path):
    with pytest.raises(FormatError, match=r"ending in \.csv or \.json, got '\.txt'"):
        points_table.write(_points_dataset(), tmp_path / "p.txt")


def test_points_csv_without_classes_file_orders_by_appearance(tmp_path):
    Image.new("RGB", (5, 4)).save(tmp_path / "im.png")
    (tmp_path / "points.csv").write_text("image,x,y,class\nim.png,1,2,b\nim.png,3,1,a\n")
    data = points_table.read(tmp_path)
    assert data.classes == ["b", "a"]
    assert data.images[0].objects.labels.tolist() == [0, 1]
    assert "scores" not in data.images[0].objects.extra


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,x,class\nim.png,1,a\n", r"points\.csv: expected columns .* missing \['y'\]"),
        ("image,x,y,class\nim.png,1,2,zebra\n", r"points\.csv line 2: unknown class 'zebra'"),
        (
            "image,x,y,class\nim.png,1,2,a\nim.png,one,2,a\n",
            r"points\.csv line 3: expected a number for x, got 'one'",
        ),
        ("image,x,y,class\nim.png,1,nan,a\n", r"points\.csv line 2: expected a finite number for y"),
        ("image,x,y,class\nim.png,1,2,\n", r"points\.csv line 2: expected a class name"),
    ],
)
def test_points_csv_errors(tmp_path, text, message):
    Image.new("RGB", (5, 4)).save(tmp_path / "im.png")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    (tmp_path / "points.csv").write_text(text)
    with pytest.raises(FormatError, match=message):
        points_table.read(tmp_path / "points.csv")


def test_points_csv_missing_image(tmp_path):
    (tmp_path / "points.csv").write_text("image,x,y,class\ngone.png,1,2,a\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        points_table.read(tmp_path)


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (["1", 2, "a"], r"images\[0\] \(im\.png\) points\[0\]: expected a number for x"),
        ([1, 2, "zebra"], r"points\[0\]: unknown class 'zebra'"),
        ([1, 2], r"points\[0\]: expected \[x, y, class_name\]"),
    ],
)
def test_points_json_errors(tmp_path, point, message):
    doc = {"classes": ["a"], "images": [{"file_name": "im.png", "width": 5, "height": 4, "points": [point]}]}
    (tmp_path / "points.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=message):
        points_table.read(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("p.csv", "image,x,y,class\n", True),
        ("p.csv", "file,x,y\n", False),
        ("p.json", json.dumps({"images": [{"file_name": "a", "points": []}]}), True),
        ("p.json", json.dumps({"images": [{"file_name": "a"}], "annotations": []}), False),
        ("p.json", "{broken", False),
        ("p.txt", "image,x,y,class\n", False),
    ],
)
def test_points_sniff(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    assert points_table.sniff(tmp_path / name) is expected


def test_point_counts_survive_crchisto_to_csv(tmp_path):
    _crc_image(tmp_path / "crc", "img1", [[1.0, 2.0], [3.0, 4.0]], {"others": [[1.0, 2.0]]})
    data = points.read(tmp_path / "crc")
    points_table.write(data, tmp_path / "out" / "points.csv")
    back = points_table.read(tmp_path / "out" / "points.csv", images_dir=tmp_path / "crc")
    labels = Counter(back.classes[k] for k in back.images[0].objects.labels)
    assert labels == {"others": 1, "unclassified": 1}


def test_points_csv_empty_image_cell(tmp_path):
    (tmp_path / "points.csv").write_text("image,x,y,class\n,1,2,a\n")
    with pytest.raises(FormatError, match=r"points\.csv line 2: expected an image name"):
        points_table.read(tmp_path)


def test_crchisto_read_rejects_other_folders(tmp_path):
    (tmp_path / "img1").mkdir()
    assert not points.sniff(tmp_path)
    with pytest.raises(FormatError, match="expected subfolders imgN/"):
        points.read(tmp_path)


def test_points_through_write_dataset(tmp_path):
    original = _points_dataset()
    write_dataset(original, tmp_path / "points.json", "points")
    data = read_dataset(tmp_path / "points.json")
    assert data.format == "points" and data.classes == original.classes
    np.testing.assert_array_equal(data.images[0].objects.points, original.images[0].objects.points)
