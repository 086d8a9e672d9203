"""Property tests: box and mask conversions, and COCO / DOTA write-then-read round trips."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fewclick.io import coco, dota, rle
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.types import Objects, polygons_to_rboxes, rboxes_to_polygons

WIDTH, HEIGHT = 640, 480
coord = st.floats(0, 4000, width=32, allow_subnormal=False)


def same_corners(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    """Two quadrilaterals ``[4, 2]`` have the same corners, in any order."""
    distances = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return bool(distances.min(axis=1).max() <= atol and distances.min(axis=0).max() <= atol)


@given(arrays(np.float32, (5, 4), elements=coord))
def test_xywh_xyxy_round_trip_is_exact(values):
    xyxy = np.concatenate(
        [np.minimum(values[:, :2], values[:, 2:]), np.maximum(values[:, :2], values[:, 2:])], 1
    )
    xywh = coco.xyxy_to_xywh(xyxy)
    assert (xywh[:, 2:] >= 0).all()
    np.testing.assert_array_equal(coco.xywh_to_xyxy(xywh), xyxy)


rbox_rows = st.tuples(
    st.floats(0, 1000),
    st.floats(0, 1000),
    st.floats(2, 300),
    st.floats(2, 300),
    st.floats(0, np.pi, exclude_max=True),
)


@given(st.lists(rbox_rows, min_size=1, max_size=5))
def test_rboxes_polygons_round_trip_up_to_box_symmetry(rows):
    rboxes = np.array(rows, np.float32)
    polygons = rboxes_to_polygons(rboxes)
    back = polygons_to_rboxes(polygons)
    for rb, again in zip(rboxes, back, strict=True):
        assert np.allclose(again[:2], rb[:2], atol=1e-2)
        assert np.isclose(again[2] * again[3], rb[2] * rb[3], rtol=1e-3)
        assert same_corners(rboxes_to_polygons(again[None])[0], rboxes_to_polygons(rb[None])[0], atol=0.05)


@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_rle_mask_round_trip(mask):
    encoded = rle.mask_to_rle(mask)
    assert encoded["size"] == list(mask.shape) and isinstance(encoded["counts"], str)
    np.testing.assert_array_equal(rle.rle_to_mask(encoded), mask)
    np.testing.assert_array_equal(rle.rle_to_mask({"size": list(mask.shape), "counts": runs(mask)}), mask)


def runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts: run lengths in column-major order, starting with zeros."""
    flat = mask.T.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])) != 0)
    return np.diff(np.concatenate([[0], edges])).tolist() if len(flat) else []


# --------------------------------------------------------------------------- random objects
@st.composite
def objects(draw, n_classes: int = 3) -> Objects:
    n = draw(st.integers(0, 6))
    x0 = draw(arrays(np.float32, n, elements=st.floats(0, WIDTH - 1, width=32)))
    y0 = draw(arrays(np.float32, n, elements=st.floats(0, HEIGHT - 1, width=32)))
    x1 = np.minimum(x0 + draw(arrays(np.float32, n, elements=st.floats(0, 200, width=32))), WIDTH)
    y1 = np.minimum(y0 + draw(arrays(np.float32, n, elements=st.floats(0, 200, width=32))), HEIGHT)
    rboxes = draw(st.lists(rbox_rows, min_size=n, max_size=n))
    segmentations = [draw(segmentation()) for _ in range(n)]
    return Objects(
        labels=draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1))),
        boxes=np.stack([x0, y0, x1, y1], 1).astype(np.float32),
        rboxes=np.array(rboxes, np.float32).reshape(-1, 5),
        segmentations=segmentations if any(s is not None for s in segmentations) else None,
        ignore=draw(arrays(bool, n)),
        difficult=draw(arrays(np.uint8, n, elements=st.integers(0, 2))),
    )


@st.composite
def segmentation(draw):
    kind = draw(st.sampled_from(["none", "polygons", "rle", "counts"]))
    if kind == "polygons":
        k = draw(st.integers(3, 8))
        return [
            draw(arrays(np.float32, (k, 2), elements=st.floats(0, 400, width=32)))
            for _ in range(draw(st.integers(1, 2)))
        ]
    if kind == "none":
        return None
    mask = np.zeros((HEIGHT, WIDTH), bool)
    x, y = draw(st.integers(0, WIDTH - 20)), draw(st.integers(0, HEIGHT - 20))
    mask[y : y + draw(st.integers(1, 20)), x : x + draw(st.integers(1, 20))] = True
    return rle.mask_to_rle(mask) if kind == "rle" else {"size": [HEIGHT, WIDTH], "counts": runs(mask)}


def dataset_of(objs_list: list[Objects]) -> Dataset:
    images = [ImageRecord(f"im{i}.png", WIDTH, HEIGHT, o, id=i + 1) for i, o in enumerate(objs_list)]
    return Dataset(classes=["plane", "ship", "storage-tank"], images=images, category_ids=[4, 9, 2])


@pytest.mark.filterwarnings("ignore::fewclick.io.parsing.FormatWarning")  # no image files
@settings(max_examples=40, deadline=None)
@given(st.lists(objects(), min_size=1, max_size=3))
def test_coco_write_read_gives_identical_objects(objs_list):
    from test_coco import assert_same_objects

    ds = dataset_of(objs_list)
    with tempfile.TemporaryDirectory() as tmp:
        coco.write(ds, Path(tmp) / "out.json")
        back = coco.read(Path(tmp) / "out.json", images_dir=Path(tmp))
    for rec in ds.images:  # the reader leaves all-empty columns out
        objs = rec.objects
        if not len(objs):
            rec.objects = Objects.empty()
    assert_same_objects(ds, back)


@pytest.mark.filterwarnings("ignore::fewclick.io.parsing.FormatWarning")  # no image files
@settings(max_examples=40, deadline=None)
@given(st.lists(objects(), min_size=1, max_size=3))
def test_dota_write_read_keeps_oriented_boxes(objs_list):
    for objs in objs_list:
        objs.segmentations = None  # the writer then uses the oriented boxes
    ds = dataset_of(objs_list)
    with tempfile.TemporaryDirectory() as tmp:
        dota.write(ds, Path(tmp))
        back = dota.read(Path(tmp), classes=ds.classes)
    for rec, again in zip(ds.images, back.images, strict=True):
        a, b = rec.objects, again.objects
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)
        corners = rboxes_to_polygons(a.rboxes)
        for i in range(len(a)):
            np.testing.assert_array_equal(b.segmentations[i][0], corners[i])
            assert same_corners(rboxes_to_polygons(b.rboxes[i : i + 1])[0], corners[i], atol=0.05)


@pytest.mark.filterwarnings("ignore::fewclick.io.parsing.FormatWarning")
def test_coco_to_dota_keeps_oriented_boxes(tmp_path):
    rboxes = np.array([[100, 50, 40, 10, 0.3], [300, 200, 20, 20, 1.2]], np.float32)
    corners = rboxes_to_polygons(rboxes)
    objs = Objects([0, 1], np.concatenate([corners.min(1), corners.max(1)], 1), rboxes=rboxes)
    coco.write(dataset_of([objs]), tmp_path / "a.json")
    from_coco = coco.read(tmp_path / "a.json", images_dir=tmp_path)
    np.testing.assert_array_equal(from_coco.images[0].objects.rboxes, rboxes)
    dota.write(from_coco, tmp_path / "dota")
    from_dota = dota.read(tmp_path / "dota", classes=from_coco.classes)
    np.testing.assert_allclose(from_dota.images[0].objects.boxes, objs.boxes, atol=1e-3)
    for a, b in zip(
        rboxes_to_polygons(from_dota.images[0].objects.rboxes), rboxes_to_polygons(rboxes), strict=True
    ):
        assert same_corners(a, b, atol=0.05)
