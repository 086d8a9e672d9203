"""Which of SAM's four masks serves a prompt, and a project's offsets for that choice."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.models.sam_pick import (
    MIN_RECORDS,
    OFFSETS_KEY,
    dump_offsets,
    fit_offsets,
    parse_offsets,
    prompt_kind,
    ranked,
    served_index,
)


def test_without_offsets_the_choice_is_the_exports():
    iou = np.array([0.99, 0.5, 0.8, 0.7])
    assert prompt_kind(2, True) == "box" and prompt_kind(2, False) == "click" and prompt_kind(3, True) is None
    assert served_index(iou, 2, "box") == 2, "masks 1-3 for an ambiguous prompt, mask 0 left out"
    assert served_index(iou, 3, None) == 0, "mask 0 for more points"
    assert ranked(iou, 2, "box") == [2, 3, 1] and ranked(iou, 4, None) == [0]


def test_offsets_choose_among_all_four_for_their_kind_only():
    iou = np.array([0.6, 0.5, 0.8, 0.7])
    offsets = {"box": [0.3, 0.0, -0.5, 0.0]}
    assert served_index(iou, 2, "box", offsets) == 0
    assert ranked(iou, 2, "box", offsets) == [0, 3, 1, 2]
    assert served_index(iou, 2, "click", offsets) == 2, "no offsets for clicks: the export's choice"
    assert served_index(iou, 5, None, offsets) == 0


def _records(kind: str, n: int, best: int, rng) -> list:
    """Prompts where SAM predicts mask 2 best but mask ``best`` fits best."""
    out = []
    for _ in range(n):
        predicted = np.array([0.6, 0.7, 0.9, 0.65]) + rng.normal(0, 0.01, 4)
        actual = np.full(4, 0.4) + rng.normal(0, 0.01, 4)
        actual[best] = 0.9
        out.append((kind, predicted, actual))
    return out


def test_fitting_finds_the_mask_that_fits_and_leaves_a_kind_without_gain_alone():
    rng = np.random.default_rng(0)
    records = _records("box", 40, 1, rng) + _records("click", 40, 2, rng)
    offsets = fit_offsets(records)
    assert set(offsets) == {"box"}, "the clicks' served mask is already the best: no offsets"
    assert served_index(np.array([0.6, 0.7, 0.9, 0.65]), 2, "box", offsets) == 1
    assert offsets["box"][1] == 0.0
    # the smallest offsets that do it: mask 2 brought just under mask 1, the others untouched
    assert offsets["box"][0] == 0.0 and offsets["box"][3] == 0.0 and -0.25 <= offsets["box"][2] < -0.15
    assert fit_offsets(_records("box", MIN_RECORDS - 1, 1, rng)) == {}, "too few prompts to fit"


def test_offsets_travel_as_text_and_bad_text_is_named():
    offsets = {"box": [0.1, 0.0, -0.25, 0.05], "click": [0.0, 0.0, 0.0, -0.5]}
    assert parse_offsets(dump_offsets(offsets), "f.onnx") == offsets
    assert parse_offsets(None, "f.onnx") is None
    with pytest.raises(ValueError, match=f"f.onnx: the metadata {OFFSETS_KEY} is not JSON"):
        parse_offsets("{box", "f.onnx")
    for bad in ('{"box": [1, 2]}', '{"scribble": [0, 0, 0, 0]}', "[0, 0, 0, 0]", '{"box": [0, 0, "a", 0]}'):
        with pytest.raises(ValueError, match="expected fewclick.iou_offsets to map 'box' / 'click'"):
            parse_offsets(bad, "f.onnx")
