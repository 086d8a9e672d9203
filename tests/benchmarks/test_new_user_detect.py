"""benchmarks/new_user_detect.py's counts and table, on boxes made here (the walk itself
drives Chromium against the app for minutes: run by hand, docs/benchmarks/new_user_detect_bccd.md)."""

import importlib
from pathlib import Path

import numpy as np
import pytest

from fewclick.types import Objects

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def walk(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return importlib.import_module("new_user_detect")


def test_a_shown_box_is_right_only_in_its_object_s_class_and_at_its_iou(walk):
    gt = Objects(np.array([0, 1]), np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32))
    boxes = np.array([[0, 0, 10, 12], [20, 0, 30, 10], [0, 0, 10, 17]], np.float32)
    assert walk.right_counts(gt, boxes, np.array([0, 0, 0])) == {"right_07": 1, "right_05": 1}
    assert walk.right_counts(gt, boxes[1:2], np.array([1])) == {"right_07": 1, "right_05": 1}
    assert walk.right_counts(gt, boxes[2:], np.array([0])) == {"right_07": 0, "right_05": 1}
    assert walk.right_counts(gt, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)) == {
        "right_07": 0,
        "right_05": 0,
    }


def test_the_table_has_a_row_an_image_with_its_waits(walk):
    row = {
        "k": 0, "file": "a.jpg", "opened_in": "box", "objects": 3, "shown_on_open": 2, "right_07": 1,
        "right_05": 2, "clicks": [{"wait_seconds": 0.31}, {"wait_seconds": 12.0}], "right_lost_on_click": 0,
        "accepted": 2, "deleted_by_hand": 1, "drawn_by_hand": 2,
    }  # fmt: skip
    lines = walk.table([row]).splitlines()
    assert len(lines) == 3 and lines[2] == "| 1 a.jpg | box | 3 | 2 | 1 / 2 | 2 | 0.3, 12.0 | 0 | 2 | 1 | 2 |"
