"""The fast learner in click-to-detect (issue 68, item 2): a class whose test, then train
record found the learner saves the most is shown from its proposals beside the trained
version. It is refit on the project's newest finished images whenever they change (kept
until then), and again at once on the open image's clicks and rejections: a clicked object
is a positive, a rejected proposal a negative (:mod:`fewclick.predict.learner`)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from fewclick.metrics.detection import box_iou
from fewclick.predict.learner import FastLearner
from fewclick.predict.proposals import Proposals
from fewclick.types import Detections, Objects

KEPT = 4  # fitted learners kept (per finished set): one project's, a few of a shared worker's
REJECTED_IOU = 0.5  # a rejected box is the proposal it overlaps most from this IoU
_LOCK = threading.Lock()
_FITTED: OrderedDict = OrderedDict()  # (folder, finished) -> (FastLearner, its examples)


def examples(folder: str, finished: list | None) -> list[tuple[str, Proposals, Objects]]:
    """The ``finished`` images' (newest first, as the worker gets them) keys, candidates and
    the person's objects there, oldest first, for those whose proposals are made (the first
    of the others is asked for: :func:`~fewclick.server.worker_proposals.finished_proposals`)."""
    from fewclick.server.worker_proposals import finished_proposals

    known = finished_proposals(folder, finished)
    return [
        (key, found, Objects(rows[:, 0].astype(np.int64), rows[:, 1:])) for key, found, rows, *_ in known
    ][::-1]


def fitted(folder: str, finished: list | None) -> tuple[FastLearner, list, float | None]:
    """The learner fit on the ``finished`` images whose proposals are made, its examples,
    and the seconds its fit took (None: it was kept from an earlier call on the same images
    and boxes)."""
    known = examples(folder, finished)
    digest = (folder, tuple((key, gt.labels.tobytes(), gt.boxes.tobytes()) for key, _, gt in known))
    with _LOCK:
        if digest in _FITTED:
            _FITTED.move_to_end(digest)
            return (*_FITTED[digest], None)
    pairs = [(found, gt) for _, found, gt in known]
    learner = FastLearner().fit(pairs)
    with _LOCK:
        _FITTED[digest] = (learner, pairs)
        while len(_FITTED) > KEPT:
            _FITTED.popitem(last=False)
    return learner, pairs, learner.fit_s


def with_learner(answer: dict, learned, path, clicks, sizes, encoding, finished, rejected) -> dict:
    """A trained detector's ``answer`` with its boxes of the classes the learner serves
    (``learned``: ``(class position, score it shows from)`` pairs) replaced by the
    learner's proposals on the image from that score, and the clicked objects of those
    classes (the proposal each click lands on, at score 1). With clicks or rejections in
    those classes the learner is refit with them first. Their floors go in
    ``min_scores_carried``, the fit's seconds in ``learner_fit_s`` (None: kept). Until the
    image's proposals are made, the answer stays as it is."""
    from fewclick.server.worker_proposals import ready
    from fewclick.wire.codec import detection_lists

    cuts = {int(c): float(t) for c, t in learned}
    folder, key = encoding
    found = ready(folder, key)
    if found is None:
        return answer
    learner, known, fit_s = fitted(folder, finished)
    opened = _shown(learner, found, cuts)
    shown = opened
    mine = [c for c in clicks if int(c[2]) in cuts]
    objects, labels = clicked(folder, key, path, mine, sizes)
    refused = [r for r in rejected if int(r[4]) in cuts]
    if len(objects) or refused:  # refit with them; what the image opened with stays (a click adds)
        now = _partly_labeled(found, objects, labels, refused)
        # the clicked proposals' boxes are SAM's, not the person's: no convention to learn there
        learner = FastLearner(learner.config).fit([*known, now], regress_on=[True] * len(known) + [False])
        fit_s = learner.fit_s
        # a rejected proposal does not come back, however the refit scores it
        shown = _not_refused(_union(opened, _shown(learner, found, cuts), learner.config.nms_iou), refused)
    if len(objects):  # a proposal already a clicked object is not shown twice
        overlap = box_iou(shown.boxes, objects.boxes)
        shown = shown[overlap.max(1, initial=0.0) < learner.config.nms_iou]
    # the clicked objects in the person's convention, as the learner moves its own boxes
    ones = Detections(learner.move(objects, labels), np.ones(len(objects), np.float32), labels)
    both = Detections.concatenate([_others(answer, cuts), ones, shown])
    least = {**(answer.get("min_scores_carried") or {}), **cuts}
    out = {**answer, **detection_lists(both), "min_scores_carried": least, "learner_fit_s": fit_s}
    if answer.get("opened") is not None:  # what the page opened with: the learner's, in its classes
        before = Detections.concatenate([_others(answer["opened"], cuts), _not_refused(opened, refused)])
        out["opened"] = detection_lists(before)
    return out


def _others(answer: dict, cuts: dict[int, float]) -> Detections:
    """An answer's boxes of the classes not in ``cuts`` (the detector's, there)."""
    from fewclick.wire.codec import answer_detections

    found = answer_detections(answer)
    return found[~np.isin(found.labels, list(cuts))]


def _not_refused(shown: Detections, refused: list) -> Detections:
    """``shown`` without the boxes the person rejected (the same class, IoU >= :data:`REJECTED_IOU`)."""
    if not len(shown) or not refused:
        return shown
    boxes = np.asarray([r[:4] for r in refused], np.float32).reshape(-1, 4)
    labels = np.asarray([int(r[4]) for r in refused], np.int64)
    hit = (box_iou(shown.boxes, boxes) >= REJECTED_IOU) & (shown.labels[:, None] == labels[None, :])
    return shown[~hit.any(1)]


def clicked(folder: str, key: str, path: str, clicks: list, sizes: dict | None = None):
    """The objects of ``clicks`` (``[x, y, class position]`` each) on the image of ``key``,
    whose proposals are made: the proposal each lands on, at its class's side ``sizes``
    (class position -> pixels), else SAM's own object there; ``(Proposals, class
    positions)``, each object once (:func:`~fewclick.predict.lookalike.clicked_objects`)."""
    from fewclick.predict import lookalike
    from fewclick.server.worker_proposals import own_object, ready

    xy = np.asarray([c[:2] for c in clicks], np.float32).reshape(-1, 2)
    labels = np.asarray([int(c[2]) for c in clicks], np.int64)
    side = {int(k): float(v) for k, v in (sizes or {}).items()}
    per_click = np.array([side.get(int(c), np.nan) for c in labels], np.float32)
    own = own_object(folder, key, path)
    objects, boxed, _ = lookalike.clicked_objects(ready(folder, key), xy, own, per_click)
    return objects, labels[boxed]


def _shown(learner: FastLearner, found: Proposals, cuts: dict[int, float]) -> Detections:
    """The learner's proposals on ``found`` of the classes of ``cuts``, each from its score."""
    shown = learner.predict(found)
    floor = np.array([cuts.get(int(c), np.inf) for c in shown.labels], np.float32).reshape(-1)
    return shown[np.isin(shown.labels, list(cuts)) & (shown.scores >= floor)]


def _union(before: Detections, after: Detections, iou: float) -> Detections:
    """``after``'s proposals and those of ``before`` none of them overlaps at ``iou``."""
    if not len(before) or not len(after):
        return after if len(after) else before
    new = box_iou(before.boxes, after.boxes).max(1) < iou
    return Detections.concatenate([after, before[new]])


def _partly_labeled(found: Proposals, objects: Proposals, labels, refused) -> tuple[Proposals, Objects]:
    """The open image as one more example: its clicked ``objects`` (classes ``labels``) the
    positives, the proposals the person rejected (``refused`` boxes) the negatives; nothing
    else of it is known yet."""
    boxes = np.asarray([r[:4] for r in refused], np.float32).reshape(-1, 4)
    index = np.zeros(0, np.int64)
    if len(boxes) and len(found):
        overlap = box_iou(boxes, found.boxes)
        hit = overlap.max(1) >= REJECTED_IOU
        index = np.unique(overlap.argmax(1)[hit])
    negatives = found.take(index)
    both = Proposals(
        np.concatenate([objects.boxes, negatives.boxes]).reshape(-1, 4),
        np.concatenate([objects.scores, negatives.scores]),
        np.concatenate([objects.vectors, negatives.vectors]),
        [*objects.masks, *negatives.masks],
        found.background,
        found.image_size,
    )
    return both, Objects(np.asarray(labels, np.int64), objects.boxes)
