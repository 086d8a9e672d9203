"""Matching rules of evaluate_detections: pycocotools' greedy rule against the VOC / DOTA
devkits' voc_eval rule, on hand cases where they differ and against a transcription of
voc_eval on random scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fewclick.metrics import box_iou, evaluate_detections, match_detections
from fewclick.types import Detections, Objects


def dets(boxes, scores) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, np.zeros(len(scores), np.int64))


# Two objects: A = [0, 0, 10, 10] and B = [0, 0, 10, 20] (A inside B, IoU(A, B) = 100 / 200 = 0.5).
# Detection 1 (0.9) is A exactly: IoU 1 with A, 0.5 with B -> both rules take A.
# Detection 2 (0.8) is [0, 0, 10, 12]: IoU 100 / 120 = 0.833 with A (taken), 120 / 200 = 0.6 with B.
#   devkit: its best object A is taken -> FP.  greedy: the free B has 0.6 >= 0.5 -> TP.
TAKEN_GT = Objects([0, 0], [[0, 0, 10, 10], [0, 0, 10, 20]])
TAKEN_PRED = dets([[0, 0, 10, 10], [0, 0, 10, 12]], [0.9, 0.8])
# One object [0, 0, 10, 10], one detection [0, 0, 10, 20]: IoU 100 / 200 = 0.5 exactly (exact in float).
#   devkit: 0.5 > 0.5 fails -> FP.  greedy: 0.5 >= 0.5 -> TP.
AT_THRESHOLD_GT = Objects([0], [[0, 0, 10, 10]])
AT_THRESHOLD_PRED = dets([[0, 0, 10, 20]], [0.9])
# As TAKEN, but A is difficult and there is one detection, [0, 0, 10, 12]: its best object is A.
#   devkit: A is difficult -> ignored, nothing left, AP 0 (B is a positive never found).
#   greedy: the free non-difficult B has 0.6 >= 0.5 -> TP, AP 1.
DIFFICULT_GT = Objects([0, 0], [[0, 0, 10, 10], [0, 0, 10, 20]], difficult=[1, 0])
DIFFICULT_PRED = dets([[0, 0, 10, 12]], [0.8])


@pytest.mark.parametrize(
    ("gt", "pred", "ap_method", "expected_devkit", "expected_greedy"),
    [
        # devkit: TP, FP on 2 objects -> recall .5 .5, precision 1 .5. VOC07: the 6 recall
        # points 0, .1, ..., .5 see precision 1, the 5 above see none -> 6 / 11.
        # greedy: TP, TP -> recall .5 1, precision 1 1 -> 1.
        (TAKEN_GT, TAKEN_PRED, "voc07", 6 / 11, 1.0),
        # VOC12 (area under the envelope): devkit 0.5 * 1 = 0.5; greedy 1.
        (TAKEN_GT, TAKEN_PRED, "voc12", 0.5, 1.0),
        # COCO (101 points): devkit recall thresholds 0, .01, ..., .5 (51) see 1 -> 51 / 101.
        (TAKEN_GT, TAKEN_PRED, "coco", 51 / 101, 1.0),
        # devkit: one FP on 1 object -> precision 0 everywhere -> 0; greedy: one TP -> 1.
        (AT_THRESHOLD_GT, AT_THRESHOLD_PRED, "voc07", 0.0, 1.0),
        (AT_THRESHOLD_GT, AT_THRESHOLD_PRED, "coco", 0.0, 1.0),
        # devkit: the only detection is absorbed -> no detection counts -> 0; greedy: TP -> 1.
        (DIFFICULT_GT, DIFFICULT_PRED, "voc07", 0.0, 1.0),
    ],
)
def test_devkit_and_greedy_differ(gt, pred, ap_method, expected_devkit, expected_greedy):
    for matching, expected in (("devkit", expected_devkit), ("greedy", expected_greedy)):
        result = evaluate_detections([gt], [pred], 1, 0.5, ap_method, matching=matching)
        assert result.map == pytest.approx(expected), matching


@pytest.mark.parametrize(
    ("ap_method", "matching", "expected_rule", "expected_map"),
    [
        ("voc07", None, "devkit", 6 / 11),
        ("voc12", None, "devkit", 0.5),
        ("coco", None, "greedy", 1.0),
        ("voc07", "greedy", "greedy", 1.0),
        ("coco", "devkit", "devkit", 51 / 101),
    ],
)
def test_default_rule_per_method_and_to_dict(ap_method, matching, expected_rule, expected_map):
    result = evaluate_detections([TAKEN_GT], [TAKEN_PRED], 1, ap_method=ap_method, matching=matching)
    assert result.matching == expected_rule
    assert result.map == pytest.approx(expected_map)
    as_dict = result.to_dict()
    assert (as_dict["matching"], as_dict["ap_method"]) == (expected_rule, ap_method)


def test_unknown_rule_rejected():
    with pytest.raises(ValueError, match="expected matching in"):
        evaluate_detections([TAKEN_GT], [TAKEN_PRED], 1, matching="hungarian")


@pytest.mark.parametrize(
    ("similarity", "ignored", "rule", "expected_tp", "expected_absorbed"),
    [
        # Ties: det 1 sees 0.7 on both objects. devkit takes the first (object 0), so det 2,
        # whose best is object 0 (0.9), is a duplicate; greedy takes the last (object 1) and
        # leaves object 0 to det 2.
        ([[0.7, 0.7], [0.9, 0.0]], [False, False], "devkit", [True, False], [False, False]),
        ([[0.7, 0.7], [0.9, 0.0]], [False, False], "greedy", [True, True], [False, False]),
        # An ignored object absorbs any number of detections under both rules.
        ([[0.8], [0.9]], [True], "devkit", [False, False], [True, True]),
        ([[0.8], [0.9]], [True], "greedy", [False, False], [True, True]),
        # devkit: an ignored best object absorbs even when a free one qualifies; greedy prefers the free one.
        ([[0.9, 0.6]], [True, False], "devkit", [False], [True]),
        ([[0.9, 0.6]], [True, False], "greedy", [True], [False]),
        # No object in the image: all false positives.
        (np.zeros((2, 0)), np.zeros(0, bool), "devkit", [False, False], [False, False]),
        (np.zeros((2, 0)), np.zeros(0, bool), "greedy", [False, False], [False, False]),
    ],
)
def test_match_detections_table(similarity, ignored, rule, expected_tp, expected_absorbed):
    tp, absorbed = match_detections(np.asarray(similarity, float), np.asarray(ignored, bool), 0.5, rule)
    assert tp.tolist() == expected_tp
    assert absorbed.tolist() == expected_absorbed


def test_crowd_absorbs_under_devkit():
    # A crowd region keeps COCO's rule (IoU = intersection / detection area) under devkit too:
    # the two detections inside it have IoU 1 with it and are ignored; the third is a TP.
    gt = Objects([0, 0], [[0, 0, 10, 10], [50, 50, 150, 150]], ignore=[False, True])
    pred = dets([[0, 0, 10, 10], [60, 60, 70, 70], [80, 80, 90, 90]], [0.5, 0.9, 0.8])
    for matching in ("devkit", "greedy"):
        assert evaluate_detections([gt], [pred], 1, matching=matching).map == 1.0


# --------------------------------------------------------------------------- against voc_eval
def voc_eval_reference(gts: list[Objects], preds: list[Detections], threshold: float, use_07: bool) -> float:
    """The loop of voc_eval (VOC devkit, DOTA devkit's dota_evaluation_task1.py) for one
    class, written out independently of fewclick's matching: detections of all images in one
    descending score order; each looks at its object of maximum IoU."""
    npos = sum(int((g.difficult == 0).sum()) for g in gts)
    found = [np.zeros(len(g), bool) for g in gts]
    image_of = np.concatenate([np.full(len(p), i) for i, p in enumerate(preds)])
    boxes = np.concatenate([p.boxes for p in preds])
    order = np.argsort(-np.concatenate([p.scores for p in preds]))
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, k in enumerate(order):
        gt = gts[image_of[k]]
        overlaps = box_iou(boxes[k : k + 1], gt.boxes)[0] if len(gt) else np.zeros(0)
        ovmax, jmax = (overlaps.max(), overlaps.argmax()) if len(overlaps) else (-np.inf, -1)
        if ovmax > threshold:
            if not gt.difficult[jmax]:
                if not found[image_of[k]][jmax]:
                    tp[d] = found[image_of[k]][jmax] = True
                else:
                    fp[d] = 1
        else:
            fp[d] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        return float(
            sum(prec[rec >= t].max() if (rec >= t).any() else 0 for t in np.arange(0, 1.1, 0.1)) / 11
        )
    mrec, mpre = np.concatenate([[0], rec, [1]]), np.concatenate([[0], prec, [0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def random_scene(rng: np.random.Generator) -> tuple[Objects, Detections]:
    """Crowded objects (some difficult), detections jittered from them plus strays,
    with distinct scores so that the order is the same for both implementations."""
    n = int(rng.integers(0, 6))
    xy = rng.uniform(0, 20, (n, 2))
    gt_boxes = np.concatenate([xy, xy + rng.uniform(6, 14, (n, 2))], axis=1)
    gt = Objects(np.zeros(n, np.int64), gt_boxes, difficult=(rng.random(n) < 0.2).astype(np.int64))
    m = int(rng.integers(0, 2 * n + 2))
    base = gt_boxes[rng.integers(0, n, m)] if n else rng.uniform(0, 40, (m, 4))
    boxes = base + rng.normal(0, 2.0, (m, 4))
    boxes = np.concatenate(
        [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1
    )
    return gt, dets(boxes, rng.permutation(1000)[:m] / 1000 + 0.0005)


def test_devkit_rule_matches_voc_eval_on_random_scenes(rng):
    differs = 0
    for _ in range(100):
        scenes = [random_scene(rng) for _ in range(3)]
        gts, preds = [s[0] for s in scenes], [s[1] for s in scenes]
        if not sum(int((g.difficult == 0).sum()) for g in gts) or not sum(len(p) for p in preds):
            continue
        # distinct scores across images too: one global order, as voc_eval sorts
        preds = [Detections(p.boxes, p.scores + i, p.labels) for i, p in enumerate(preds)]
        for method, use_07 in (("voc07", True), ("voc12", False)):
            ours = evaluate_detections(gts, preds, 1, 0.5, method)
            assert ours.matching == "devkit"
            assert ours.map == pytest.approx(voc_eval_reference(gts, preds, 0.5, use_07), abs=1e-12)
            greedy = evaluate_detections(gts, preds, 1, 0.5, method, matching="greedy").map
            differs += not math.isclose(greedy, ours.map)
    assert differs > 0  # the random scenes do reach the cases where the rules differ


def test_oriented_images_without_objects_may_have_no_rboxes():
    from fewclick.metrics import evaluate_detections
    from fewclick.types import Detections, Objects

    gt = [Objects([0], [[0, 0, 4, 4]], rboxes=[[2, 2, 4, 4, 0]]), Objects.empty()]
    pred = [Detections([[0, 0, 4, 4]], [0.9], [0], rboxes=[[2, 2, 4, 4, 0]]), Detections.empty()]
    assert evaluate_detections(gt, pred, 1, oriented=True).map == 1.0
