"""Annotations imported onto a large image: a polygon or an RLE becomes the stored mask
without the image-sized mask (a 40000 x 30000 slide's is 1.2 GB)."""

import tracemalloc

import numpy as np
import pytest

from fewclick.io.rle import polygons_to_mask, rle_window, window_to_rle
from fewclick.server.convert import from_objects
from fewclick.types import Objects

HEIGHT, WIDTH = 30000, 40000
POLYGON = np.array([[100.0, 40.0], [180.0, 60.0], [120.0, 150.0]], np.float32)
AT = (12000, 9000)  # inside the slide and the 16000 px GeoTIFF alike


def _objects(seg) -> Objects:
    box = np.array([[AT[0] + 100, AT[1] + 40, AT[0] + 180, AT[1] + 150]], np.float32)
    return Objects(np.zeros(1, np.int64), box, segmentations=[seg])


@pytest.mark.parametrize("kind", ["polygon", "rle"])
def test_an_object_imported_onto_a_slide_keeps_its_pixels_without_the_slide_sized_mask(kind):
    near = polygons_to_mask([POLYGON], 200, 200)
    seg = [POLYGON + np.float32(AT)] if kind == "polygon" else window_to_rle(near, AT, HEIGHT, WIDTH)
    tracemalloc.start()
    try:
        stored, geometry = from_objects(_objects(seg), 0, HEIGHT, WIDTH)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB held to import one {kind}"
    assert stored == "mask" and geometry["mask"]["size"] == [HEIGHT, WIDTH]
    got = rle_window(geometry["mask"], (AT[0], AT[1], AT[0] + 200, AT[1] + 200))
    assert (got == near).all()


def test_a_coco_file_of_a_geotiff_s_masks_is_read_without_the_image_sized_mask(tmp_path):
    import json
    import warnings

    from fewclick.io import read_dataset

    near = polygons_to_mask([POLYGON], 200, 200)
    size = 16000  # within the COCO reader's pixel limit; 256 MB as a mask
    rle = window_to_rle(near, AT, size, size)
    coco = {
        "images": [{"id": 1, "file_name": "scene.tif", "width": size, "height": size}],
        "categories": [{"id": 1, "name": "nucleus"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": rle, "iscrowd": 0,
             "bbox": [AT[0] + 100, AT[1] + 40, 80, 110], "area": float(near.sum())}
        ],
    }  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the image file is not beside it
            data = read_dataset(tmp_path / "c.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB held to read one mask"
    assert data.images[0].objects.segmentations[0]["counts"] == rle["counts"]


def test_a_coco_file_naming_a_slide_s_size_imports_into_the_project_that_holds_it(tmp_path, monkeypatch):
    """The pixel limit guards what is decoded whole: annotations may name the size of an
    image the project reads by regions, and no more."""
    import json

    import tifffile
    from clients import client_for

    from fewclick.server.app import create_app
    from fewclick.server.db import sqlite_url

    monkeypatch.setenv("FEWCLICK_MAX_PIXELS", str(10_000_000))  # the 5000 x 3000 TIFF is over it
    (tmp_path / "scene").mkdir()
    tifffile.imwrite(tmp_path / "scene" / "scene.tif", np.zeros((3000, 5000, 3), np.uint8), tile=(512, 512),
                     photometric="rgb", compression="deflate")  # fmt: skip
    rle = window_to_rle(polygons_to_mask([POLYGON], 200, 200), (1000, 1000), 3000, 5000)

    def coco(name: str, width: int) -> str:
        ann = {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": rle,
            "iscrowd": 0,
            "bbox": [1100, 1040, 80, 110],
        }
        images = [{"id": 1, "file_name": "scene.tif", "width": width, "height": 3000}]
        (tmp_path / name).write_text(json.dumps({"images": images, "annotations": [ann],
                                                 "categories": [{"id": 1, "name": "cell"}]}))  # fmt: skip
        return str(tmp_path / name)

    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", data_roots=[tmp_path])
    with client_for(app) as client:
        body = {"name": "scene", "folder": str(tmp_path / "scene"), "classes": ["cell"]}
        project = client.post("/api/projects", json=body).json()["project"]
        r = client.post(f"/api/projects/{project['id']}/import", json={"dataset": coco("ok.json", 5000)})
        assert r.status_code == 200, r.text
        image = client.get(f"/api/projects/{project['id']}/images").json()[0]
        assert [a["kind"] for a in client.get(f"/api/images/{image['id']}").json()["annotations"]] == ["mask"]
        r = client.post(f"/api/projects/{project['id']}/import", json={"dataset": coco("big.json", 6000)})
        assert (
            r.status_code == 400
            and "6000 x 3000 = 18,000,000 pixels exceeds the limit of 15,000,000" in r.text
        )
