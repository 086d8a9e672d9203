"""COCO panoptic writing, write-then-read round trips (tiny objects, random label maps and
the shared panopticapi sample), and the reader's errors for PNGs that disagree with
their JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from conftest import shared_dataset
from fewclick.io import FormatError, coco_panoptic, detect_format, read_dataset, write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.images import load_array
from fewclick.io.labelmap import label_objects
from fewclick.io.parsing import FormatWarning
from fewclick.io.rle import mask_to_rle, objects_masks
from fewclick.types import Objects


def ascii_masks(art: str) -> dict[str, np.ndarray]:
    """``{letter: bool[H, W]}`` for every letter drawn in ``art`` ("." = none)."""
    rows = [r.strip() for r in art.strip().splitlines()]
    grid = np.array([list(r) for r in rows])
    return {c: grid == c for c in sorted(set(grid.ravel()) - {"."})}


def dataset(objects: Objects, width: int, height: int, **extra) -> Dataset:
    record = ImageRecord("street.jpg", width, height, objects, id=7)
    return Dataset(["road", "car"], [record], category_ids=[21, 3], extra=extra)


def mask_objects(masks: list[np.ndarray], labels: list[int]) -> Objects:
    rles = [mask_to_rle(m) for m in masks]
    return Objects(labels, np.zeros((len(masks), 4)), segmentations=rles)


def test_the_written_files_hold_ids_categories_areas_and_xywh_boxes(tmp_path):
    m = ascii_masks("""
        RRRRRR
        RRRRRR
        ..CC..
    """)
    objects = mask_objects([m["R"], m["C"]], [0, 1])
    objects.ignore[1] = True
    messages = coco_panoptic.write(dataset(objects, 6, 3, isthing=[False, True]), tmp_path / "p.json")
    assert messages == []
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["images"] == [{"id": 7, "file_name": "street.jpg", "width": 6, "height": 3}]
    assert data["categories"] == [
        {"id": 21, "name": "road", "isthing": 0},
        {"id": 3, "name": "car", "isthing": 1},
    ]
    assert data["annotations"] == [
        {
            "image_id": 7,
            "file_name": "street.png",
            "segments_info": [
                {"id": 1, "category_id": 21, "iscrowd": 0, "area": 12, "bbox": [0, 0, 6, 2]},
                {"id": 2, "category_id": 3, "iscrowd": 1, "area": 2, "bbox": [2, 2, 2, 1]},
            ],
        }
    ]
    ids = coco_panoptic.segment_ids(load_array(tmp_path / "p" / "street.png"))
    np.testing.assert_array_equal(ids, m["R"] * 1 + m["C"] * 2)
    assert detect_format(tmp_path) == "coco_panoptic"


def test_without_isthing_every_class_is_a_thing(tmp_path):
    m = ascii_masks("RR\n.C")
    coco_panoptic.write(dataset(mask_objects([m["R"], m["C"]], [0, 1]), 2, 2), tmp_path / "p.json")
    categories = json.loads((tmp_path / "p.json").read_text())["categories"]
    assert [c["isthing"] for c in categories] == [1, 1]


@pytest.mark.parametrize("car_first", [False, True])
def test_overlaps_go_to_the_smaller_object_in_either_order_and_the_loss_is_reported(tmp_path, car_first):
    road = ascii_masks("RRRRRR\nRRRRRR\nRRRRRR")["R"]
    car = ascii_masks("......\n.CC...\n.CC...")["C"]
    masks, labels = ([car, road], [1, 0]) if car_first else ([road, car], [0, 1])
    with pytest.warns(
        FormatWarning, match=r"4 mask pixel\(s\) lost to overlapping objects .* street.jpg \(4\)"
    ):
        messages = coco_panoptic.write(dataset(mask_objects(masks, labels), 6, 3), tmp_path / "p.json")
    assert len(messages) == 1 and "4 mask pixel(s) lost" in messages[0]
    back = coco_panoptic.read(tmp_path / "p.json", images_dir=tmp_path)
    objs = back.images[0].objects
    by_class = {
        back.classes[label]: mask for label, mask in zip(objs.labels, objects_masks(objs, 3, 6), strict=True)
    }
    np.testing.assert_array_equal(by_class["car"], car)
    np.testing.assert_array_equal(by_class["road"], road & ~car)


def test_equal_areas_keep_the_earlier_object_and_wholly_covered_or_maskless_objects_are_reported(tmp_path):
    m = ascii_masks("""
        AAB.
        AAB.
    """)
    first = m["A"]
    second = m["A"] | m["B"]
    second[:, 0] = False  # as large as the first, overlapping it in column 1
    covered = first.copy()  # as large too, later: loses every pixel
    boxed = Objects([0], [[0, 0, 2, 2]])
    objects = mask_objects([first, second, covered], [1, 1, 1])
    objects = Objects(
        np.concatenate([objects.labels, boxed.labels]),
        np.concatenate([objects.boxes, boxed.boxes]),
        segmentations=objects.segmentations + [None],
    )
    with pytest.warns(FormatWarning) as caught:
        messages = coco_panoptic.write(dataset(objects, 4, 2), tmp_path / "p.json")
    assert [str(w.message) for w in caught if w.category is FormatWarning] == messages
    assert len(messages) == 3
    assert "6 mask pixel(s) lost" in messages[0]  # 2 of the second object's, 4 of the third's
    assert "1 object(s) not written: wholly covered" in messages[1]
    assert "1 object(s) without a mask not written" in messages[2]
    ids = coco_panoptic.segment_ids(load_array(tmp_path / "p" / "street.png"))
    np.testing.assert_array_equal(ids, first * 1 + m["B"] * 2)


def test_segment_ids_of_a_read_dataset_are_kept_and_bad_ones_replaced(tmp_path):
    m = ascii_masks("AB")
    objects = mask_objects([m["A"], m["B"]], [0, 1])
    objects.extra["segment_ids"] = [300, 2**24]  # the second does not fit the PNG: 1..N instead
    coco_panoptic.write(dataset(objects, 2, 1), tmp_path / "p.json")
    assert load_array(tmp_path / "p" / "street.png").tolist() == [[[1, 0, 0], [2, 0, 0]]]
    objects.extra["segment_ids"] = [300, 70000]
    coco_panoptic.write(dataset(objects, 2, 1), tmp_path / "p.json")
    assert load_array(tmp_path / "p" / "street.png").tolist() == [[[44, 1, 0], [112, 17, 1]]]


@pytest.mark.parametrize(
    "names, message",
    [
        (["a.jpg", "a.png"], r"one label PNG name per image, got \['a.png'\]"),
        (["../a.jpg"], "expected a relative file name without '..'"),
        (["/abs/a.jpg"], "expected a relative file name without '..'"),
    ],
)
def test_image_names_that_cannot_name_a_png_are_refused(tmp_path, names, message):
    records = [ImageRecord(n, 2, 2, Objects.empty(), id=i) for i, n in enumerate(names)]
    with pytest.raises(ValueError, match=message):
        coco_panoptic.write(Dataset(["x"], records), tmp_path / "p.json")


label_maps = arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 4))


@pytest.mark.filterwarnings("ignore::fewclick.io.parsing.FormatWarning")  # no image files
@settings(max_examples=30, deadline=None)
@given(label_maps, st.sampled_from(["coco_panoptic", "masks"]))
def test_a_label_map_written_and_read_gives_the_same_objects(labels, format):
    objects = label_objects(labels, skip=(0,))
    objects.labels[:] = np.arange(len(objects)) % 2
    objects.ignore[:] = np.arange(len(objects)) % 3 == 2
    height, width = labels.shape
    ds = Dataset(["road", "car"], [ImageRecord("a.jpg", width, height, objects, id=1)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("p.json" if format == "coco_panoptic" else "m")
        assert write_dataset(ds, out, format) == []
        back = read_dataset(out).images[0].objects
    np.testing.assert_array_equal(objects_masks(back, height, width), objects_masks(objects, height, width))
    np.testing.assert_array_equal(back.labels, objects.labels)
    np.testing.assert_array_equal(back.ignore, objects.ignore)
    np.testing.assert_array_equal(back.boxes, objects.boxes)


# --------------------------------------------------------------------------- bad PNGs
def _written(folder: Path) -> Path:
    m = ascii_masks("RRC\nRRC")
    coco_panoptic.write(dataset(mask_objects([m["R"], m["C"]], [0, 1]), 3, 2), folder / "p.json")
    return folder / "p.json"


def _edit(file: Path, change) -> None:
    data = json.loads(file.read_text())
    change(data)
    file.write_text(json.dumps(data))


def _png(folder: Path, ids: list[list[int]]) -> None:
    Image.fromarray(coco_panoptic.segment_png(np.array(ids))).save(folder / "p" / "street.png")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda f: (f.parent / "p" / "street.png").unlink(),
            r"image 7: expected its segment PNG at .*street.png",
        ),
        (
            lambda f: _png(f.parent, [[1, 1, 2], [1, 1, 5]]),
            r"image 7: .*street.png holds segment ids \[5\] that",
        ),
        (
            lambda f: _png(f.parent, [[1, 1, 1], [1, 1, 1]]),
            r"image 7: segments \[2\] of segments_info have no",
        ),
        (lambda f: _png(f.parent, [[1, 1], [1, 1]]), r"image 7: expected a segment PNG of 3 x 2, got"),
        (
            lambda f: _edit(f, lambda d: d["annotations"][0]["segments_info"][1].update(id=1)),
            r"image 7: expected unique segment ids in segments_info, got \[1\] twice",
        ),
        (
            lambda f: _edit(f, lambda d: d["annotations"].append(d["annotations"][0])),
            "image 7: expected one annotation per image, got two",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::fewclick.io.parsing.FormatWarning")  # no image files
def test_a_png_that_disagrees_with_its_json_is_an_error_naming_the_image(tmp_path, damage, message):
    file = _written(tmp_path)
    coco_panoptic.read(file)  # readable before the damage
    damage(file)
    with pytest.raises(FormatError, match=message):
        coco_panoptic.read(file)


# --------------------------------------------------------------------------- shared data
@pytest.mark.shared_data
def test_the_panopticapi_sample_written_and_read_is_identical(tmp_path):
    root = shared_dataset("coco_panoptic_sample")
    source = coco_panoptic.read(root)
    assert write_dataset(source, tmp_path / "panoptic_sample.json", "coco_panoptic") == []
    back = read_dataset(tmp_path)
    assert back.format == "coco_panoptic"
    assert back.classes == source.classes and back.category_ids == source.category_ids
    assert back.extra == source.extra  # category records (isthing, colour, supercategory) and isthing
    assert [r.path.resolve() for r in back.images] == [r.path.resolve() for r in source.images]
    for a, b in zip(source.images, back.images, strict=True):
        assert (a.id, a.file_name, a.width, a.height) == (b.id, b.file_name, b.width, b.height)
        np.testing.assert_array_equal(a.objects.labels, b.objects.labels)
        np.testing.assert_array_equal(a.objects.ignore, b.objects.ignore)
        np.testing.assert_array_equal(a.objects.boxes, b.objects.boxes)
        assert a.objects.segmentations == b.objects.segmentations  # the same RLE, pixel for pixel
        assert a.objects.extra["segment_ids"] == b.objects.extra["segment_ids"]
        original = root / "sample_data" / "panoptic_examples" / f"{Path(a.file_name).stem}.png"
        written = tmp_path / "panoptic_sample" / f"{Path(a.file_name).stem}.png"
        np.testing.assert_array_equal(load_array(written), load_array(original))


def test_a_png_image_named_like_its_segment_png_is_not_taken_from_the_segment_folder(tmp_path):
    """``panoptic.json`` makes the split name ``panoptic``, the segment PNG folder's name:
    an image ``street.png`` must not be found as ``panoptic/street.png``."""
    m = ascii_masks("RRC\nRRC")
    record = ImageRecord("street.png", 3, 2, mask_objects([m["R"], m["C"]], [0, 1]), id=7)
    coco_panoptic.write(Dataset(["road", "car"], [record]), tmp_path / "panoptic.json")
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.fromarray(np.full((2, 3, 3), 9, np.uint8)).save(tmp_path / "images" / "street.png")
    back = coco_panoptic.read(tmp_path / "panoptic.json").images[0]
    assert back.path == tmp_path / "images" / "street.png"
