"""Which proposals the page shows, and what an image opened with keeps after a click (issue 67).

The page (``modes/detect.js``: ``shownProposals``, ``rescueFloor``, ``sliderValue``) shows a
proposal from a floor: until the person moves the slider, a class nobody clicked from its
own score of least work on the finished images (the answer's ``min_scores``), a clicked
class from the slider's start; when those floors hide every box, all show from the best
score less :data:`RESCUE_SPAN` (never below :data:`RESCUE_FLOOR`). :func:`page_floors` is
that rule; the campaign's simulated person applies it to the answers it reads, so it sees
what the page shows.

A click adds and never takes away (:func:`after_clicks`): the look-alikes an image opened
with (matched to the finished images' objects) stay in the answer to its clicks, in their
class, and still clear the floor they are shown from; the click adds its object and the
proposals like it, and a proposal not shown on open goes to the class it clears best.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RESCUE_SPAN, RESCUE_FLOOR = 0.2, 0.3  # detect.js: the page never hides every box of an image
SLIDER_LOW, SLIDER_HIGH, SLIDER_STEP = 0.05, 0.95, 0.05  # detect.js: the score slider's range
TOP_ALIKE = 0.999  # a look-alike's score stays under a clicked object's 1


def slider_value(threshold: float) -> float:
    """The slider's step at or below ``threshold`` (detect.js ``sliderValue``), so that a
    proposal scored at it still shows."""
    step = np.floor(threshold / SLIDER_STEP + 1e-9) * SLIDER_STEP
    return float(min(SLIDER_HIGH, max(SLIDER_LOW, round(step, 2))))


def page_floors(
    scores: np.ndarray, labels: np.ndarray, per_class: Mapping[int, float], start: float, clicked=()
) -> np.ndarray:
    """``float32[N]``: the score from which the page shows each proposal (``scores``,
    ``labels`` ``[N]``) before the slider is moved: a class in ``clicked`` from ``start``
    (the slider's), any other from ``per_class`` (its least-work score; at most 1) or
    ``start``; when that shows nothing, every proposal from the best score less
    :data:`RESCUE_SPAN` (the page's rescue), if that is at least :data:`RESCUE_FLOOR`."""
    scores = np.asarray(scores, np.float32).reshape(-1)
    clicked = {int(c) for c in clicked}
    floors = np.array(
        [start if int(c) in clicked else min(1.0, per_class.get(int(c), start)) for c in labels], np.float32
    ).reshape(-1)
    if len(scores) and not (scores >= floors).any():
        rescue = max(RESCUE_FLOOR, float(scores.max()) - RESCUE_SPAN)
        if scores.max() >= rescue:
            floors[:] = rescue
    return floors


def after_clicks(
    opened: tuple[np.ndarray, np.ndarray, np.ndarray],
    clicked: tuple[np.ndarray, np.ndarray, np.ndarray],
    least: Mapping[int, float],
    clicked_classes,
    start: float,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[int, float]]:
    """The look-alikes answering clicks, with what the image opened with kept.

    ``opened`` and ``clicked`` are ``(index int64[M], scores float32[M], labels int64[M])``
    over one image's proposals: the look-alikes without clicks (each class matched to the
    finished images' objects; what the image opened with) and with them (a clicked class
    matched to its clicked objects; the clicked objects themselves left out of both by the
    caller). ``least``: per class, the score of least work the page opened the class with
    (:func:`page_floors`); ``start``: the slider's start for a clicked class.

    Returns the merged look-alikes, best first, and the per-class scores of the classes not
    clicked (the answer's ``min_scores``). Every proposal the page showed on open is in it,
    in the class it showed, and clears its floor again: a clicked class's scores from
    ``opened`` are read on the click's scale (times ``start`` over the floor the class opened
    with, at most :data:`TOP_ALIKE`), and a class not clicked keeps the floor it opened
    with. Any other proposal goes to whichever of its two answers clears its floor by the
    larger factor."""
    clicked_classes = {int(c) for c in clicked_classes}
    index, scores, labels = (np.asarray(v) for v in opened)
    floors = page_floors(scores, labels, least, start)
    shown = scores >= floors
    opened_floor, per_class = _floors_after(labels, floors, least, clicked_classes)
    rescaled = np.array(
        [_on_click_scale(s, int(c), opened_floor, clicked_classes, start) for s, c in zip(scores, labels)],
        np.float32,
    ).reshape(-1)

    def clears(score: float, label: int) -> float:  # how far a score clears its class's floor
        floor = start if label in clicked_classes else per_class.get(label, start)
        return score / max(floor, 1e-6)

    merged: dict[int, tuple[float, int]] = {}
    for i, s, c in zip(*(np.asarray(v) for v in clicked)):
        merged[int(i)] = (float(s), int(c))
    for i, s, c, was_shown in zip(index, rescaled, labels, shown):
        other = merged.get(int(i))
        if was_shown or other is None or clears(float(s), int(c)) > clears(*other):
            merged[int(i)] = (float(s), int(c))
    order = sorted(merged, key=lambda i: -merged[i][0])
    out = (
        np.asarray(order, np.int64),
        np.array([merged[i][0] for i in order], np.float32),
        np.array([merged[i][1] for i in order], np.int64),
    )
    return out, per_class


def keep_opened_boxes(
    opened: tuple[np.ndarray, np.ndarray, np.ndarray],
    answer: tuple[np.ndarray, np.ndarray, np.ndarray],
    least: Mapping[int, float],
    clicked_classes,
    start: float,
    same_iou: float = 0.5,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[int, float]]:
    """:func:`after_clicks` for a detector's boxes, which are made anew for each request:
    ``opened`` and ``answer`` are ``(boxes float32[N, 4], scores float32[N], labels
    int64[N])``, the detector's answer without clicks and with them. A box the page showed
    on open that the answer does not show (no box of its class at IoU >= ``same_iou`` clears
    its floor) is added to it, in place of those of its class it overlaps that much, at a
    score that clears its floor as :func:`after_clicks` reads it. Returns the boxes and the
    per-class scores of the classes not clicked."""
    from fewclick.metrics.detection import box_iou

    clicked_classes = {int(c) for c in clicked_classes}
    boxes0, scores0, labels0 = (np.asarray(v) for v in opened)
    boxes, scores, labels = (np.asarray(v) for v in answer)
    floors0 = page_floors(scores0, labels0, least, start)
    opened_floor, per_class = _floors_after(labels0, floors0, least, clicked_classes)
    floors = np.array([start if int(c) in clicked_classes else per_class.get(int(c), start) for c in labels])
    keep = np.ones(len(boxes), bool)
    extra = []
    overlap = box_iou(boxes0, boxes) if len(boxes0) and len(boxes) else np.zeros((len(boxes0), len(boxes)))
    for k in np.flatnonzero(scores0 >= floors0):
        same = (overlap[k] >= same_iou) & (labels == labels0[k])
        if (same & (scores >= floors)).any():
            continue
        keep &= ~same
        c = int(labels0[k])
        extra.append((boxes0[k], _on_click_scale(scores0[k], c, opened_floor, clicked_classes, start), c))
    merged = (
        np.concatenate([boxes[keep], np.asarray([e[0] for e in extra], np.float32).reshape(-1, 4)]),
        np.concatenate([scores[keep], np.asarray([e[1] for e in extra], np.float32)]).astype(np.float32),
        np.concatenate([labels[keep], np.asarray([e[2] for e in extra], np.int64)]).astype(np.int64),
    )
    return merged, per_class


def _floors_after(labels: np.ndarray, floors: np.ndarray, least: Mapping[int, float], clicked: set[int]):
    """``(opened, per_class)``: each class's floor on open (one per class: its own score, the
    slider's start, or the rescue), and the floors of the classes not clicked after a click:
    those they opened with (a class with nothing here: its own score, at most 1)."""
    opened = {int(c): float(f) for c, f in zip(labels, floors)}
    per_class = {c: f for c, f in opened.items() if c not in clicked}
    for c, t in least.items():
        if c not in clicked:
            per_class.setdefault(int(c), min(1.0, t))
    return opened, per_class


def _on_click_scale(score: float, label: int, opened: dict, clicked: set[int], start: float) -> float:
    """An opening score of a clicked class read on the click's scale (times the slider's
    start over the floor its class opened with, at most :data:`TOP_ALIKE`): what cleared
    that floor clears the start. A class not clicked keeps its score."""
    if label not in clicked:
        return float(score)
    return float(min(TOP_ALIKE, score * start / max(opened[label], 1e-6)))
