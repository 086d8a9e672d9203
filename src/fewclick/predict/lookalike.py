"""Look-alikes of clicked objects among an image's proposals: exemplar matching, no training (issue 52).

The clicked objects of a class are its positive exemplars; proposals the person deleted,
or whose class they fixed, are negatives. Every vector is a proposal's unit feature vector
(:mod:`fewclick.predict.proposals`). A proposal's score for a class is read relative to the
image's background, so that no absolute similarity is needed:

    score = (cos(p, e) - cos(b, e)) / (1 - cos(b, e))    for the class's exemplar e nearest p

where ``b`` is the mean feature of what no proposal covers. 1 is "as like the exemplar as
itself", 0 "as like it as the background is". A proposal goes to the class it scores best
in, and is a look-alike when that score clears the class's threshold (its default,
:data:`RELATIVE`, chosen on training images by ``benchmarks/lookalikes.py``) and it is more
like the class's positives than like any negative. Matching is a few matrix products: a
further click or deletion re-ranks at once, with no new SAM call.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.predict.proposals import Proposals
from fewclick.types import Detections

RELATIVE = 0.5
CLICKED_IOU = 0.5  # a proposal overlapping a clicked object's box this much is that object


def clicked_proposal(proposals: Proposals, x: float, y: float) -> int | None:
    """The proposal whose mask holds the point (x, y), surest first, smallest on a tie; None
    when no mask holds it."""
    best = None
    for i, ((x0, y0, mask), score) in enumerate(zip(proposals.masks, proposals.scores)):
        c, r = int(np.floor(x)) - x0, int(np.floor(y)) - y0
        if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c]:
            rank = (-float(score), int(mask.sum()))
            if best is None or rank < best[0]:
                best = (rank, i)
    return None if best is None else best[1]


def relative_scores(proposals: Proposals, exemplars: np.ndarray) -> np.ndarray:
    """``float32[N, K]``: each proposal's score against each exemplar ``[K, D]`` (module docstring)."""
    exemplars = np.asarray(exemplars, np.float32).reshape(-1, proposals.vectors.shape[1])
    base = exemplars @ proposals.background  # [K]
    return (proposals.vectors @ exemplars.T - base) / np.maximum(1.0 - base, 1e-3)


def look_alikes(
    proposals: Proposals,
    positives: Mapping[int, np.ndarray],
    negatives: np.ndarray | None = None,
    thresholds: Mapping[int, float] | None = None,
    clicked: np.ndarray | None = None,
) -> Detections:
    """The proposals like ``positives`` (class id -> ``[K, D]`` exemplar vectors), scored by
    their relative score, best first; without those more like a ``negatives`` vector than
    like their class's positives, and those on a ``clicked`` box (``[M, 4]``: the clicked
    objects, which the caller returns itself)."""
    n = len(proposals)
    classes = [c for c, v in positives.items() if len(np.asarray(v).reshape(-1))]
    if not n or not classes:
        return Detections.empty()
    per_class = np.stack([relative_scores(proposals, positives[c]).max(1) for c in classes], 1)  # [N, C]
    best = per_class.argmax(1)
    score = per_class[np.arange(n), best]
    labels = np.asarray(classes, np.int64)[best]
    cut = np.array([(thresholds or {}).get(int(c), RELATIVE) for c in labels], np.float32)
    keep = score >= cut
    if negatives is not None and len(np.asarray(negatives).reshape(-1)):
        negatives = np.asarray(negatives, np.float32).reshape(-1, proposals.vectors.shape[1])
        near_negative = (proposals.vectors @ negatives.T).max(1)
        near_positive = np.array(
            [
                (
                    proposals.vectors[i]
                    @ np.asarray(positives[int(c)], np.float32).reshape(-1, proposals.vectors.shape[1]).T
                ).max()
                for i, c in enumerate(labels)
            ]
        )
        keep &= near_positive > near_negative
    if clicked is not None and len(clicked):
        keep &= box_iou(proposals.boxes, np.asarray(clicked, np.float32).reshape(-1, 4)).max(1) < CLICKED_IOU
    index = np.nonzero(keep)[0]
    index = index[np.argsort(-score[index], kind="stable")]
    return Detections(proposals.boxes[index], score[index], labels[index])
