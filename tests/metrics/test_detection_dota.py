"""VOC07 AP on oriented boxes of the DOTA samples: ground truth as predictions, turned by
90 degrees, jittered, and axis-aligned against oriented evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_dataset
from fewclick.io import dota as dota_io
from fewclick.metrics import evaluate_detections
from fewclick.types import Detections, Objects, polygons_to_rboxes, rboxes_to_boxes

pytestmark = pytest.mark.shared_data


def read_label_file(path: Path, classes: list[str]) -> Objects:
    """DOTA labelTxt: optional header lines, then `x1 y1 ... x4 y4 class difficult`."""
    polygons, labels, difficult = [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 9:  # imagesource:..., gsd:...
            continue
        polygons.append(np.array(parts[:8], np.float32).reshape(4, 2))
        if parts[8] not in classes:
            classes.append(parts[8])
        labels.append(classes.index(parts[8]))
        difficult.append(int(parts[9]) if len(parts) > 9 else 0)
    rboxes = polygons_to_rboxes(np.array(polygons))
    objects = Objects(labels, rboxes_to_boxes(rboxes), rboxes=rboxes, difficult=difficult)
    return without_zero_area(objects)


def without_zero_area(objects: Objects) -> Objects:
    """Drop objects of zero area (two lines of the crop file are flat quadrilaterals at the
    crop border): their IoU with anything, themselves included, is 0, so no box can find them."""
    return objects[objects.rboxes[:, 2] * objects.rboxes[:, 3] > 0]


@pytest.fixture(scope="module")
def dota() -> tuple[list[Objects], list[str]]:
    root = shared_dataset("dota_samples")
    classes: list[str] = []
    gts = [read_label_file(p, classes) for p in sorted((root / "labelTxt").glob("*.txt"))]
    return gts, classes


def as_predictions(gts: list[Objects], rboxes: list[np.ndarray], seed: int = 0) -> list[Detections]:
    rng = np.random.default_rng(seed)
    return [
        Detections(rboxes_to_boxes(rb), rng.random(len(rb)), gt.labels, rboxes=rb)
        for gt, rb in zip(gts, rboxes, strict=True)
    ]


def evaluate(gts, preds, classes, oriented=True):
    return evaluate_detections(gts, preds, len(classes), 0.5, "voc07", oriented=oriented, class_names=classes)


def turned(gts: list[Objects]) -> list[np.ndarray]:
    out = []
    for gt in gts:
        rb = gt.rboxes.copy()
        rb[:, 4] += math.pi / 2
        out.append(rb)
    return out


def jittered(gts: list[Objects], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for gt in gts:
        rb = gt.rboxes.astype(np.float64).copy()
        size = np.minimum(rb[:, 2], rb[:, 3])
        rb[:, :2] += rng.normal(0, 0.12, (len(rb), 2)) * size[:, None]
        rb[:, 2:4] *= np.exp(rng.normal(0, 0.12, (len(rb), 2)))
        rb[:, 4] += rng.normal(0, 0.15, len(rb))
        out.append(rb.astype(np.float32))
    return out


def test_dota_labels_parsed(dota):
    gts, classes = dota
    assert sum(len(g) for g in gts) == 651 - 2  # see without_zero_area
    assert set(classes) == {"small-vehicle", "large-vehicle"}


def test_ground_truth_as_predictions_is_perfect(dota):
    gts, classes = dota
    result = evaluate(gts, as_predictions(gts, [g.rboxes for g in gts]), classes)
    assert result.map == pytest.approx(1.0)
    assert list(result.per_class.values()) == pytest.approx([1.0, 1.0])


def test_turned_by_90_degrees_is_worse_and_jitter_in_between(dota):
    gts, classes = dota
    exact = evaluate(gts, as_predictions(gts, [g.rboxes for g in gts]), classes).map
    turn = evaluate(gts, as_predictions(gts, turned(gts)), classes).map
    jitter = evaluate(gts, as_predictions(gts, jittered(gts)), classes).map
    # Vehicles are about twice as long as wide: turned, a box keeps IoU ~ 1/3 with its object.
    assert turn < 0.2
    assert turn < jitter < exact


def test_turned_square_boxes_are_unchanged(dota):
    gts, classes = dota
    squares = [Objects(g.labels, g.boxes, rboxes=np.column_stack([g.rboxes[:, :2], np.repeat(
        g.rboxes[:, 2:3], 2, axis=1), g.rboxes[:, 4]]), difficult=g.difficult) for g in gts]  # fmt: skip
    result = evaluate(squares, as_predictions(squares, turned(squares)), classes)
    assert result.map == pytest.approx(1.0)


def test_axis_aligned_evaluation_differs_from_oriented(dota):
    # Predict each object's enclosing horizontal box (angle 0): perfect for axis-aligned
    # evaluation, but a tilted vehicle fills only part of it, so oriented AP drops.
    gts, classes = dota
    enclosing = [np.column_stack([(g.boxes[:, :2] + g.boxes[:, 2:]) / 2, g.boxes[:, 2:] - g.boxes[:, :2],
                                  np.zeros(len(g))]) for g in gts]  # fmt: skip
    preds = as_predictions(gts, enclosing)
    aligned = evaluate(gts, preds, classes, oriented=False).map
    oriented = evaluate(gts, preds, classes, oriented=True).map
    assert aligned == pytest.approx(1.0)
    assert oriented < 0.9


def test_ground_truth_through_fewclick_io_dota(dota):
    """The same perfect score with the ground truth read by fewclick.io.dota."""
    dataset = dota_io.read(shared_dataset("dota_samples"))
    gts = [without_zero_area(r.objects) for r in dataset.images]
    assert sum(len(g) for g in gts) == sum(len(g) for g in dota[0])
    result = evaluate(gts, as_predictions(gts, [g.rboxes for g in gts]), dataset.classes)
    assert result.map == pytest.approx(1.0)
