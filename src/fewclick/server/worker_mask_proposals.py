"""Mask mode on open (issue 54): the look-alikes of the finished images' objects among an
image's SAM proposals (made ahead by :mod:`fewclick.server.worker_proposals`), each with its
own mask, in the worker process."""

from __future__ import annotations

import numpy as np

from fewclick.server.worker_proposals import carried, large_file, ready

MASK_KEPT_IOU = 0.85  # a proposal whose box is looser than this is a mask redone
SAME_MASK_IOU = 0.5  # a look-alike this close to a better one's mask is that object


def mask_look_alikes(folder: str, key: str, finished: list | None, iou: float = MASK_KEPT_IOU):
    """What mask mode opens an image with (issue 54): the look-alikes of the ``finished``
    images' objects among its proposals, each with its own mask, before any click (None while
    the proposals are not made). The thresholds of least work are chosen with a proposal
    right only at box IoU ``iou``: a mask is kept at IoU 0.85, so a looser box is a mask
    to redo, not one saved. A look-alike whose mask is the same object as a better one's
    (:func:`_same_objects`) is left out: Enter would save the object twice. ``{"state",
    "made", "boxes", "scores", "labels" (class positions), "masks" (COCO RLEs at the image's
    size), "min_scores" (class position -> threshold), "threshold" (where a class without one
    starts)}``, best first; state "learning" (nothing else) while no finished image's
    proposals are made yet to learn from (they are being made: ask again)."""
    from fewclick.io.rle import mask_to_rle
    from fewclick.predict import lookalike

    found = ready(folder, key)
    if found is None:
        return None
    exemplars, least, _ = carried(folder, finished, iou=iou)
    if not exemplars and any(ready(folder, k) is None and not large_file(p) for k, p, *_ in finished or []):
        return {"state": "learning"}
    positives = {c: v for c, (v, _) in exemplars.items()}
    areas = {c: a for c, (_, a) in exemplars.items()}
    index, scores, labels = lookalike.alike_index(
        found, positives, thresholds=dict.fromkeys(positives, 0.0), areas=areas
    )
    keep = _same_objects(found, index)
    index, scores, labels = index[keep], scores[keep], labels[keep]
    height, width = found.image_size
    masks = []
    for i in index:
        x0, y0, crop = found.masks[int(i)]
        full = np.zeros((height, width), bool)
        full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        masks.append(mask_to_rle(full))
    return {
        "state": "ready",
        "made": len(found),
        "boxes": found.boxes[index].round(2).tolist(),
        "scores": scores.round(4).tolist(),
        "labels": labels.tolist(),
        "masks": masks,
        "min_scores": {int(c): float(t) for c, t in least.items()},
        "threshold": lookalike.RELATIVE,
    }


def _same_objects(found, index: np.ndarray) -> np.ndarray:
    """``bool[len(index)]``: which of the proposals ``index`` (best first) are kept when one
    whose mask overlaps a better kept one's at IoU >= :data:`SAME_MASK_IOU` goes: box NMS
    at 0.7 lets two masks of one nucleus through when one takes in a sliver more. (One
    inside a larger one is not dropped: the larger may be two objects.)"""
    keep = np.ones(len(index), bool)
    kept: list[int] = []
    for n, i in enumerate(index):
        x0, y0, a = found.masks[int(i)]
        for j in kept:
            u0, v0, b = found.masks[j]
            left, top = max(x0, u0), max(y0, v0)
            right, bottom = min(x0 + a.shape[1], u0 + b.shape[1]), min(y0 + a.shape[0], v0 + b.shape[0])
            if right <= left or bottom <= top:
                continue
            both = (
                a[top - y0 : bottom - y0, left - x0 : right - x0]
                & b[top - v0 : bottom - v0, left - u0 : right - u0]
            ).sum()
            if both >= SAME_MASK_IOU * (a.sum() + b.sum() - both):
                keep[n] = False
                break
        if keep[n]:
            kept.append(int(i))
    return keep
