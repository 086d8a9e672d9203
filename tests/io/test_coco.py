"""COCO instances and panoptic readers, on tiny hand-made files and on the shared samples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import coco, coco_panoptic, rle
from fewclick.io.errors import FormatError
from fewclick.io.parsing import FormatWarning

MASK = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0],
    ],
    bool,
)


def tiny_coco(folder: Path, annotations: list[dict] | None = None) -> Path:
    """A 5 x 4 image with a polygon, a compressed RLE crowd, a point and an oriented box."""
    compressed = rle.mask_to_rle(MASK)
    anns = annotations or [
        {
            "id": 1,
            "image_id": 7,
            "category_id": 3,
            "bbox": [1, 1, 2, 2],
            "iscrowd": 0,
            "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]],
            "area": 4,
        },
        {
            "id": 2,
            "image_id": 7,
            "category_id": 5,
            "bbox": [1, 1, 3, 2],
            "iscrowd": 1,
            "segmentation": compressed,
            "area": 5,
        },
        {"id": 3, "image_id": 7, "category_id": 3, "iscrowd": 0, "point": [2.5, 1.5], "area": 0},
        {
            "id": 4,
            "image_id": 7,
            "category_id": 5,
            "bbox": [0, 0, 4, 2],
            "iscrowd": 0,
            "rbox": [2, 1, 4, 2, 0],
            "difficult": 1,
        },
    ]
    data = {
        "images": [{"id": 7, "file_name": "a.png", "width": 5, "height": 4}],
        "annotations": anns,
        "categories": [{"id": 5, "name": "cat"}, {"id": 3, "name": "dog"}],
    }
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 4)).save(folder / "a.png")
    path = folder / "tiny.json"
    path.write_text(json.dumps(data))
    return path


def test_tiny_coco_is_read_field_by_field(tmp_path):
    ds = coco.read(tiny_coco(tmp_path))
    assert ds.classes == ["cat", "dog"] and ds.category_ids == [5, 3]
    rec = ds.images[0]
    assert (rec.file_name, rec.width, rec.height, rec.id, rec.path) == ("a.png", 5, 4, 7, tmp_path / "a.png")
    objs = rec.objects
    assert objs.labels.tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(objs.boxes[[0, 1, 3]], [[1, 1, 3, 3], [1, 1, 4, 3], [0, 0, 4, 2]])
    assert np.isnan(objs.boxes[2]).all()
    np.testing.assert_array_equal(objs.points[2], [2.5, 1.5])
    assert np.isnan(objs.points[[0, 1, 3]]).all()
    np.testing.assert_array_equal(objs.rboxes[3], [2, 1, 4, 2, 0])
    assert objs.ignore.tolist() == [False, True, False, False]
    assert objs.difficult.tolist() == [0, 0, 0, 1]
    assert objs.segmentations[0][0].dtype == np.float32 and objs.segmentations[0][0].shape == (4, 2)
    np.testing.assert_array_equal(rle.rle_to_mask(objs.segmentations[1]), MASK)
    assert objs.segmentations[2] is None and objs.segmentations[3] is None


def test_write_then_read_gives_the_same_objects(tmp_path):
    ds = coco.read(tiny_coco(tmp_path / "in"))
    coco.write(ds, tmp_path / "out" / "again.json")
    back = coco.read(tmp_path / "out" / "again.json", images_dir=tmp_path / "in")
    assert_same_objects(ds, back)
    written = json.loads((tmp_path / "out" / "again.json").read_text())
    assert [a["area"] for a in written["annotations"]] == [4.0, 5.0, 0.0, 8.0]
    assert "bbox" not in written["annotations"][2] and written["annotations"][2]["point"] == [2.5, 1.5]


def assert_same_objects(a, b) -> None:
    assert a.classes == b.classes and a.category_ids == b.category_ids
    assert len(a.images) == len(b.images)
    for ra, rb in zip(a.images, b.images, strict=True):
        oa, ob = ra.objects, rb.objects
        np.testing.assert_array_equal(oa.labels, ob.labels)
        np.testing.assert_array_equal(oa.boxes, ob.boxes)
        np.testing.assert_array_equal(oa.ignore, ob.ignore)
        np.testing.assert_array_equal(oa.difficult, ob.difficult)
        for name in ("rboxes", "points"):
            ca, cb = getattr(oa, name), getattr(ob, name)
            assert (ca is None) == (cb is None), name
            if ca is not None:
                np.testing.assert_array_equal(ca, cb)
        assert (oa.segmentations is None) == (ob.segmentations is None)
        for sa, sb in zip(oa.segmentations or [], ob.segmentations or [], strict=True):
            assert type(sa) is type(sb)
            if isinstance(sa, dict):
                assert sa == sb
            elif sa is not None:
                assert len(sa) == len(sb)
                for pa, pb in zip(sa, sb, strict=True):
                    np.testing.assert_array_equal(pa, pb)


def test_sniff_tells_instances_from_panoptic(tmp_path):
    instances = tiny_coco(tmp_path)
    panoptic = tmp_path / "panoptic_x.json"
    panoptic.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1, "segments_info": []}]}))
    assert coco.sniff(instances) and not coco_panoptic.sniff(instances)
    assert coco_panoptic.sniff(panoptic) and not coco.sniff(panoptic)
    assert coco.sniff(tmp_path) and not coco.sniff(tmp_path / "a.png")


def tiny_panoptic(folder: Path, category_id: int = 1) -> Path:
    ids = np.zeros((4, 5), np.int64)
    ids[MASK] = 300  # R = 44, G = 1: checks the 256 * G term
    ids[3, :] = 5
    png = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    (folder / "panoptic_tiny").mkdir(parents=True)
    Image.fromarray(png).save(folder / "panoptic_tiny" / "a.png")
    segments = [
        {"id": 300, "category_id": category_id, "iscrowd": 0, "bbox": [1, 1, 3, 2], "area": 5},
        {"id": 5, "category_id": 2, "iscrowd": 1, "bbox": [0, 3, 5, 1], "area": 5},
    ]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 5, "height": 4}],
        "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": segments}],
        "categories": [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}],
    }
    (folder / "panoptic_tiny.json").write_text(json.dumps(data))
    return folder / "panoptic_tiny.json"


def test_tiny_panoptic_segments_become_objects(tmp_path):
    with pytest.warns(FormatWarning, match="1 of 1 image files not found"):
        ds = coco_panoptic.read(tiny_panoptic(tmp_path))
    objs = ds.images[0].objects
    assert ds.classes == ["person", "sky"] and ds.extra["isthing"] == [True, False]
    assert objs.labels.tolist() == [0, 1] and objs.ignore.tolist() == [False, True]
    assert objs.extra["segment_ids"] == [300, 5]
    masks = rle.objects_masks(objs, 4, 5)
    np.testing.assert_array_equal(masks[0], MASK)
    assert masks[1][3].all() and masks[1].sum() == 5
    np.testing.assert_array_equal(objs.boxes, [[1, 1, 4, 3], [0, 3, 5, 4]])


def test_panoptic_unknown_category_names_the_segment(tmp_path):
    with pytest.raises(FormatError, match=r"panoptic_tiny.json: image 1: segment 300: unknown category_id 9"):
        coco_panoptic.read(tiny_panoptic(tmp_path, category_id=9), images_dir=tmp_path)


# --------------------------------------------------------------------------- shared data
@pytest.mark.shared_data
def test_coco_tiny_counts_match_source_md():
    root = shared_dataset("coco_tiny")
    ds = coco.read(root)
    objs = [r.objects for r in ds.images]
    assert len(ds) == 120
    assert sum(len(o) for o in objs) == 1145
    assert sum(int(o.ignore.sum()) for o in objs) == 15
    assert len({ds.classes[label] for o in objs for label in o.labels}) == 80
    assert Counter(r.extra["source"] for r in ds.images) == {
        "instances_train2017.json": 60,
        "instances_val2017.json": 60,
    }
    assert all(r.path is not None and r.path.parent.name in ("train2017", "val2017") for r in ds.images)
    crowd = [s for o in objs for s, c in zip(o.segmentations, o.ignore, strict=True) if c]
    assert all(isinstance(s, dict) and isinstance(s["counts"], list) for s in crowd)
    assert ds.category_ids[:3] == [1, 2, 3] and ds.classes[:3] == ["person", "bicycle", "car"]


@pytest.mark.shared_data
def test_coco_tiny_write_read_is_identical(tmp_path):
    ds = coco.read(shared_dataset("coco_tiny"))
    coco.write(ds, tmp_path / "all.json")
    back = coco.read(tmp_path / "all.json")  # file names lead back to the images where they are
    assert [r.path.resolve() for r in back.images] == [r.path.resolve() for r in ds.images]
    assert_same_objects(ds, back)
    assert back.extra["categories"][0]["supercategory"] == "person"


@pytest.mark.shared_data
def test_coco_panoptic_sample_matches_its_detection_format_copy():
    root = shared_dataset("coco_panoptic_sample")
    assert coco_panoptic.sniff(root) and not coco.sniff(root)
    ds = coco_panoptic.read(root)
    assert [len(r.objects) for r in ds.images] == [18, 32]
    assert [(r.width, r.height) for r in ds.images] == [(640, 427), (640, 360)]
    assert all(r.path is not None and r.path.parent.name == "input_images" for r in ds.images)
    assert len(ds.classes) == 133 and sum(ds.extra["isthing"]) == 80
    detection = coco.read(
        root / "sample_data" / "panoptic_coco_detection_format.json",
        images_dir=root / "sample_data" / "input_images",
    )
    for pan, det in zip(ds.images, detection.images, strict=True):
        np.testing.assert_array_equal(pan.objects.labels, det.objects.labels)
        np.testing.assert_array_equal(pan.objects.boxes, det.objects.boxes)
        np.testing.assert_array_equal(
            rle.objects_masks(pan.objects, pan.height, pan.width),
            rle.objects_masks(det.objects, det.height, det.width),
        )
