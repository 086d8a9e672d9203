"""`fewclick data info` on every real dataset under ../shared/data, against its SOURCE.md."""

import json

import pytest

from fewclick.cli import main

# name: (format, images, objects, ignore/crowd objects, {class: count} as SOURCE.md states)
EXPECTED = {
    "ade20k_sample": ("ade20k", 3, 139, None, {}),
    "bccd": ("voc", 273, 3680, 0, {"RBC": 3124, "WBC": 281, "Platelets": 275}),
    "coco_panoptic_sample": ("coco_panoptic", 2, 50, None, {}),
    "coco_tiny": ("coco", 120, 1145, 15, {}),
    "coelho2009_nuclei": ("coelho2009", 37, 1591, 0, {"nucleus": 1591}),
    # 21,491 detection points + 40 class-file points that match no detection point; the
    # per-class counts are the class files' (SOURCE.md), 5,208 detection points have no class.
    "crchisto_phenotypes": (
        "crchisto",
        75,
        21491,
        0,
        {"epithelial": 5857, "fibroblast": 4278, "inflammatory": 4789, "others": 1399},
    ),
    "dota_samples": ("dota", 5, 651, None, {"small-vehicle": 343, "large-vehicle": 308}),
    "dsb2018_nuclei": ("dsb2018", 100, 4182, 0, {"nucleus": 4182}),
    "grabcut_scribbles": ("grabcut", 23, 23, 0, {}),
    "hit_uav": (
        "voc",
        218,
        1828,
        9,
        {"Person": 1025, "Car": 489, "Bicycle": 297, "OtherVehicle": 8, "DontCare": 9},
    ),
    "isaid_samples": ("isaid", 3, 306, 0, {"Large_Vehicle": 231, "Small_Vehicle": 74, "storage_tank": 1}),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_data_info_matches_source_md(name, shared_data, capsys):
    path = shared_data / name
    if not path.is_dir():
        pytest.skip(f"{name} is not in {shared_data}")
    fmt, images, objects, ignore, per_class = EXPECTED[name]
    assert main(["data", "info", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == fmt
    assert info["images"] == images
    assert info["objects"] == objects
    if ignore is not None:
        assert info["ignore_objects"] == ignore
    for cls, count in per_class.items():
        assert info["objects_per_class"][cls] == count, cls
    assert sum(info["objects_per_class"].values()) == info["objects"]
