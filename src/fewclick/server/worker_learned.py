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


def examples(folder: str, finished: list | None) -> list[tuple[Proposals, Objects]]:
    """The ``finished`` images' (newest first, as the worker gets them) candidates and the
    person's objects there, oldest first, for those whose proposals are made."""
    from fewclick.server.worker_proposals import ready

    out = []
    for key, _, boxes, *_ in reversed(finished or []):
        found = ready(folder, key) if boxes else None
        if found is not None:
            rows = np.asarray(boxes, np.float32).reshape(-1, 5)
            out.append((found, Objects(rows[:, 0].astype(np.int64), rows[:, 1:])))
    return out


def fitted(folder: str, finished: list | None) -> tuple[FastLearner, list, float | None]:
    """The learner fit on the ``finished`` images, its examples, and the seconds its fit took
    (None: it was kept from an earlier call on the same images and boxes)."""
    digest = (folder, tuple((f[0], np.asarray(f[2], np.float32).tobytes()) for f in finished or []))
    with _LOCK:
        if digest in _FITTED:
            _FITTED.move_to_end(digest)
            return (*_FITTED[digest], None)
    known = examples(folder, finished)
    learner = FastLearner().fit(known)
    with _LOCK:
        _FITTED[digest] = (learner, known)
        while len(_FITTED) > KEPT:
            _FITTED.popitem(last=False)
    return learner, known, learner.fit_s


def with_learner(answer: dict, learned, path, clicks, sizes, encoding, finished, rejected) -> dict:
    """A trained detector's ``answer`` with its boxes of the classes the learner serves
    (``learned``: ``(class position, score it shows from)`` pairs) replaced by the
    learner's proposals on the image from that score, and the clicked objects of those
    classes (the proposal each click lands on, at score 1). With clicks or rejections in
    those classes the learner is refit with them first. Their floors go in
    ``min_scores_carried``, the fit's seconds in ``learner_fit_s`` (None: kept). Until the
    image's proposals are made, the answer stays as it is."""
    from fewclick.server.worker_proposals import clicked, ready
    from fewclick.wire.codec import answer_detections, detection_lists

    cuts = {int(c): float(t) for c, t in learned}
    folder, key = encoding
    found = ready(folder, key)
    if found is None:
        return answer
    learner, known, fit_s = fitted(folder, finished)
    shown = _shown(learner, found, cuts)
    mine = [c for c in clicks if int(c[2]) in cuts]
    objects, labels = clicked(folder, key, path, mine, sizes)
    refused = [r for r in rejected if int(r[4]) in cuts]
    if len(objects) or refused:  # refit with them; what the image opened with stays (a click adds)
        now = _partly_labeled(found, objects, labels, refused)
        learner = FastLearner(learner.config).fit([*known, now])
        fit_s = learner.fit_s
        shown = _union(shown, _shown(learner, found, cuts), learner.config.nms_iou)
    if len(objects):  # a proposal already a clicked object is not shown twice
        overlap = box_iou(shown.boxes, objects.boxes)
        shown = shown[overlap.max(1, initial=0.0) < learner.config.nms_iou]
    ones = Detections(objects.boxes, np.ones(len(objects), np.float32), labels)
    trained = answer_detections(answer)
    both = Detections.concatenate([trained[~np.isin(trained.labels, list(cuts))], ones, shown])
    least = {**(answer.get("min_scores_carried") or {}), **cuts}
    return {**answer, **detection_lists(both), "min_scores_carried": least, "learner_fit_s": fit_s}


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
