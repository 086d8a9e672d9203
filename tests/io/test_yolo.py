"""YOLO txt folders made here (no shared dataset uses the format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewclick.io import detect_format, yolo
from fewclick.io.errors import FormatError
from fewclick.io.parsing import FormatWarning
from fewclick.types import rboxes_to_polygons

LABELS = """0 0.5 0.5 0.25 0.5
1 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4
0 0.0 0.0 0.5 0.0 0.5 0.5
"""


def yolo_folder(
    root: Path, labels: str = LABELS, names: tuple[str, str] | None = ("classes.txt", "car\nboat\n")
) -> Path:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (40, 20)).save(root / "images" / "train" / "a.png")
    Image.new("RGB", (40, 20)).save(root / "images" / "train" / "empty.png")
    (root / "labels" / "train" / "a.txt").write_text(labels)
    if names:
        (root / names[0]).write_text(names[1])
    return root


def test_tiny_yolo_is_read_field_by_field(tmp_path):
    folder = yolo_folder(tmp_path)
    assert detect_format(folder) == "yolo"
    ds = yolo.read(folder)
    assert ds.classes == ["car", "boat"]
    assert [r.file_name for r in ds.images] == ["train/a.png", "train/empty.png"]
    objs = ds.images[0].objects
    assert len(ds.images[1].objects) == 0 and objs.labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(objs.boxes, [[15, 5, 25, 15], [4, 4, 12, 8], [0, 0, 20, 10]], atol=1e-5)
    assert np.isnan(objs.rboxes[[0, 2]]).all()
    corners = sorted(rboxes_to_polygons(objs.rboxes[1:2])[0].tolist())
    np.testing.assert_allclose(corners, [[4, 4], [4, 8], [12, 4], [12, 8]], atol=1e-4)
    assert objs.segmentations[0] is None and objs.segmentations[2][0].shape == (3, 2)


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("obj.names", "car\nboat\n"),
        ("data.yaml", "path: .\nnames: [car, 'boat']\n"),
        ("data.yaml", "train: images/train\nnames:\n  - car\n  - boat\nnc: 2\n"),
        ("data.yaml", 'names:\n  0: car\n  1: "boat"  # a comment\n'),
    ],
)
def test_class_names_files(tmp_path, file, text):
    assert yolo.read(yolo_folder(tmp_path, names=(file, text))).classes == ["car", "boat"]


def test_without_names_classes_are_numbered_with_a_warning(tmp_path):
    with pytest.warns(FormatWarning, match="no data.yaml, obj.names or classes.txt"):
        ds = yolo.read(yolo_folder(tmp_path, names=None))
    assert ds.classes == ["0", "1"]


def test_write_then_read_gives_the_same_objects(tmp_path):
    ds = yolo.read(yolo_folder(tmp_path / "in"))
    assert yolo.write(ds, tmp_path / "out", kind="segment") == []
    assert (tmp_path / "out" / "images" / "train" / "a.png").is_symlink()
    assert "names:\n  0: car\n  1: boat" in (tmp_path / "out" / "data.yaml").read_text()
    back = yolo.read(tmp_path / "out")
    assert back.classes == ds.classes and [r.file_name for r in back.images] == [
        r.file_name for r in ds.images
    ]
    a, b = ds.images[0].objects, back.images[0].objects
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    for i in (1, 2):
        np.testing.assert_allclose(a.segmentations[i][0], b.segmentations[i][0], atol=1e-4)


def test_detection_labels_hold_each_objects_box(tmp_path):
    ds = yolo.read(yolo_folder(tmp_path / "in"))
    yolo.write(ds, tmp_path / "out")
    back = yolo.read(tmp_path / "out")
    np.testing.assert_allclose(back.images[0].objects.boxes, ds.images[0].objects.boxes, atol=1e-4)
    assert back.images[0].objects.segmentations is None


def test_points_only_objects_are_left_out_and_counted(tmp_path):
    ds = yolo.read(yolo_folder(tmp_path / "in"))
    ds.images[0].objects.boxes[0] = np.nan
    ds.images[0].objects.segmentations[0] = None
    ds.images[0].objects.points = np.array([[3, 4], [np.nan, np.nan], [np.nan, np.nan]], np.float32)
    with pytest.warns(FormatWarning, match=r"left out: points only .*: 1 object\(s\), in train/a.png \(1\)"):
        messages = yolo.write(ds, tmp_path / "out")
    assert len(messages) == 1 and "1 object(s)" in messages[0]
    assert len(yolo.read(tmp_path / "out").images[0].objects) == 2


def test_a_trailing_score_is_read_and_written(tmp_path):
    ds = yolo.read(yolo_folder(tmp_path, labels="0 0.5 0.5 0.25 0.5 0.875\n1 0.1 0.2 0.3 0.2 0.3 0.4 0.25\n"))
    objs = ds.images[0].objects
    np.testing.assert_allclose(objs.extra["scores"], [0.875, 0.25])
    np.testing.assert_allclose(objs.segmentations[1][0], [[4, 4], [12, 4], [12, 8]], atol=1e-5)
    yolo.write(ds, tmp_path / "out", kind="segment")
    np.testing.assert_allclose(yolo.read(tmp_path / "out").images[0].objects.extra["scores"], [0.875, 0.25])


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("0 0.5 0.5 0.25", r"a.txt:2: expected 'cls cx cy w h'.*got 4 fields"),
        ("0 0.5 0.5", r"a.txt:2: expected 'cls cx cy w h'.*got 3 fields"),
        ("car 0.5 0.5 0.25 0.5", r"a.txt:2: expected an integer class and numbers"),
        ("2 0.5 0.5 0.25 0.5", r"a.txt:2: expected a class id in 0..1, got 2"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, error):
    with pytest.raises(FormatError, match=error):
        yolo.read(yolo_folder(tmp_path, labels=f"0 0.5 0.5 0.1 0.1\n{line}\n"))


def test_box_outside_the_image_is_clipped_with_a_warning(tmp_path):
    with pytest.warns(FormatWarning, match=r"a.txt: clipped 1 box\(es\) .*: line 1"):
        ds = yolo.read(yolo_folder(tmp_path, labels="0 0.95 0.5 0.2 0.5\n"))
    np.testing.assert_allclose(ds.images[0].objects.boxes, [[34, 5, 40, 15]], atol=1e-5)


def test_two_images_that_would_share_a_label_file_are_refused_before_one_overwrites_the_other(tmp_path):
    from fewclick.io import Dataset, ImageRecord
    from fewclick.types import Objects

    one = Objects(labels=np.array([0]), boxes=np.array([[1.0, 1, 9, 9]]))
    data = Dataset(["car"], [ImageRecord(name, 40, 30, one) for name in ("a.png", "a.jpg")])
    with pytest.raises(ValueError, match=r"one label file per image, got labels/a.txt for several"):
        yolo.write(data, tmp_path / "out")
    assert not (tmp_path / "out" / "labels" / "a.txt").exists()
