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
AT = (25000, 17000)


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
