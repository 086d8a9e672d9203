"""Detection AP: IoU, AP integration, hand-worked VOC07 cases, empty cases, and COCO AP
checked against pycocotools' COCOeval."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_dataset
from fewclick.io import coco as coco_io
from fewclick.metrics import average_precision, box_iou, evaluate_detections, rbox_iou
from fewclick.types import Detections, Objects

SQRT2 = math.sqrt(2)


def dets(boxes, scores, labels, rboxes=None) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, labels, rboxes=rboxes)


# --------------------------------------------------------------------------- IoU
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # zero union
    ],
)
def test_box_iou_table(a, b, expected):
    assert box_iou([a], [b])[0, 0] == pytest.approx(expected)


def test_paired_box_iou_is_the_diagonal_of_box_iou():
    from fewclick.metrics.detection import paired_box_iou

    a = np.array([[0, 0, 10, 10], [5, 5, 15, 25], [0, 0, 0, 0]], np.float32)
    b = np.array([[5, 0, 15, 10], [5, 5, 15, 25], [1, 1, 2, 2]], np.float32)
    assert paired_box_iou(a, b) == pytest.approx(np.diag(box_iou(a, b)))
    assert paired_box_iou(a, b).tolist() == pytest.approx([1 / 3, 1, 0])
    with pytest.raises(ValueError, match="as many boxes"):
        paired_box_iou(a, b[:2])


def test_box_iou_crowd_divides_by_detection_area():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 100, 100], [0, 0, 100, 100]], crowd=[True, False])
    np.testing.assert_allclose(iou, [[1.0, 0.01]])


def test_iou_empty_shapes():
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    assert rbox_iou([[0, 0, 1, 1, 0]], np.zeros((0, 5))).shape == (1, 0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # a 2x2 square and the same square turned 45 degrees: the intersection is an octagon,
        # the square minus 4 corner triangles with legs 2 - sqrt2, 4 - 2 (2 - sqrt2)^2 = 8 sqrt2 - 8;
        # IoU = (8 sqrt2 - 8) / (8 - (8 sqrt2 - 8)) = 1 / sqrt2.
        ([0, 0, 2, 2, 0], [0, 0, 2, 2, math.pi / 4], 1 / SQRT2),
        # a 4x2 box turned 90 degrees about its centre: 2x2 in common, union 8 + 8 - 4 = 12.
        ([5, 5, 4, 2, 0], [5, 5, 4, 2, math.pi / 2], 4 / 12),
        ([5, 5, 4, 2, 0.3], [5, 5, 4, 2, 0.3 + math.pi], 1.0),  # a half turn is the same box
        ([0, 0, 2, 2, 0], [1, 0, 2, 2, 0], 2 / 6),
        ([0, 0, 2, 2, 0], [10, 0, 2, 2, 1.0], 0.0),
    ],
)
def test_rbox_iou_table(a, b, expected):
    assert rbox_iou([a], [b])[0, 0] == pytest.approx(expected, abs=1e-5)


def test_rbox_iou_axis_aligned_equals_box_iou(rng):
    xyxy = np.sort(rng.uniform(0, 50, (20, 2, 2)), axis=1).reshape(20, 4)
    rb = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                   xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1], np.zeros(20)], axis=1)  # fmt: skip
    np.testing.assert_allclose(rbox_iou(rb, rb[::-1]), box_iou(xyxy, xyxy[::-1]), atol=1e-4)


# --------------------------------------------------------------------------- AP integration
@pytest.mark.parametrize(
    ("recall", "precision", "method", "expected"),
    [
        ([], [], "voc07", 0.0),
        ([], [], "coco", 0.0),
        ([1.0], [1.0], "voc07", 1.0),
        ([1.0], [1.0], "coco", 1.0),
        ([1.0], [1.0], "voc12", 1.0),
        # TP, FP, TP on 2 objects: recall .5 .5 1, precision 1 .5 2/3.
        # VOC07: recall thresholds 0..0.5 (6 points) see precision 1, 0.6..1 (5 points) see 2/3.
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "voc07", (6 + 5 * 2 / 3) / 11),
        # VOC12: 0.5 * 1 + 0.5 * 2/3.
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "voc12", 0.5 + 1 / 3),
        # COCO: thresholds 0, .01, ..., .5 (51) see 1, the 50 above see 2/3.
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "coco", (51 + 50 * 2 / 3) / 101),
        # recall never above 0.5: VOC07 6/11, COCO 51/101.
        ([0.5], [1.0], "voc07", 6 / 11),
        ([0.5], [1.0], "coco", 51 / 101),
    ],
)
def test_average_precision_table(recall, precision, method, expected):
    assert average_precision(recall, precision, method) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recall": [1], "precision": [1], "method": "voc2099"}, "expected ap_method"),
        ({"recall": [1, 1], "precision": [1], "method": "voc07"}, "one length"),
    ],
)
def test_average_precision_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        average_precision(**kwargs)


# --------------------------------------------------------------------------- hand-worked VOC07
def oriented_case():
    """2 GT of class 0 (a 10x4 box and a 10x4 box turned 45 degrees), 3 detections:
    exact copy of GT 1 (0.9), a far false positive (0.8), exact copy of GT 0 (0.7)."""
    gt_r = np.array([[10, 10, 10, 4, 0], [50, 50, 10, 4, math.pi / 4]], np.float32)
    gt = Objects([0, 0], np.zeros((2, 4)), rboxes=gt_r)
    det_r = np.array([gt_r[1], [200, 200, 10, 4, 0], gt_r[0]], np.float32)
    pred = dets(np.zeros((3, 4)), [0.9, 0.8, 0.7], [0, 0, 0], rboxes=det_r)
    return gt, pred


def test_voc07_oriented_hand_case():
    # Sorted: TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3 -> AP = (6 * 1 + 5 * 2/3) / 11 = 0.8485.
    gt, pred = oriented_case()
    result = evaluate_detections([gt], [pred], num_classes=1, oriented=True)
    assert result.map == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert result.num_gt == {"0": 2}


@pytest.mark.parametrize(("threshold", "expected"), [(0.5, 1.0), (0.7, 1.0), (0.75, 0.0)])
def test_voc07_rotated_pair_threshold(threshold, expected):
    # GT: 2x2 square; detection: the same square turned 45 degrees, IoU 1/sqrt2 = 0.7071 (by hand above).
    gt = Objects([0], np.zeros((1, 4)), rboxes=[[100, 100, 2, 2, 0]])
    pred = dets(np.zeros((1, 4)), [0.5], [0], rboxes=[[100, 100, 2, 2, math.pi / 4]])
    result = evaluate_detections([gt], [pred], 1, iou_threshold=threshold, oriented=True)
    assert result.map == pytest.approx(expected)


def test_duplicate_detection_is_false_positive():
    # TP (0.9), duplicate FP (0.8), TP (0.7) on 2 objects: as the hand case, 0.8485.
    gt = Objects([0, 0], [[0, 0, 10, 10], [20, 0, 30, 10]])
    pred = dets([[0, 0, 10, 10], [0, 0, 10, 10], [20, 0, 30, 10]], [0.9, 0.8, 0.7], [0, 0, 0])
    assert evaluate_detections([gt], [pred], 1).map == pytest.approx((6 + 5 * 2 / 3) / 11)


@pytest.mark.parametrize(
    ("which", "ignore_difficult", "expected"),
    [
        ([0], True, 1.0),  # the difficult object is not a positive
        ([0], False, 6 / 11),  # counted: recall 0.5 at precision 1 -> 6 of 11 points
        ([1, 0], True, 1.0),  # a detection on it (scored first) is neither TP nor FP
        ([1, 0], False, 1.0),
    ],
)
def test_difficult_neither_counts_nor_penalises(which, ignore_difficult, expected):
    gt = Objects([0, 0], [[0, 0, 10, 10], [20, 0, 30, 10]], difficult=[0, 1])
    pred = dets([[0, 0, 10, 10], [20, 0, 30, 10]], [0.5, 0.9], [0, 0])[which]
    assert evaluate_detections([gt], [pred], 1, ignore_difficult=ignore_difficult).map == pytest.approx(
        expected
    )


def test_crowd_absorbs_many_detections():
    gt = Objects([0, 0], [[0, 0, 10, 10], [50, 50, 150, 150]], ignore=[False, True])
    pred = dets([[0, 0, 10, 10], [60, 60, 70, 70], [80, 80, 90, 90]], [0.5, 0.9, 0.8], [0, 0, 0])
    result = evaluate_detections([gt], [pred], 1)
    assert result.map == 1.0
    assert result.num_gt == {"0": 1}


# --------------------------------------------------------------------------- empty cases
def test_no_ground_truth_gives_nan():
    result = evaluate_detections(
        [Objects.empty()], [dets([[0, 0, 1, 1]], [0.5], [0])], 2, class_names=["a", "b"]
    )
    assert math.isnan(result.map)
    assert all(math.isnan(v) for v in result.per_class.values())
    assert result.to_dict()["mAP"] is None


def test_no_images_gives_nan():
    assert math.isnan(evaluate_detections([], [], 1).map)


def test_no_predictions_gives_zero():
    gt = Objects([0], [[0, 0, 10, 10]])
    result = evaluate_detections([gt], [Detections.empty()], 1)
    assert result.map == 0.0
    assert result.per_class == {"0": 0.0}


def test_class_without_gt_is_left_out_of_the_mean():
    # class 0: found exactly (AP 1); class 1: GT but nothing predicted (AP 0);
    # class 2: predicted only (NaN, not in the mean) -> mAP 0.5.
    gt = Objects([0, 1], [[0, 0, 10, 10], [20, 0, 30, 10]])
    pred = dets([[0, 0, 10, 10], [40, 0, 50, 10]], [0.9, 0.8], [0, 2])
    result = evaluate_detections([gt], [pred], 3, class_names=["a", "b", "c"])
    assert result.per_class["a"] == 1.0
    assert result.per_class["b"] == 0.0
    assert math.isnan(result.per_class["c"])
    assert result.map == pytest.approx(0.5)
    assert json.loads(json.dumps(result.to_dict()))["per_class"]["c"] is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate_detections([Objects.empty()], [], 1), "one prediction per image"),
        (lambda: evaluate_detections([Objects([3], [[0, 0, 1, 1]])], [Detections.empty()], 2), "class ids"),
        (
            lambda: evaluate_detections([Objects.empty()], [Detections.empty()], 1, iou_threshold=0),
            "thresholds",
        ),
        (lambda: evaluate_detections([Objects.empty()], [Detections.empty()], 1, ap_method="x"), "ap_method"),
        (lambda: evaluate_detections([Objects.empty()], [Detections.empty()], 2, class_names=["a"]), "names"),
        (
            lambda: evaluate_detections(
                [Objects([0], [[0, 0, 1, 1]])], [Detections.empty()], 1, oriented=True
            ),
            "rboxes",
        ),
    ],
)
def test_evaluate_detections_rejects(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- against pycocotools
def coco_gt_objects(data: dict) -> tuple[list[int], list[Objects], list[int]]:
    """Image ids (sorted, as COCOeval), their Objects, and the category ids in class order."""
    cat_ids = sorted(c["id"] for c in data["categories"])
    label = {cid: i for i, cid in enumerate(cat_ids)}
    image_ids = sorted(im["id"] for im in data["images"])
    rows: dict[int, list[dict]] = {i: [] for i in image_ids}
    for ann in data["annotations"]:
        rows[ann["image_id"]].append(ann)
    gts = []
    for image_id in image_ids:
        anns = rows[image_id]
        xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        gts.append(
            Objects([label[a["category_id"]] for a in anns], boxes, ignore=[a["iscrowd"] for a in anns])
        )
    return image_ids, gts, cat_ids


def perturbed_predictions(gts: list[Objects], num_classes: int, seed: int) -> list[Detections]:
    """Jittered GT boxes (15% dropped, 10% with a wrong class), plus 0-3 random false positives per image."""
    rng = np.random.default_rng(seed)
    preds = []
    for gt in gts:
        keep = rng.random(len(gt)) > 0.15
        boxes = gt.boxes[keep].astype(np.float64)
        size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
        boxes = boxes + rng.normal(0, 0.08, boxes.shape) * size
        labels = gt.labels[keep].copy()
        wrong = rng.random(len(labels)) < 0.1
        labels[wrong] = rng.integers(0, num_classes, wrong.sum())
        n_fp = int(rng.integers(0, 4))
        xy = rng.uniform(0, 400, (n_fp, 2))
        fp = np.concatenate([xy, xy + rng.uniform(5, 150, (n_fp, 2))], axis=1)
        boxes = np.concatenate([boxes, fp])
        labels = np.concatenate([labels, rng.integers(0, num_classes, n_fp)])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
        preds.append(dets(boxes, rng.random(len(boxes)), labels))
    return preds


def cocoeval_stats(
    gt_file: Path, image_ids: list[int], preds: list[Detections], cat_ids: list[int]
) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = [
        {"image_id": image_id, "category_id": cat_ids[label], "score": float(score),
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
        for image_id, pred in zip(image_ids, preds, strict=True)
        for b, score, label in zip(pred.boxes.astype(np.float64), pred.scores, pred.labels, strict=True)
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def check_against_cocoeval(gt_file: Path, seed: int) -> None:
    data = json.loads(gt_file.read_text())
    image_ids, gts, cat_ids = coco_gt_objects(data)
    preds = perturbed_predictions(gts, len(cat_ids), seed)
    stats = cocoeval_stats(gt_file, image_ids, preds, cat_ids)
    ours = evaluate_detections(gts, preds, len(cat_ids), np.linspace(0.5, 0.95, 10), ap_method="coco")
    assert ours.map == pytest.approx(stats[0], abs=1e-3)
    assert ours.map_per_threshold[0.5] == pytest.approx(stats[1], abs=1e-3)
    at_50 = evaluate_detections(gts, preds, len(cat_ids), 0.5, ap_method="coco")
    assert at_50.map == pytest.approx(stats[1], abs=1e-3)


def tiny_coco(tmp_path: Path) -> Path:
    """3 images, 3 categories (id 7 has no annotation), one crowd region."""
    anns = [
        (1, 1, [10, 10, 40, 30], 0), (1, 1, [60, 10, 20, 20], 0), (1, 2, [5, 60, 30, 30], 0),
        (2, 2, [0, 0, 50, 50], 0), (2, 1, [100, 100, 80, 80], 1), (2, 1, [10, 70, 15, 15], 0),
        (3, 1, [30, 30, 10, 40], 0),
    ]  # fmt: skip
    data = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in (1, 2, 3)],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "boat"}, {"id": 7, "name": "plane"}],
        "annotations": [
            {"id": k + 1, "image_id": im, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": crowd}
            for k, (im, c, b, crowd) in enumerate(anns)
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_ap_matches_pycocotools_on_synthetic(tmp_path, seed):
    check_against_cocoeval(tiny_coco(tmp_path), seed)


def test_coco_crowd_hand_case_matches_pycocotools(tmp_path):
    # Several detections inside the crowd region of image 2 and a duplicate on image 1.
    path = tiny_coco(tmp_path)
    image_ids, gts, cat_ids = coco_gt_objects(json.loads(path.read_text()))
    preds = [
        dets([[10, 10, 50, 40], [11, 10, 50, 40], [5, 60, 35, 90]], [0.9, 0.95, 0.3], [0, 0, 1]),
        dets([[110, 110, 130, 130], [120, 120, 170, 170], [0, 0, 50, 50]], [0.99, 0.98, 0.7], [0, 0, 1]),
        dets([[30, 30, 40, 70], [0, 0, 5, 5]], [0.6, 0.97], [0, 2]),
    ]
    stats = cocoeval_stats(path, image_ids, preds, cat_ids)
    ours = evaluate_detections(gts, preds, 3, np.linspace(0.5, 0.95, 10), ap_method="coco")
    assert ours.map == pytest.approx(stats[0], abs=1e-6)
    assert ours.map_per_threshold[0.5] == pytest.approx(stats[1], abs=1e-6)
    assert math.isnan(ours.per_class["2"])  # 'plane' has no GT


@pytest.mark.shared_data
@pytest.mark.parametrize(("split", "seed"), [("train2017", 0), ("val2017", 1)])
def test_coco_ap_matches_pycocotools_on_coco_tiny(split, seed):
    check_against_cocoeval(shared_dataset("coco_tiny") / "annotations" / f"instances_{split}.json", seed)


@pytest.mark.shared_data
def test_coco_ap_through_fewclick_io_coco():
    """The same check with the ground truth read by fewclick.io.coco (classes in file order)."""
    gt_file = shared_dataset("coco_tiny") / "annotations" / "instances_val2017.json"
    dataset = coco_io.read(gt_file)
    records = sorted(dataset.images, key=lambda r: r.id)
    gts = [r.objects for r in records]
    preds = perturbed_predictions(gts, len(dataset.classes), seed=5)
    stats = cocoeval_stats(gt_file, [r.id for r in records], preds, list(dataset.category_ids))
    ours = evaluate_detections(gts, preds, len(dataset.classes), np.linspace(0.5, 0.95, 10), ap_method="coco")
    assert ours.map == pytest.approx(stats[0], abs=1e-3)
    assert ours.map_per_threshold[0.5] == pytest.approx(stats[1], abs=1e-3)


@pytest.mark.parametrize("max_dets", [None, 100, 5])
def test_coco_max_dets_per_image_and_class_matches_pycocotools(tmp_path, max_dets, rng):
    # 120 high-scored false positives of class 0 in image 1: pycocotools keeps the best 100
    # per image and class, so the true positives scored below them are cut.
    path = tiny_coco(tmp_path)
    image_ids, gts, cat_ids = coco_gt_objects(json.loads(path.read_text()))
    preds = perturbed_predictions(gts, len(cat_ids), seed=7)
    xy = rng.uniform(120, 180, (120, 2))
    noise = dets(np.concatenate([xy, xy + 5], axis=1), rng.uniform(0.5, 1.0, 120), np.zeros(120))
    preds[0] = Detections.concatenate([preds[0], noise])
    stats = cocoeval_stats(path, image_ids, preds, cat_ids)
    ours = evaluate_detections(gts, preds, 3, np.linspace(0.5, 0.95, 10), ap_method="coco", max_dets=max_dets)
    if max_dets == 5:
        assert ours.map > stats[0]  # fewer false positives kept
    else:
        assert ours.map == pytest.approx(stats[0], abs=1e-6)


RBOX = st.tuples(st.floats(0, 40), st.floats(0, 40), st.floats(1, 20), st.floats(1, 20), st.floats(0, 6.3))


@given(st.lists(RBOX, min_size=1, max_size=6))
@settings(max_examples=40, deadline=None)
def test_rbox_iou_properties(rows):
    rb = np.array(rows, np.float32)
    iou = rbox_iou(rb, rb)
    np.testing.assert_allclose(iou, iou.T, atol=1e-6)  # symmetric
    np.testing.assert_allclose(np.diag(iou), 1.0, atol=1e-5)  # a box is itself
    assert ((iou >= 0) & (iou <= 1)).all()
