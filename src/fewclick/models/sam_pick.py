"""Which of SAM's four masks a prompt is served, and a project's offsets for that choice.

SAM's decoder predicts four masks and an IoU for each. Its ONNX export serves, for a prompt
of at most :data:`AMBIGUOUS_POINTS` points (a box alone, or one click and its padding), the
best predicted of masks 1-3, and otherwise mask 0. The predicted IoUs are SAM's, from SA-1B:
on a project's objects they pick a worse mask than the best one often (measured on our
training parts: the best of the four for a box was 0.06 mIoU above the one served on
coco_tiny, 0.04 on dsb2018_nuclei; for a click 0.17 and 0.08).

A tuned decoder carries ``offsets``: per prompt kind (``"box"`` alone, or one ``"click"``),
four numbers added to the predicted IoUs before the best is taken among all four masks.
They are fit on the project's masks (:func:`fit_offsets`) and stored in the ONNX file's
metadata under :data:`OFFSETS_KEY`, so the file SamPredictor runs carries them. Without
offsets the choice is the export's. No torch here: the app's predictors import it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping

import numpy as np

AMBIGUOUS_POINTS = 2  # SAM's ONNX export: up to this many points, the best of masks 1-3
MASKS = 4
PROMPT_KINDS = ("box", "click")
OFFSETS_KEY = "fewclick.iou_offsets"  # the ONNX metadata key of a tuned decoder's offsets
#: the offsets searched (mask 1's is 0: only differences change the choice)
OFFSET_GRID = tuple(round(v, 2) for v in np.arange(-0.5, 0.501, 0.05))
MIN_RECORDS = 20  # prompts of a kind before offsets are fit for it
MIN_GAIN = 0.002  # mIoU the offsets must add on the prompts fit, else none


def prompt_kind(points: int, has_box: bool) -> str | None:
    """``"box"`` for a box alone, ``"click"`` for one click, None for a prompt SAM answers
    with mask 0; ``points`` counts the prompt's points (a box's two corners, a padding point)."""
    if points > AMBIGUOUS_POINTS:
        return None
    return "box" if has_box else "click"


def served_index(iou: np.ndarray, points: int, kind: str | None, offsets: Mapping | None = None) -> int:
    """The mask SAM serves for a prompt of ``points`` points, given the four predicted IoUs:
    with ``offsets`` for the prompt's ``kind``, the best of the four after the offsets; else
    the export's choice."""
    return ranked(iou, points, kind, offsets)[0]


def ranked(iou: np.ndarray, points: int, kind: str | None, offsets: Mapping | None = None) -> list[int]:
    """The masks a person may switch between for an ambiguous prompt, the one served first,
    then the others best predicted first (after the offsets for the prompt's ``kind``: among
    all four; without them among masks 1-3, as the export); for any other prompt mask 0."""
    if points > AMBIGUOUS_POINTS:
        return [0]
    iou = np.asarray(iou, np.float64).reshape(-1)
    if offsets and kind in offsets:
        pool, score = range(MASKS), iou + np.asarray(offsets[kind], np.float64)
    else:
        pool, score = range(1, MASKS), iou
    return sorted(pool, key=lambda i: (-score[i], i))


def fit_offsets(records: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, list[float]]:
    """Offsets per prompt kind from ``records`` ``(kind, predicted IoUs [4], actual IoUs
    [4])``: those of :data:`OFFSET_GRID` (mask 1's held at 0) whose choice has the highest
    mean actual IoU, kept when they add more than :data:`MIN_GAIN` over the export's choice
    and the kind has :data:`MIN_RECORDS` prompts. Ties go to the smallest offsets."""
    by_kind: dict[str, list] = {}
    for kind, predicted, actual in records:
        by_kind.setdefault(kind, []).append((np.ravel(predicted), np.ravel(actual)))
    fitted = {}
    for kind, rows in sorted(by_kind.items()):
        if kind not in PROMPT_KINDS or len(rows) < MIN_RECORDS:
            continue
        predicted = np.array([r[0] for r in rows], np.float64)
        actual = np.array([r[1] for r in rows], np.float64)
        index = np.arange(len(rows))
        export = actual[index, 1 + predicted[:, 1:].argmax(1)].mean()
        best_key, chosen = None, None
        for o0, o2, o3 in itertools.product(OFFSET_GRID, repeat=3):
            offsets = np.array([o0, 0.0, o2, o3])
            score = actual[index, (predicted + offsets).argmax(1)].mean()
            key = (-score, float(np.abs(offsets).sum()))
            if best_key is None or key < best_key:
                best_key, chosen = key, offsets
        if -best_key[0] > export + MIN_GAIN:
            fitted[kind] = [float(v) for v in chosen]
    return fitted


def parse_offsets(text: str | None, where: str) -> dict[str, list[float]] | None:
    """The offsets stored in an ONNX file's metadata (None when there are none); ValueError
    naming ``where`` when they are not a mapping of prompt kinds to four numbers."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: the metadata {OFFSETS_KEY} is not JSON ({exc})") from None
    ok = isinstance(value, dict) and all(
        k in PROMPT_KINDS
        and isinstance(v, list)
        and len(v) == MASKS
        and all(isinstance(x, int | float) and np.isfinite(x) for x in v)
        for k, v in value.items()
    )
    if not ok:
        raise ValueError(
            f"{where}: expected {OFFSETS_KEY} to map 'box' / 'click' to four numbers, got {text[:200]!r}"
        )
    return {k: [float(x) for x in v] for k, v in value.items()}


def dump_offsets(offsets: Mapping[str, list[float]]) -> str:
    return json.dumps({k: [round(float(x), 4) for x in v] for k, v in sorted(offsets.items())})
