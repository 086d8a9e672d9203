"""GeoJSON polygons with holes: read as the pixels of the outer ring less the holes, filled
over the polygon's own window (a slide's image-sized mask is never made)."""

import json
import tracemalloc

import numpy as np
import pytest

from fewclick.io import geojson
from fewclick.io.rle import mask_to_rle, polygons_to_mask, rle_boxes, segmentation_window

OUTER = [[4.0, 3.0], [26.0, 3.0], [26.0, 21.0], [4.0, 21.0], [4.0, 3.0]]
HOLE = [[10.0, 8.0], [18.0, 8.0], [18.0, 15.0], [10.0, 15.0], [10.0, 8.0]]


def _read(tmp_path, width: int, height: int, at: tuple[float, float] = (0.0, 0.0)):
    rings = [[[x + at[0], y + at[1]] for x, y in ring] for ring in (OUTER, HOLE)]
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": rings},
        "properties": {"class": "cell"},
    }
    collection = {
        "type": "FeatureCollection",
        "properties": {"coordinates": "pixels", "width": width, "height": height, "image": "slide.tif"},
        "features": [feature],
    }
    path = tmp_path / "slide.geojson"
    path.write_text(json.dumps(collection))
    return geojson.read(path).images[0]


@pytest.mark.parametrize("at", [(0.0, 0.0), (0.7, 0.3), (3.3, 2.7)], ids=["whole", "tenths", "moved"])
def test_a_polygon_with_a_hole_is_its_outer_ring_less_the_hole(tmp_path, at):
    rec = _read(tmp_path, 40, 35, at)  # tenths of a pixel, as other tools write them
    outer, hole = (np.array(ring) + at for ring in (OUTER, HOLE))
    want = polygons_to_mask([outer], 35, 40) & ~polygons_to_mask([hole], 35, 40)
    assert want.sum() > 0 and not want[int(11 + at[1]), int(14 + at[0])], "the hole is empty"
    assert rec.objects.segmentations[0] == mask_to_rle(want), "the pixels pycocotools fills over the image"


def test_a_slide_s_polygon_with_a_hole_is_read_without_the_slide_sized_mask(tmp_path):
    tracemalloc.start()
    try:
        rec = _read(tmp_path, 40000, 30000, at=(31000.0, 22000.0))  # 1.2 GB as a mask
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB held to read one polygon"
    seg = rec.objects.segmentations[0]
    assert seg["size"] == [30000, 40000]
    want = polygons_to_mask([np.array(OUTER)], 25, 30) & ~polygons_to_mask([np.array(HOLE)], 25, 30)
    window, (x0, y0) = segmentation_window(seg, 30000, 40000)
    ys, xs = np.nonzero(want)
    assert (x0, y0) == (31000 + xs.min(), 22000 + ys.min())
    assert (window == want[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]).all()
    assert rle_boxes([seg])[0].tolist() == [
        31000 + xs.min(),
        22000 + ys.min(),
        31001 + xs.max(),
        22001 + ys.max(),
    ]
