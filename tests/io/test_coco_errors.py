"""COCO files that break the format: an error naming the file and the item, or a warning for repairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fewclick.io import coco, read_dataset
from fewclick.io.errors import FormatError
from fewclick.io.parsing import FormatWarning


def write_coco(path: Path, annotations: list[dict], **extra) -> Path:
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "dog"}],
        **extra,
    }
    path.write_text(json.dumps(data))
    return path


def ann(**fields) -> dict:
    return {"id": 11, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0, **fields}


def read_quietly(path: Path):
    with pytest.warns(FormatWarning, match="image files not found"):
        return coco.read(path)


def test_truncated_json_names_the_file_and_position(tmp_path):
    path = write_coco(tmp_path / "t.json", [ann()])
    path.write_text(path.read_text()[:-30])
    with pytest.raises(FormatError, match=r"t.json: expected valid JSON, got an error at line 1 column \d+"):
        coco.read(path)


@pytest.mark.parametrize(
    ("annotation", "error"),
    [
        (ann(image_id=99), r"t.json: annotation 11: expected an image_id listed in 'images', got 99"),
        (ann(category_id=7), r"t.json: annotation 11: expected a category_id among \[1\], got 7"),
        (ann(bbox=[1, 2, 3]), r"annotation 11: expected 'bbox' to be 4 numbers, got \[1, 2, 3\]"),
        (ann(bbox=[1, 2, -3, 4]), r"annotation 11: expected bbox \[x, y, w, h\] with w, h >= 0"),
        (ann(segmentation=[[1, 2, 3]]), r"annotation 11: expected polygon 0 to be an even-length list"),
        (ann(segmentation="x"), r"annotation 11: expected a polygon list or an RLE dict"),
        (ann(segmentation={"size": [5, 5], "counts": "abc"}), r"expected RLE size \[10, 20\] \(the image\)"),
        (ann(segmentation={"size": [10, 20], "counts": [3, 4]}), r"RLE counts summing to 200, got 7"),
        (ann(rbox=[1, 2]), r"annotation 11: expected 'rbox' to be 5 numbers"),
    ],
)
def test_bad_annotation_names_the_file_and_annotation(tmp_path, annotation, error):
    with pytest.raises(FormatError, match=error):
        coco.read(write_coco(tmp_path / "t.json", [annotation]))


def test_unknown_category_in_the_categories_list_is_rejected(tmp_path):
    path = write_coco(tmp_path / "t.json", [ann()], categories=[{"id": 1}])
    with pytest.raises(
        FormatError, match=r"t.json: expected each category to have 'id' and 'name', got \{'id': 1\}"
    ):
        coco.read(path)


def test_degenerate_polygon_is_skipped_with_a_warning_naming_the_annotation(tmp_path):
    path = write_coco(tmp_path / "t.json", [ann(segmentation=[[1, 1, 3, 1], [1, 1, 3, 1, 3, 3]])])
    with pytest.warns(FormatWarning, match=r"t.json: annotation 11: skipped polygon 0 with 2 point\(s\)"):
        objs = read_quietly(path).images[0].objects
    assert len(objs.segmentations[0]) == 1 and objs.segmentations[0][0].shape == (3, 2)


def test_only_degenerate_polygons_leave_no_segmentation(tmp_path):
    path = write_coco(tmp_path / "t.json", [ann(segmentation=[[1, 1]])])
    with pytest.warns(FormatWarning, match="skipped polygon 0 with 1 point"):
        objs = read_quietly(path).images[0].objects
    assert objs.segmentations is None


def test_box_outside_the_image_is_clipped_with_a_warning_naming_file_and_annotation(tmp_path):
    path = write_coco(tmp_path / "t.json", [ann(bbox=[15, -2, 10, 5]), ann(id=12)])
    with pytest.warns(
        FormatWarning, match=r"t.json: clipped 1 box\(es\) .* 20 x 10 image .*: annotation 11$"
    ):
        objs = read_quietly(path).images[0].objects
    np.testing.assert_array_equal(objs.boxes, [[15, 0, 20, 3], [1, 1, 3, 3]])


def test_same_image_id_in_two_files_is_rejected(tmp_path):
    (tmp_path / "annotations").mkdir()
    write_coco(tmp_path / "annotations" / "instances_a.json", [ann()])
    write_coco(tmp_path / "annotations" / "instances_b.json", [ann()])
    with pytest.raises(FormatError, match=r"instances_b.json: image id 1 is also in .*instances_a.json"):
        read_quietly(tmp_path)


def test_merged_files_must_agree_on_category_names(tmp_path):
    (tmp_path / "annotations").mkdir()
    write_coco(tmp_path / "annotations" / "instances_a.json", [ann()])
    other = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "annotations" / "instances_b.json").write_text(json.dumps(other))
    with pytest.raises(FormatError, match=r"instances_b.json: category id 1 is named 'cat', expected 'dog'"):
        read_quietly(tmp_path)


def test_a_folder_without_coco_files_is_not_coco(tmp_path):
    (tmp_path / "notes.json").write_text("[1, 2]")
    assert not coco.sniff(tmp_path)
    with pytest.raises(FormatError, match="expected a COCO instances JSON or a folder"):
        coco.read(tmp_path)


def test_read_dataset_detects_coco_and_sets_the_format(tmp_path):
    write_coco(tmp_path / "t.json", [ann()])
    with pytest.warns(FormatWarning, match="image files not found"):
        ds = read_dataset(tmp_path / "t.json")
    assert ds.format == "coco" and len(ds.images[0].objects) == 1
