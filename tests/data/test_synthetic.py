import numpy as np
import pytest

from fewclick.data.synthetic import AERIAL_CLASSES, CELL_CLASSES, make_dataset, make_scene
from fewclick.io.rle import rle_to_mask


@pytest.mark.parametrize("kind", ["aerial", "cells"])
def test_same_seed_same_scene_other_seed_other_scene(kind):
    a = make_scene(kind, np.random.default_rng(5), 256, 256)
    b = make_scene(kind, np.random.default_rng(5), 256, 256)
    c = make_scene(kind, np.random.default_rng(6), 256, 256)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.objects.boxes, b.objects.boxes)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize(
    ("kind", "classes", "min_objects"), [("aerial", AERIAL_CLASSES, 15), ("cells", CELL_CLASSES, 60)]
)
def test_scene_ground_truth_is_consistent(kind, classes, min_objects):
    scene = make_scene(kind, np.random.default_rng(1))
    objs, masks = scene.objects, scene.masks
    assert scene.image.shape == (512, 512, 3) and scene.image.dtype == np.uint8
    assert len(objs) >= min_objects, "a scene should be full of small objects"
    assert set(objs.labels.tolist()) <= set(range(len(classes)))
    assert len(set(objs.labels.tolist())) >= 2, "several classes per scene"
    # Masks are disjoint, non-empty, and each box is exactly its mask's bounding box.
    assert masks.sum(0).max() == 1
    for box, mask, seg in zip(objs.boxes, masks, objs.segmentations):
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        np.testing.assert_array_equal(rle_to_mask(seg), mask)
    # Small objects: the median box side is a few tens of pixels at most.
    sides = np.sqrt((objs.boxes[:, 2] - objs.boxes[:, 0]) * (objs.boxes[:, 3] - objs.boxes[:, 1]))
    assert np.median(sides) < 32
    # The oriented box centre lies inside (or at the edge of) the axis-aligned box.
    cx, cy = objs.rboxes[:, 0], objs.rboxes[:, 1]
    assert ((cx >= objs.boxes[:, 0] - 1) & (cx <= objs.boxes[:, 2] + 1)).mean() > 0.95
    assert ((cy >= objs.boxes[:, 1] - 1) & (cy <= objs.boxes[:, 3] + 1)).mean() > 0.95


def test_objects_differ_from_background():
    scene = make_scene("cells", np.random.default_rng(2))
    inside = scene.image[scene.masks.any(0)].mean(0)
    outside = scene.image[~scene.masks.any(0)].mean(0)
    assert np.abs(inside - outside).sum() > 60, "nuclei must be visible against the tissue"


def test_make_dataset_writes_coco_and_images(tmp_path):
    ds = make_dataset("aerial", 2, seed=3, width=128, height=96, out_dir=tmp_path)
    assert len(ds) == 2 and (tmp_path / "annotations.json").is_file()
    assert all(r.path.is_file() for r in ds.images)
    from fewclick.io import load_image

    assert load_image(ds.images[0].path).shape == (96, 128, 3)


def test_bad_kind_and_count():
    with pytest.raises(ValueError, match="unknown synthetic scene kind 'roads'"):
        make_scene("roads", np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_images >= 0"):
        make_dataset("aerial", -1)
