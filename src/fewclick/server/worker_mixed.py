"""One source per class in click-to-detect (issue 68): the classes whose look-alikes among
SAM's proposals, or whose fast learner over them, saved more than the trained version keep
them beside it."""

from __future__ import annotations

import numpy as np

from fewclick.wire.codec import answer_detections, detection_lists


def mixed_answer(answer: dict, model, large, encoding, mixed, learned, request: tuple, learnt) -> dict:
    """A trained detector's ``answer`` with the classes other sources serve: ``mixed`` (class
    positions) by the look-alikes (:func:`with_look_alikes`), ``learned`` (``(class
    position, score shown from)``) by the fast learner
    (:func:`~fewclick.server.worker_learned.with_learner`). ``request``: ``(path, clicks,
    sizes, finished, rejected)``. Not for a large image's windows, an oriented detector's
    answer, or without SAM's encoding."""
    from fewclick.server.worker_learned import with_learner

    if model is None or large is not None or encoding is None or answer.get("rboxes") is not None:
        return answer
    path, clicks, sizes, finished, rejected = request
    if mixed:
        answer = with_look_alikes(answer, mixed, path, clicks, sizes, encoding, finished, rejected, learnt)
    if learned:
        answer = with_learner(answer, learned, path, clicks, sizes, encoding, finished, rejected)
    return answer


def with_look_alikes(answer: dict, mixed, path, clicks, sizes, encoding, finished, rejected, learnt) -> dict:
    """A trained detector's ``answer`` with its boxes of the ``mixed`` classes (positions)
    replaced by the look-alikes among SAM's proposals, which saved more there on the images
    neither had seen (the trainer's record): the clicks of those classes are their
    exemplars, the finished images' objects the others'. Their floors per class go in
    ``min_scores_carried``. Until the image's proposals are made, the detector's answer
    stays as it is. ``learnt(finished)``: the edge offsets SAM's boxes move by, or None."""
    from fewclick.server import worker_proposals
    from fewclick.types import Clicks, Detections

    mine = [c for c in clicks if int(c[2]) in mixed]
    xy = np.asarray([c[:2] for c in mine], np.float32).reshape(-1, 2)
    c = Clicks(xy, np.asarray([int(k[2]) for k in mine], np.int64), np.ones(len(xy), bool))
    offsets = learnt(finished)
    side = {int(k): float(v) for k, v in sizes.items()}
    matched = worker_proposals.look_alikes(*encoding, path, c, finished, offsets, rejected, side)
    if matched is None:
        return answer
    alike, found = matched
    if offsets:
        alike = Detections(offsets.apply(alike.boxes, alike.labels), alike.scores, alike.labels)
    alike = alike[np.isin(alike.labels, list(mixed))]
    trained = answer_detections(answer)
    kept = trained[~np.isin(trained.labels, list(mixed))]
    both = Detections.concatenate([kept, alike])
    least = {p: t for p, t in found["min_scores"].items() if p in mixed}
    out = {**answer, **detection_lists(both), "min_scores_carried": least}
    if answer.get("opened") is not None:  # the look-alikes keep what they opened with themselves
        before = answer_detections(answer["opened"])
        out["opened"] = detection_lists(before[~np.isin(before.labels, list(mixed))])
    return out
