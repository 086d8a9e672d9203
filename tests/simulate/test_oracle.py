"""The box oracle of box-level active learning."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.simulate import box_iou, oracle
from fewclick.types import Objects

GT = Objects(
    labels=[0, 1, 2],
    boxes=[[0, 0, 10, 10], [100, 100, 120, 120], [104, 100, 124, 120]],  # 1 and 2 overlap
    ignore=[False, False, True],
)


@pytest.mark.parametrize(
    "query, label, index, expected_label",
    [
        ([0, 0, 10, 20], 0, 0, 0),  # IoU exactly 0.5 (100 / 200): a match
        ([0, 0, 10.5, 20], 0, -1, -1),  # IoU 100 / 210 < 0.5: background
        ([1, 1, 11, 11], 5, 0, 0),  # wrong class: snapped and relabelled (the paper)
        ([101, 100, 121, 120], 2, 1, 1),  # overlaps 1 (IoU 0.90) and 2 (0.60): max IoU wins
        ([300, 300, 310, 310], 0, -1, -1),  # matches nothing: background
    ],
)
def test_oracle_hand_cases(query, label, index, expected_label):
    answer = oracle(np.array([query], np.float32), [label], GT)
    assert answer.gt_index.tolist() == [index]
    assert answer.labels.tolist() == [expected_label]
    expected_box = GT.boxes[index] if index >= 0 else np.array(query, np.float32)
    np.testing.assert_array_equal(answer.boxes[0], expected_box)  # snapped, or left as queried
    assert answer.background.tolist() == [index == -1]


def test_match_class_option():
    queries = np.array([[1, 1, 11, 11], [101, 100, 121, 120]], np.float32)
    answer = oracle(queries, [5, 2], GT, match_class=True)
    assert answer.gt_index.tolist() == [-1, 2]  # wrong class is background; same class only
    assert answer.ignore.tolist() == [False, True]


def test_threshold_and_iou_reported():
    answer = oracle(np.array([[0, 0, 10, 20]], np.float32), [0], GT, iou_threshold=0.6)
    assert answer.background.all()
    assert answer.iou.tolist() == [0.5]


def test_empty_cases():
    none = oracle(np.zeros((0, 4)), [], GT)
    assert len(none) == 0 and none.boxes.shape == (0, 4)
    answer = oracle(np.array([[0, 0, 5, 5]]), [1], Objects.empty())
    assert answer.gt_index.tolist() == [-1] and answer.labels.tolist() == [-1]
    np.testing.assert_array_equal(answer.boxes, [[0, 0, 5, 5]])


def test_box_without_coordinates_never_matches():
    gt = Objects([0], [[np.nan] * 4], points=[[5, 5]])
    assert oracle(np.array([[0, 0, 10, 10]]), [0], gt).background.all()


def test_label_count_must_match():
    with pytest.raises(ValueError):
        oracle(np.zeros((2, 4)), [0], GT)


def test_box_iou_table():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 1.0], [0.0, 0.0]])
