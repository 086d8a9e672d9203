"""Instance mask PNGs: write-then-read, detection beside the other label-map formats, and
an error naming the file and the problem for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import FormatError, coco_panoptic, detect_format, masks, read_dataset, write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.images import load_array
from fewclick.io.parsing import FormatWarning
from fewclick.io.rle import mask_to_rle, objects_masks
from fewclick.types import Objects

LABELS = np.array(
    [
        [0, 1, 1, 0, 0],
        [0, 1, 1, 2, 2],
        [3, 3, 3, 2, 2],
    ]
)


def image(path: Path, width: int = 5, height: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(path)
    return path


def written(folder: Path, with_image: bool = True) -> Path:
    """A masks folder of one 5 x 3 image: instances 1 and 3 are cars, 2 is road (crowd)."""
    source = image(folder / "source" / "street.jpg") if with_image else None
    rles = [mask_to_rle(LABELS == i) for i in (1, 2, 3)]
    objects = Objects([0, 1, 0], np.zeros((3, 4)), segmentations=rles, ignore=[False, True, False])
    record = ImageRecord("street.jpg", 5, 3, objects, path=source, id=1)
    assert write_dataset(Dataset(["car", "road"], [record]), folder / "out", "masks") == []
    return folder / "out"


def test_written_masks_are_16_bit_indices_with_their_classes_and_read_back(tmp_path):
    out = written(tmp_path)
    pixels = load_array(out / "masks" / "street.png")
    assert pixels.dtype == np.uint16
    np.testing.assert_array_equal(pixels, LABELS)
    assert json.loads((out / "masks.json").read_text()) == {
        "classes": ["car", "road"],
        "images": [
            {
                "file_name": "street.jpg",
                "mask": "masks/street.png",
                "instances": {"1": "car", "2": "road", "3": "car"},
                "crowd": [2],
            }
        ],
    }
    assert detect_format(out) == "masks" and detect_format(out / "masks.json") == "masks"
    ds = read_dataset(out)
    record = ds.images[0]
    assert record.path.resolve() == (tmp_path / "source" / "street.jpg").resolve()
    assert ds.classes == ["car", "road"] and record.objects.labels.tolist() == [0, 1, 0]
    assert record.objects.ignore.tolist() == [False, True, False]
    np.testing.assert_array_equal(record.objects.boxes, [[1, 0, 3, 2], [3, 1, 5, 3], [0, 2, 3, 3]])
    masks_back = objects_masks(record.objects, 3, 5)
    for i in (1, 2, 3):
        np.testing.assert_array_equal(masks_back[i - 1], LABELS == i)


def test_an_8_bit_one_channel_index_png_is_read_too(tmp_path):
    out = written(tmp_path)
    Image.fromarray(LABELS.astype(np.uint8)).save(out / "masks" / "street.png")
    assert len(read_dataset(out).images[0].objects) == 3


@pytest.mark.parametrize(
    "layout",
    [
        {"masks.json": None},  # no mask PNGs and no images: nothing else claims it either
        {"images/a.png": "image", "masks/a.png": "image"},  # no masks.json: not this format
    ],
)
def test_masks_sniff_needs_its_json(tmp_path, layout):
    for name, kind in layout.items():
        if kind == "image":
            image(tmp_path / name)
        else:
            (tmp_path / name).write_text(json.dumps({"classes": ["a"], "images": []}))
    assert masks.sniff(tmp_path) is ("masks.json" in layout)


def test_the_other_label_map_layouts_are_not_taken_for_masks(tmp_path):
    """A DSB 2018 sample folder holds ``masks/`` too; a written masks folder is not DSB's."""
    sample = tmp_path / "dsb" / "abc"
    image(sample / "images" / "abc.png")
    (sample / "masks").mkdir()
    Image.fromarray((LABELS == 1).astype(np.uint8) * 255).save(sample / "masks" / "m1.png")
    assert not masks.sniff(tmp_path / "dsb") and detect_format(tmp_path / "dsb") == "dsb2018"
    assert detect_format(written(tmp_path / "w")) == "masks"


def _damage_json(out: Path, change) -> None:
    data = json.loads((out / "masks.json").read_text())
    change(data["images"][0])
    (out / "masks.json").write_text(json.dumps(data))


def _save_mask(out: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels).save(out / "masks" / "street.png")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda out: _save_mask(out, np.zeros((4, 5), np.uint16)),
            r"images\[0\] \('street.jpg'\): expected the mask street.png to have the image's size "
            r"5 x 3, got 5 x 4",
        ),
        (
            lambda out: _save_mask(out, np.zeros((3, 5, 3), np.uint8)),
            r"street.png: expected a one-channel 16-bit PNG of instance indices \(0 = none\), "
            r"got 3 channels of uint8",
        ),
        (
            lambda out: _damage_json(out, lambda e: e["instances"].update({"7": "car"})),
            r"'instances' names indices \[7\] that street.png does not hold",
        ),
        (
            lambda out: _damage_json(out, lambda e: e["instances"].pop("3")),
            r"street.png holds instance indices \[3\] that 'instances' does not name",
        ),
        (
            lambda out: _damage_json(out, lambda e: e["instances"].update({"1": "bus"})),
            r"instance 1: unknown class 'bus'; 'classes' has \['car', 'road'\]",
        ),
        (
            lambda out: _damage_json(out, lambda e: e["instances"].update({"x": "car"})),
            r"expected instance indices 1..65535 in 'instances', got 'x'",
        ),
        (
            lambda out: _damage_json(out, lambda e: e.update(crowd=[9])),
            r"expected 'crowd' to list indices named in 'instances', got \[9\]",
        ),
        (
            lambda out: (out / "masks" / "street.png").unlink(),
            r"images\[0\] \('street.jpg'\): expected its mask PNG at .*street.png, found no such file",
        ),
        (
            lambda out: _damage_json(out, lambda e: e.update(mask="../elsewhere.png")),
            r"expected a mask file inside the dataset folder, got '../elsewhere.png'",
        ),
    ],
)
def test_bad_masks_are_errors_naming_the_file_and_the_problem(tmp_path, damage, message):
    out = written(tmp_path)
    read_dataset(out)  # readable before the damage
    damage(out)
    with pytest.raises(FormatError, match=message):
        read_dataset(out)


def test_without_the_image_the_mask_gives_the_size(tmp_path):
    out = written(tmp_path, with_image=False)
    with pytest.warns(FormatWarning, match="1 of 1 image files not found .* their sizes are the masks'"):
        record = read_dataset(out).images[0]
    assert (record.width, record.height, record.path) == (5, 3, None)


@pytest.mark.shared_data
def test_the_panopticapi_sample_as_masks_keeps_every_segment(tmp_path):
    source = coco_panoptic.read(shared_dataset("coco_panoptic_sample"))
    assert write_dataset(source, tmp_path, "masks") == []
    back = read_dataset(tmp_path)
    assert back.format == "masks" and back.classes == source.classes
    for a, b in zip(source.images, back.images, strict=True):
        assert (a.file_name, a.width, a.height) == (b.file_name, b.width, b.height)
        np.testing.assert_array_equal(a.objects.labels, b.objects.labels)
        np.testing.assert_array_equal(a.objects.ignore, b.objects.ignore)
        np.testing.assert_array_equal(a.objects.boxes, b.objects.boxes)
        assert a.objects.segmentations == b.objects.segmentations
