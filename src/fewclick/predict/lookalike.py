"""Look-alikes of clicked objects among an image's proposals: exemplar matching, no training (issue 52).

The clicked objects of a class are its positive exemplars; proposals the person deleted,
or whose class they fixed, are negatives. Every vector is a proposal's unit feature vector
(:mod:`fewclick.predict.proposals`). A proposal's score for a class is read relative to the
image's background, so that no absolute similarity is needed:

    score = (cos(p, e) - cos(b, e)) / (1 - cos(b, e))    for the class's exemplar e nearest p

where ``b`` is the mean feature of what no proposal covers. 1 is "as like the exemplar as
itself", 0 "as like it as the background is". That is weighed by SAM's own confidence in
the proposal (its score: predicted IoU times stability) and, when the exemplars' mask areas
are given, by how near the proposal's area is to that exemplar's: within :data:`SIZE_FREE`
(a factor of 2) it costs nothing, beyond it the weight falls as the ratio grows. On the
dsb2018 train images both told wrong proposals apart: the right ones' SAM score p10 0.90
against the wrong ones' median 0.85, their area ratio median 1.3x against 4.3x. A
proposal goes to the class it scores best in, and is a look-alike when that score clears
the class's threshold (its default, :data:`RELATIVE`, chosen on training images by
``benchmarks/lookalikes.py``) and it is more like the class's positives than like any
negative. Matching is a few matrix products: a
further click or deletion re-ranks at once, with no new SAM call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.predict.proposals import Proposals
from fewclick.types import Detections

RELATIVE = 0.5
SIZE_FREE = float(np.log(2.0))  # an area within this log-ratio of the exemplar's is not weighed
CLICKED_IOU = 0.5  # a proposal overlapping a clicked object's box this much is that object
SIDE_FREE = 2.0  # a proposal whose box side is within this factor of its class's is of its size
SUFFIX = ".proposals.npz"  # an image's proposals beside its embedding: <key>.proposals.npz


def proposals_file(folder: str | Path, key: str) -> Path:
    """Where the proposals of the image of embedding ``key`` are kept in an embeddings ``folder``."""
    return Path(folder) / f"{key}{SUFFIX}"


def clicked_objects(
    proposals: Proposals,
    xy: np.ndarray,
    own: Callable[[float, float], Proposals],
    sides: np.ndarray | None = None,
) -> tuple[Proposals, list[int], list[int]]:
    """Each click's object at ``xy`` ``[N, 2]``: the proposal the click lands on
    (:func:`clicked_proposal`, at the click's class side ``sides[i]`` in pixels when given:
    NaN for a class with no finished box yet), else ``own(x, y)`` (SAM's object there: one
    proposal, or none when SAM finds nothing). ``(objects, found, unboxed)``: the objects as
    proposals, in the clicks' order, the indices of the clicks they belong to, and those of
    the clicks with none. A click on a proposal an earlier click took adds nothing: each
    object once."""
    parts, found, unboxed, taken = [], [], [], set()
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    for i, (x, y) in enumerate(xy):
        side = None if sides is None or not np.isfinite(sides[i]) else float(sides[i])
        index = clicked_proposal(proposals, float(x), float(y), side)
        if index is not None and index in taken:  # a second click on one object: boxed once
            continue
        taken.add(index)
        one = own(float(x), float(y)) if index is None else proposals.take([index])
        if len(one):
            parts.append(one)
            found.append(i)
        else:
            unboxed.append(i)
    dim = proposals.vectors.shape[1]
    objects = Proposals.empty(dim, proposals.image_size)
    if parts:
        objects = Proposals(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.vectors for p in parts]),
            [m for p in parts for m in p.masks],
            proposals.background,
            proposals.image_size,
        )
    return objects, found, unboxed


def clicked_proposal(proposals: Proposals, x: float, y: float, side: float | None = None) -> int | None:
    """The proposal a click at (x, y) lands on, None when there is none.

    Without ``side``: the proposal whose mask holds the point, surest first, smallest on a
    tie. With ``side`` (the clicked class's box side in pixels, from its finished objects):
    among the proposals at the class's size (a box side within a factor of :data:`SIDE_FREE`
    of it), the surest whose mask, holes filled, holds the point, else the surest whose
    box's middle half holds it; a click at a blood cell's pale centre then lands on the
    cell, not on the centre or an inclusion inside it. When no proposal there has the
    class's size, the rule without it."""
    b = proposals.boxes
    near = np.flatnonzero((b[:, 0] <= x + 2) & (b[:, 2] >= x - 2) & (b[:, 1] <= y + 2) & (b[:, 3] >= y - 2))
    if side is not None and side > 0:
        sides = np.sqrt(np.maximum(b[near, 2] - b[near, 0], 1.0) * np.maximum(b[near, 3] - b[near, 1], 1.0))
        sized = near[np.abs(np.log(sides / side)) <= np.log(SIDE_FREE)]
        holding = [i for i in sized if _holds(proposals, i, x, y, filled=True)]
        middle = [i for i in sized if _in_middle(b[i], x, y)]  # a crescent's cell, clicked at its middle
        ranked = sorted(holding or middle, key=lambda i: -proposals.scores[i])
        if ranked:
            return int(ranked[0])
    best = None
    for i in near:  # only the masks whose box holds the point (5,000 proposals: a few)
        if _holds(proposals, i, x, y):
            rank = (-float(proposals.scores[i]), int(proposals.masks[i][2].sum()))
            if best is None or rank < best[0]:
                best = (rank, int(i))
    return None if best is None else best[1]


def _in_middle(box: np.ndarray, x: float, y: float) -> bool:
    """Whether (x, y) lies in the middle half of ``box`` (XYXY) along each axis."""
    cx, cy, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
    return abs(x - cx) <= w / 4 and abs(y - cy) <= h / 4


def _holds(proposals: Proposals, index: int, x: float, y: float, filled: bool = False) -> bool:
    """Whether proposal ``index``'s mask (its holes ``filled``: a cell's pale centre is the
    cell's) holds the point (x, y)."""
    x0, y0, mask = proposals.masks[index]
    c, r = int(np.floor(x)) - x0, int(np.floor(y)) - y0
    if not (0 <= r < mask.shape[0] and 0 <= c < mask.shape[1]):
        return False
    if mask[r, c] or not filled:
        return bool(mask[r, c])
    from scipy.ndimage import binary_fill_holes

    return bool(binary_fill_holes(mask)[r, c])


def proposal_mask(proposals: Proposals, index: int) -> np.ndarray:
    """``bool[H, W]``: proposal ``index``'s mask in the image's pixels (its crop placed at its
    box, what lies past the image's edge cut off)."""
    x0, y0, crop = proposals.masks[index]
    mask = np.zeros(proposals.image_size, bool)
    height, width = mask[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]].shape
    mask[y0 : y0 + height, x0 : x0 + width] = crop[:height, :width]
    return mask


def rejected_vectors(proposals: Proposals, boxes) -> np.ndarray:
    """``float32[K, D]``: the vectors of the proposals the person rejected on the page, found
    by their ``boxes`` (``[K, 4]``, as shown: maybe moved by the edge offsets or E): each
    box's proposal of highest IoU, at least :data:`CLICKED_IOU` (a box with none is left out)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes) or not len(proposals):
        return np.zeros((0, proposals.vectors.shape[1]), np.float32)
    iou = box_iou(boxes, proposals.boxes)
    best = iou.argmax(1)
    return proposals.vectors[best[iou[np.arange(len(boxes)), best] >= CLICKED_IOU]]


def clicked_and_alike(
    proposals: Proposals,
    objects: Proposals,
    labels: np.ndarray,
    carried: Mapping | None = None,
    negatives: np.ndarray | None = None,
) -> tuple[Detections, Detections]:
    """``(shown, alike)``: the clicked ``objects`` (classes ``labels``) at score 1, then their
    look-alikes among ``proposals`` at any score above the background's, best first (scores
    kept under 1); ``alike`` the look-alikes alone. A clicked class is matched to its clicked
    objects alone; the other classes to ``carried`` (class -> ``(vectors, mask areas)``, the
    finished images' exemplars), when given. A proposal more like one of ``negatives`` (the
    vectors of proposals the person rejected) than like its class's exemplars is left out."""
    labels = np.asarray(labels, np.int64).reshape(-1)
    positives = {c: v for c, (v, _) in (carried or {}).items()}
    areas = {c: a for c, (_, a) in (carried or {}).items()}
    own = objects.areas()
    for c in np.unique(labels).astype(int):
        positives[int(c)], areas[int(c)] = objects.vectors[labels == c], own[labels == c]
    alike = look_alikes(
        proposals,
        positives,
        negatives,
        thresholds=dict.fromkeys(positives, 0.0),
        clicked=objects.boxes,
        areas=areas,
    )
    shown = Detections(
        np.concatenate([objects.boxes, alike.boxes]).reshape(-1, 4),
        np.concatenate([np.ones(len(objects), np.float32), np.minimum(alike.scores, 0.999)]),
        np.concatenate([labels, alike.labels]).astype(np.int64),
    )
    return shown, alike


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
    areas: Mapping[int, np.ndarray] | None = None,
) -> Detections:
    """The proposals like ``positives`` (class id -> ``[K, D]`` exemplar vectors), scored
    (module docstring) best first; without those more like a ``negatives`` vector than like
    their class's positives, and those on a ``clicked`` box (``[M, 4]``: the clicked
    objects, which the caller returns itself). ``areas``: class id -> the ``[K]`` exemplars'
    mask areas in pixels (None: sizes are not weighed)."""
    index, scores, labels = alike_index(proposals, positives, negatives, thresholds, clicked, areas)
    return Detections(proposals.boxes[index], scores, labels)


def alike_index(
    proposals: Proposals,
    positives: Mapping[int, np.ndarray],
    negatives: np.ndarray | None = None,
    thresholds: Mapping[int, float] | None = None,
    clicked: np.ndarray | None = None,
    areas: Mapping[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`look_alikes` as ``(index int64[M], scores float32[M], labels int64[M])``: which
    of ``proposals`` are look-alikes, best first (their masks are ``proposals.masks[index]``)."""
    n = len(proposals)
    classes = [c for c, v in positives.items() if len(np.asarray(v).reshape(-1))]
    if not n or not classes:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    own = proposals.areas()
    per_class = np.stack(
        [_weighed(proposals, own, positives[c], None if areas is None else areas.get(c)) for c in classes], 1
    )  # [N, C]
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
    return index.astype(np.int64), score[index].astype(np.float32), labels[index]


def _weighed(
    proposals: Proposals, own: np.ndarray, vectors: np.ndarray, areas: np.ndarray | None
) -> np.ndarray:
    """Each proposal's score against one class's exemplars: its relative score to the
    nearest, times SAM's score, times the size weight against that exemplar's area."""
    relative = relative_scores(proposals, vectors)  # [N, K]
    nearest = relative.argmax(1)
    score = relative[np.arange(len(own)), nearest] * proposals.scores
    if areas is not None and len(np.asarray(areas).reshape(-1)):
        theirs = np.asarray(areas, np.float32).reshape(-1)[nearest]
        ratio = np.abs(np.log(np.maximum(own, 1.0) / np.maximum(theirs, 1.0)))
        score = score * np.exp(-np.maximum(ratio - SIZE_FREE, 0.0))
    return score.astype(np.float32)


class LookAlikeDetector:
    """The look-alikes as a click detector (``set_image`` / ``predict``), so that they are
    scored on held-out finished images as trained detectors are: the clicked objects at score
    1, then every proposal like them (positives: the clicked objects alone), best first.
    ``maker`` a :class:`~fewclick.predict.proposals.ProposalMaker`; ``folder`` where the
    app keeps the images' proposals beside their embeddings (:func:`proposals_file`): an
    image set under a key whose proposals are there is not proposed again, and one proposed
    here is kept there."""

    method = "look-alikes"

    def __init__(self, maker, folder: str | Path | None = None) -> None:
        self.maker, self.folder = maker, folder
        self.image, self.key, self.proposals = None, None, None

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        self.image, self.key = image, key
        path = None if self.folder is None or key is None else proposals_file(self.folder, key)
        if path is not None and path.is_file():
            try:
                self.proposals = Proposals.load(path)
                return
            except ValueError:  # torn: made again below
                pass
        self.proposals = self.maker(image, key=key)
        if path is not None:
            self.proposals.save(path)

    def predict(self, clicks) -> Detections:
        if self.proposals is None:
            raise RuntimeError("set_image first")
        keep = np.asarray(clicks.positive, bool) if len(clicks) else np.zeros(0, bool)
        xy, labels = np.asarray(clicks.xy)[keep], np.asarray(clicks.labels, np.int64)[keep]
        own = lambda x, y: self.maker.click(self.image, x, y, key=self.key)  # noqa: E731
        objects, found, _ = clicked_objects(self.proposals, xy, own)
        return clicked_and_alike(self.proposals, objects, labels[found])[0]
