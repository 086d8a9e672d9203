"""Bad input in every reader: an error naming the file and the item, or a skip with a warning
that names them; never a library traceback or silently wrong numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewclick.io import FormatError, ImageError, read_dataset, write_dataset
from fewclick.io.parsing import FormatWarning, drop_outside, outside_image
from fewclick.io.results import ResultsError, read_results
from fewclick.metrics import evaluate_detections
from fewclick.types import Detections, Objects


def png(path: Path, width: int = 20, height: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(path)
    return path


def coco_file(folder: Path, images: list | None = None, annotations: list | None = None) -> Path:
    png(folder / "a.png")
    data = {
        "images": images or [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "annotations": annotations or [],
        "categories": [{"id": 1, "name": "dog"}],
    }
    (folder / "c.json").write_text(json.dumps(data))
    return folder / "c.json"


def ann(**fields) -> dict:
    return {"id": 11, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0, **fields}


IMAGE = {"id": 1, "file_name": "a.png", "width": 20, "height": 10}


@pytest.mark.parametrize(
    ("images", "annotation", "error"),
    [
        ([IMAGE, {**IMAGE, "file_name": "b.png"}], ann(), r"images\[1\] \(id 1\): image id 1 appears twice"),
        (
            [{**IMAGE, "width": -20}],
            ann(),
            r"images\[0\] \(id 1\): expected a positive integer width, got -20",
        ),
        (
            [{**IMAGE, "width": 20.5}],
            ann(),
            r"images\[0\] \(id 1\): expected a positive integer width, got 20.5",
        ),
        (
            [{**IMAGE, "height": "tall"}],
            ann(),
            r"images\[0\] \(id 1\): expected a positive integer height, got 'tall'",
        ),
        (
            [{**IMAGE, "width": 10**6, "height": 10**6}],
            ann(),
            r"images\[0\] \(id 1\): 1000000 x 1000000 = .* pixels exceeds the limit",
        ),
        ([{**IMAGE, "file_name": 5}], ann(), r"images\[0\] \(id 1\): expected a file_name string, got 5"),
        ([IMAGE], ann(image_id=[1]), r"annotation 11: expected an image_id listed in 'images', got \[1\]"),
        ([IMAGE], ann(category_id={}), r"annotation 11: expected a category_id among \[1\], got \{\}"),
        (
            [IMAGE],
            ann(bbox=[float("nan"), 1, 2, 2]),
            r"annotation 11: expected 'bbox' to be 4 finite numbers",
        ),
        (
            [IMAGE],
            ann(bbox=[1, 1, float("inf"), 2]),
            r"annotation 11: expected 'bbox' to be 4 finite numbers",
        ),
        ([IMAGE], ann(point=[float("nan"), 1]), r"annotation 11: expected 'point' to be 2 finite numbers"),
        ([IMAGE], ann(rbox=[1, 1, -2, 2, 0]), r"annotation 11: expected 'rbox' .* with w, h >= 0"),
        ([IMAGE], ann(segmentation=[[1, 1, "x", 2, 3, 3]]), r"annotation 11: expected polygon 0 .* finite"),
        ([IMAGE], ann(segmentation=[[1, 1, float("nan"), 2, 3, 3]]), r"annotation 11: expected polygon 0"),
        ([IMAGE], ann(difficult="hard"), r"annotation 11: expected 'difficult' to be one of \[0, 1, 2\]"),
        ([IMAGE], ann(iscrowd="no"), r"annotation 11: expected 'iscrowd' to be one of \[0, 1\]"),
        (
            [IMAGE],
            ann(segmentation={"size": [10, 20], "counts": [300, -100]}),
            r"annotation 11: expected uncompressed RLE counts to be integers >= 0",
        ),
        (
            [IMAGE],
            ann(segmentation={"size": [10, 20], "counts": "!!!!"}),
            r"annotation 11: expected RLE counts of the characters .0. to .o., got .!.",
        ),
    ],
)
def test_coco_bad_values_name_the_file_and_item(tmp_path, images, annotation, error):
    path = coco_file(tmp_path, images, [annotation])
    with pytest.raises(FormatError, match=r"c\.json: " + error):
        read_dataset(path)


@pytest.mark.parametrize(
    ("annotation", "warning", "n_objects"),
    [
        (
            ann(bbox=[100, 100, 5, 5]),
            r"skipped 1 object\(s\) wholly outside the 20 x 10 image: annotation 11",
            0,
        ),
        (ann(point=[50, 5]), r"wholly outside the 20 x 10 image: annotation 11", 0),
        (
            ann(bbox=None, segmentation=[[100, 100, 110, 100, 110, 110]]),
            r"annotation 11: skipped: no bbox",
            0,
        ),
        (ann(bbox=None), r"annotation 11: skipped: no bbox, no segmentation", 0),
        (ann(bbox=[15, 5, 10, 10]), r"clipped 1 box\(es\) .*: annotation 11", 1),
        (ann(segmentation=[[1, 1, 1, 1, 1, 1]]), r"annotation 11: polygon 0 encloses no area", 1),
    ],
)
def test_coco_repairs_warn_naming_the_annotation(tmp_path, annotation, warning, n_objects):
    path = coco_file(tmp_path, None, [annotation])
    with pytest.warns(FormatWarning, match=warning):
        dataset = read_dataset(path)
    assert len(dataset.images[0].objects) == n_objects


def test_truncated_json_in_a_folder_is_named_when_no_format_fits(tmp_path):
    (tmp_path / "c.json").write_text('{"images": [], "annot')
    with pytest.raises(FormatError, match=r"no known dataset format found.*c\.json: expected valid JSON"):
        read_dataset(tmp_path)


# --------------------------------------------------------------------------- VOC, YOLO, DOTA
def voc_folder(root: Path, bndbox: str, size: str = "<width>100</width><height>100</height>") -> Path:
    (root / "Annotations").mkdir(parents=True)
    obj = f"<object><name>car</name><bndbox>{bndbox}</bndbox></object>"
    (root / "Annotations" / "x.xml").write_text(f"<annotation><size>{size}</size>{obj}</annotation>")
    png(root / "JPEGImages" / "x.jpg", 100, 100)
    return root


BOX = "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax>"


@pytest.mark.parametrize(
    ("bndbox", "size", "error"),
    [
        (
            BOX.replace(">1<", ">nan<", 1),
            None,
            r"object 0 \(car\): expected a finite number in <bndbox><xmin>",
        ),
        (
            BOX.replace(">10<", ">inf<", 1),
            None,
            r"object 0 \(car\): expected a finite number in <bndbox><xmax>",
        ),
        (BOX, "<width>inf</width><height>100</height>", r"expected a whole number >= 0 in <size><width>"),
        (BOX, "<width>-100</width><height>100</height>", r"expected a whole number >= 0 in <size><width>"),
    ],
)
def test_voc_bad_numbers_name_the_file_and_object(tmp_path, bndbox, size, error):
    root = voc_folder(tmp_path, bndbox, size or "<width>100</width><height>100</height>")
    with pytest.raises(FormatError, match=r"x\.xml: " + error):
        read_dataset(root)


def test_voc_object_wholly_outside_is_skipped_with_a_warning(tmp_path):
    root = voc_folder(tmp_path, "<xmin>500</xmin><ymin>500</ymin><xmax>600</xmax><ymax>600</ymax>")
    with pytest.warns(
        FormatWarning, match=r"x\.xml: skipped 1 object\(s\) wholly outside the 100 x 100 image"
    ):
        assert len(read_dataset(root).images[0].objects) == 0


def yolo_folder(root: Path, line: str, names: tuple[str, str] = ("classes.txt", "a\nb\n")) -> Path:
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "x.txt").write_text(line)
    (root / names[0]).write_text(names[1])
    png(root / "images" / "x.png", 100, 50)
    return root


@pytest.mark.parametrize(
    ("line", "names", "error"),
    [
        ("0 nan 0.5 0.2 0.2\n", None, r"labels/x\.txt:1: expected finite coordinates"),
        ("0 0.5 inf 0.2 0.2\n", None, r"labels/x\.txt:1: expected finite coordinates"),
        ("0 0.5 0.5 -0.2 0.2\n", None, r"labels/x\.txt:1: expected finite coordinates \(and w, h >= 0\)"),
        (
            "1 0.5 0.5 0.2 0.2\n",
            ("data.yaml", "names: {0: x, 5: y}\n"),
            r"data\.yaml: expected 'names' ids 0\.\.1",
        ),
        ("0 0.5 0.5 0.2 0.2\n", ("classes.txt", "\n\n"), r"classes\.txt: expected at least one class name"),
    ],
)
def test_yolo_bad_lines_name_the_file_and_line(tmp_path, line, names, error):
    root = yolo_folder(tmp_path, line, *([names] if names else []))
    with pytest.raises(FormatError, match=error):
        read_dataset(root)


def test_yolo_undecodable_label_file_is_named(tmp_path):
    root = yolo_folder(tmp_path, "")
    (root / "labels" / "x.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FormatError, match=r"labels/x\.txt: expected UTF-8 text"):
        read_dataset(root)


def test_yolo_label_files_without_an_image_are_reported(tmp_path):
    root = yolo_folder(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (root / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.warns(FormatWarning, match=r"1 label file\(s\) have no image in images/.*orphan\.txt"):
        assert len(read_dataset(root)) == 1


def test_yolo_writer_refuses_names_that_leave_the_folder(tmp_path):
    dataset = read_dataset(yolo_folder(tmp_path / "in", "0 0.5 0.5 0.2 0.2\n"))
    dataset.images[0].file_name = "../../escape.png"
    with pytest.raises(ValueError, match=r"'\.\./\.\./escape\.png': expected a relative image file name"):
        write_dataset(dataset, tmp_path / "out", "yolo")
    assert not (tmp_path / "escape.txt").exists()


def test_dota_object_wholly_outside_is_skipped_and_slivers_reported(tmp_path):
    (tmp_path / "labelTxt").mkdir()
    lines = "500 500 600 500 600 600 500 600 plane 0\n10 10 10 10 10 20 10 20 ship 2\n"
    (tmp_path / "labelTxt" / "P1.txt").write_text(lines)
    png(tmp_path / "images" / "P1.png", 100, 100)
    with pytest.warns(FormatWarning) as record:
        objects = read_dataset(tmp_path).images[0].objects
    messages = " ".join(str(w.message) for w in record)
    assert "P1.txt: skipped 1 object(s) wholly outside the 100 x 100 image: line 1" in messages
    assert "P1.txt: 1 object(s) whose 4 corners enclose no area (kept): line 2" in messages
    assert objects.labels.tolist() == [1]


# --------------------------------------------------------------------------- points
def test_points_outside_the_image_are_skipped_with_a_warning(tmp_path):
    png(tmp_path / "images" / "a.png")
    (tmp_path / "points.csv").write_text(
        "image,x,y,class\na.png,1,2,cell\na.png,-5,2,cell\na.png,20,10,cell\n"
    )
    with pytest.warns(FormatWarning, match=r"points\.csv: skipped 1 object\(s\) .*: point 1 of a\.png"):
        objects = read_dataset(tmp_path).images[0].objects
    np.testing.assert_array_equal(objects.points, [[1, 2], [20, 10]])


def test_points_csv_undecodable_and_json_duplicates_are_named(tmp_path):
    png(tmp_path / "images" / "a.png")
    (tmp_path / "points.csv").write_bytes(b"image,x,y,class\n\xff\xfe,1,2,c\n")
    with pytest.raises(FormatError, match=r"points\.csv: expected UTF-8 CSV text"):
        read_dataset(tmp_path)
    entry = {"file_name": "a.png", "width": 20, "height": 10, "points": [[1, 2, "a"]]}
    (tmp_path / "p.json").write_text(json.dumps({"classes": ["a"], "images": [entry, entry]}))
    with pytest.raises(FormatError, match=r"p\.json images\[1\]: file_name 'a\.png' is also images\[0\]"):
        read_dataset(tmp_path / "p.json", "points")


# --------------------------------------------------------------------------- writers, results, metrics
def test_writers_refuse_a_folder_for_a_file_and_a_file_for_a_folder(tmp_path):
    dataset = read_dataset(coco_file(tmp_path, None, [ann()]))
    with pytest.raises(FormatError, match=r"expected a file name to write coco to, got an existing folder"):
        write_dataset(dataset, tmp_path, "coco")
    with pytest.raises(
        FormatError, match=r"c\.json: expected a folder to write dota into, got an existing file"
    ):
        write_dataset(dataset, tmp_path / "c.json", "dota")


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            {"image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1},
            r"unknown image image_id=\[1\]",
        ),
        (
            {"image_id": True, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1},
            r"unknown image image_id=True",
        ),
        ({"image_id": 1, "category_id": {}, "bbox": [1, 1, 2, 2], "score": 1}, r"unknown category"),
        ({"image_id": 1, "category_id": 1, "bbox": ["a", 1, 2, 2], "score": 1}, r"expected 'bbox' as"),
        (
            {"image_id": 1, "category_id": 1, "poly": "abc", "score": 1},
            r"expected 'poly' as 8 finite numbers",
        ),
        (
            {
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [10, 20], "counts": [300, -100]},
                "score": 1,
            },
            r"bad 'segmentation' \(expected uncompressed RLE counts to be integers >= 0\)",
        ),
    ],
)
def test_results_bad_entries_name_the_file_and_entry(tmp_path, entry, error):
    dataset = read_dataset(coco_file(tmp_path, None, [ann()]))
    (tmp_path / "r.json").write_text(json.dumps([entry]))
    with pytest.raises(ResultsError, match=r"r\.json: entry 0: " + error):
        read_results(tmp_path / "r.json", dataset)


def test_results_undecodable_file_is_named(tmp_path):
    dataset = read_dataset(coco_file(tmp_path, None, [ann()]))
    (tmp_path / "r.json").write_bytes(b"\xff\xfe[")
    with pytest.raises(ResultsError, match=r"r\.json: expected UTF-8 JSON text"):
        read_results(tmp_path / "r.json", dataset)


def test_detection_ap_refuses_point_only_ground_truth():
    gt = Objects(labels=[0], boxes=np.full((1, 4), np.nan, np.float32), points=[[1, 2]])
    pred = Detections(np.array([[0, 1, 2, 3]], np.float32), [0.9], [0])
    with pytest.raises(ValueError, match=r"expected finite boxes, got \[nan, nan, nan, nan\] for object 0"):
        evaluate_detections([gt], [pred], num_classes=1)


def test_record_image_is_checked_against_its_annotated_size(tmp_path):
    images = [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}]
    record = read_dataset(coco_file(tmp_path, images, [ann()])).images[0]
    with pytest.raises(
        ImageError, match=r"a\.png: expected the annotated size 200 x 100 .* got 20 x 10 pixels"
    ):
        record.load_image()


@pytest.mark.parametrize(
    ("box", "outside"),
    [
        ([1, 1, 5, 5], False),
        ([0, 0, 0, 0], False),
        ([20, 0, 30, 5], True),
        ([-5, -5, 0, 0], True),
        ([-5, -5, -1, -1], True),
        ([np.nan] * 4, False),
    ],
)
def test_outside_image_table(box, outside):
    assert outside_image(np.array([box], np.float32), 20, 10).tolist() == [outside]


def test_drop_outside_checks_points_too():
    boxes = np.full((2, 4), np.nan, np.float32)
    with pytest.warns(FormatWarning, match=r"f: skipped 1 object\(s\) .*: b"):
        keep = drop_outside(boxes, 20, 10, "f", ["a", "b"], np.array([[20, 10], [20.5, 1]]))
    assert keep.tolist() == [True, False]
