"""The worker's last mask answers (:mod:`fewclick.server.worker_masks`): one per mask in the
making, keyed by image, backend, model and box (None for a click start), the
:data:`KEPT` most recently used. A click adds to its answer (SAM's state goes back), a
stroke paints it, a request asked again gets it back; one evicted is made anew.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from fewclick.predict.segment_api import MaskPrediction

#: how many masks in the making are kept (the least recently used goes first)
KEPT = 8


class Answer(NamedTuple):
    """What a segment request was answered with."""

    clicks: list  # the clicks [x, y, positive] it answered
    pred: MaskPrediction
    quality: float | None
    changed: float | None  # the share of the mask the last click changed
    zoom: str | None  # "window", "encoding" (asked again once the window is encoded) or None
    framed: list | None  # the box a click start's corrective clicks prompt SAM with


_LAST: OrderedDict[tuple, Answer] = OrderedDict()


def last(key: tuple) -> Answer | None:
    """The answer kept for ``key``, now the most recently used; None without one."""
    found = _LAST.get(key)
    if found is not None:
        _LAST.move_to_end(key)
    return found


def remember(key: tuple, answer: Answer) -> None:
    """Keep ``answer`` for ``key``; the least recently used beyond :data:`KEPT` go."""
    _LAST[key] = answer
    _LAST.move_to_end(key)
    while len(_LAST) > KEPT:
        _LAST.popitem(last=False)


def framed(box, made: list, before: MaskPrediction | None, kept: Answer | None, path: str) -> list | None:
    """After a click start (no ``box``), the box a corrective click prompts SAM with
    (:func:`fewclick.predict.zoom.framing_box` of the candidate ``before`` it corrects, joined
    with the one ``kept`` by the answer before); the ``kept`` one for the same clicks asked
    again (its zoom window was encoded) or for clicks after an undo; else None. ``path``: the
    image (not a large one), whose size is read only when a box is framed."""
    if box is not None or len(made) < 2 or kept is None:
        return None
    if before is None:  # asked again, or an undo took clicks back: the same mask in the making
        return kept.framed if kept.clicks[: len(made) - 1] == made[:-1] else None
    from fewclick.predict.zoom import framing_box
    from fewclick.server import worker

    return framing_box(before, made, worker.image(path).shape[:2], kept.framed)
