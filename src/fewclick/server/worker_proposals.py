"""SAM's proposals of an image in the worker process, computed ahead of the click, and the
look-alikes of the clicked objects among them (issue 52).

When the page prepares an image (:func:`prepare`: the open image, then the next), its
proposals (:class:`~fewclick.predict.proposals.ProposalMaker`: SAM prompted all over it, in
windows sized to its objects) are made on a thread of their own, after the embeddings the
clicks wait for, and written beside the embeddings as ``<key>.proposals.npz``, whole or not
at all (:meth:`~fewclick.predict.proposals.Proposals.save`). A file that cannot be read (cut
off by a full disk, or a kill mid-write by an older version) is made again, never served.

Once they exist, a click of the training-free start is answered from them
(:func:`look_alikes`): the proposal under each click is the clicked object, with its own
box and mask; the look-alikes are the proposals like it
(:func:`fewclick.predict.lookalike.look_alikes`), a few matrix products, no SAM call. A
click that no proposal holds gets SAM's own object there; until the proposals are ready, the
feature-similarity start answers (:mod:`fewclick.predict.similar`) and says so.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewclick-propose")
_RUNNING: dict[tuple[str, str], Future] = {}
_WINDOWS: dict[tuple[str, str], tuple[int, int]] = {}  # proposals being made: (windows done, windows)
_PARTIAL: dict[tuple[str, str], object] = {}  # proposals being made: those of the windows done
_LOADED: OrderedDict[tuple[str, str], object] = OrderedDict()
_MAKERS: dict[str, object] = {}
_CARRIED: OrderedDict[tuple, tuple] = OrderedDict()  # finished images -> their exemplars, thresholds
CARRIED_KEPT = 4
THUMBNAILS = 8  # exemplars per class the answer names, for the panel's thumbnails
EXEMPLAR_IOU = 0.7  # a finished box's best proposal this close is its exemplar
_LOCK = threading.Lock()
# mask mode's thresholds weigh, in seconds: a wrong proposal shown, looked at (1.6 s) and
# left; a right one missed, the object's mask made otherwise (8 s, under what an object not
# taken from a proposal cost in our campaigns: 15 s on dsb2018's first train images) less the
# look and the click (2.55 s) that take a shown one
MASK_LOOK = 1.6
MASK_SAVED = 8.0 - 1.6 - 2.55
LOADED_KEPT = 16  # images' proposals held in memory: the open one and the finished ones a click reads


def proposals_file(folder: str, key: str) -> Path:
    """Where the proposals of the image of embedding ``key`` are kept in the app's embeddings
    ``folder`` (:func:`fewclick.predict.lookalike.proposals_file`)."""
    from fewclick.predict.lookalike import proposals_file as beside

    return beside(folder, key)


def prepare(folder: str, items: list[tuple[str, str]]) -> list[str]:
    """Start making the proposals of each ``(key, path)`` in order, unless they exist or are
    being made; per item "ready", "making", or the error that stopped the last try (said
    once: the next call tries again)."""
    states = []
    for key, path in items:
        with _LOCK:
            running = _RUNNING.get((folder, key))
            if running is not None and running.done():
                del _RUNNING[(folder, key)]
                if running.exception() is not None:
                    states.append(f"{type(running.exception()).__name__}: {running.exception()}")
                    continue
            if proposals_file(folder, key).is_file():
                states.append("ready")
                continue
            if running is None or running.done():
                _RUNNING[(folder, key)] = _THREAD.submit(_make, folder, key, path)
            states.append("making")
    return states


def prepare_open(folder: str, items: list[tuple[str, str]]) -> dict:
    """:func:`prepare` for the open image (the first of ``items``) and the next: the open
    one's ``proposals`` state and, while they are made, how many of its windows are done
    (``proposals_done`` of ``proposals_windows``; absent while it waits for the thread or
    its windows are not counted yet), and whether those done are there to be shown
    (``proposals_partial``: :func:`partial`)."""
    out = {"proposals": prepare(folder, items)[0]}
    done = windows_done(folder, items[0][0]) if out["proposals"] == "making" else None
    if done is not None:
        out["proposals_done"], out["proposals_windows"] = done
        out["proposals_partial"] = partial(folder, items[0][0]) is not None
    return out


def windows_done(folder: str, key: str) -> tuple[int, int] | None:
    """``(done, windows)`` of the proposals of the image of embedding ``key`` while they are
    made, else None (waiting for the thread, or not being made)."""
    with _LOCK:
        return _WINDOWS.get((folder, key))


def making(folder: str, key: str) -> bool:
    """Whether the proposals of the image of embedding ``key`` are being made (or wait to be)."""
    with _LOCK:
        running = _RUNNING.get((folder, key))
    return running is not None and not running.done()


def ready(folder: str, key: str):
    """The image's :class:`~fewclick.predict.proposals.Proposals` when they are made, else
    None. A file that is not whole is removed (the next :func:`prepare` makes it again)."""
    from fewclick.predict.proposals import Proposals

    with _LOCK:
        held = _LOADED.get((folder, key))
        if held is not None:
            _LOADED.move_to_end((folder, key))
            return held
    path = proposals_file(folder, key)
    try:
        found = Proposals.load(path)
    except FileNotFoundError:
        return None
    except ValueError:
        logging.getLogger(__name__).warning("%s is not whole: it is made again", path)
        path.unlink(missing_ok=True)
        return None
    with _LOCK:
        _LOADED[(folder, key)] = found
        while len(_LOADED) > LOADED_KEPT:
            _LOADED.popitem(last=False)
    return found


def proposal_at(folder: str, key: str, x: float, y: float):
    """The image's proposal whose mask holds the point (x, y)
    (:func:`fewclick.predict.lookalike.clicked_proposal`), as a
    :class:`~fewclick.predict.segment_api.MaskPrediction` in the image's pixels with the
    proposal's score (SAM's predicted IoU times the mask's stability); None while the
    proposals are not made, or when none holds the point."""
    from fewclick.predict.lookalike import clicked_proposal, proposal_mask
    from fewclick.predict.segment_api import MaskPrediction

    found = ready(folder, key)
    if found is None:
        return None
    index = clicked_proposal(found, x, y)
    if index is None:
        return None
    return MaskPrediction(proposal_mask(found, index), float(found.scores[index]))


def maker(folder: str):
    """The worker's :class:`~fewclick.predict.proposals.ProposalMaker` on the shared encoder
    of ``folder`` (windows sized to each image's objects)."""
    from fewclick.predict.proposals import ProposalMaker
    from fewclick.server import embeddings

    with _LOCK:
        found = _MAKERS.get(folder)
        if found is None:
            found = _MAKERS[folder] = ProposalMaker(embeddings.encoder(folder), window=None)
        return found


def large_file(path: str) -> bool:
    """Whether the image at ``path`` is large (swept by windows, never proposed whole), or
    cannot be read."""
    from PIL import Image

    from fewclick.server.tiles import is_large

    try:
        with Image.open(path) as image:
            return is_large(*image.size)
    except OSError:  # unreadable or gone: nothing to make either
        return True


def _make(folder: str, key: str, path: str) -> None:
    from fewclick.io.regions import load_pixels
    from fewclick.server import embeddings

    embeddings.embedding(folder, key, path)  # the clicks' embedding first, never encoded twice

    def progress(done: int, windows: int) -> None:
        with _LOCK:
            _WINDOWS[(folder, key)] = (done, windows)

    def so_far(found) -> None:
        with _LOCK:
            _PARTIAL[(folder, key)] = found

    try:
        made = maker(folder)(load_pixels(path), key=key, progress=progress, each_window=so_far)
        made.save(proposals_file(folder, key))
    finally:
        with _LOCK:
            _WINDOWS.pop((folder, key), None)
            _PARTIAL.pop((folder, key), None)


def partial(folder: str, key: str):
    """While the image's proposals are made, those of the windows done so far (a
    :class:`~fewclick.predict.proposals.Proposals`), else None: what the page shows until
    the rest come."""
    with _LOCK:
        return _PARTIAL.get((folder, key))


def finished_proposals(folder: str, finished: list | None) -> list[tuple]:
    """The ``finished`` images (as :func:`carried` takes them) whose proposals are made and
    that hold boxes: ``(key, proposals, rows [K, 5] of class position and box, kept [K]:
    not removed from the exemplars, place in finished)``. Of those not made, the first is
    asked for (one at a time: the open image's and the next's come first on the thread)."""
    known, missing = [], []
    for entry, (key, path, boxes, *removed) in enumerate(finished or []):
        found = ready(folder, key)
        if found is None:
            if not large_file(path):  # a large image is swept by windows, never proposed whole
                missing.append((key, path))
        elif boxes:
            rows = np.asarray(boxes, np.float32).reshape(-1, 5)
            kept = np.ones(len(rows), bool)
            kept[[int(k) for k in (removed[0] if removed else []) if 0 <= int(k) < len(rows)]] = False
            known.append((key, found, rows, kept, entry))
    if missing:
        prepare(folder, missing[:1])
    return known


def carried(
    folder: str, finished: list | None, offsets=None, iou: float | None = None
) -> tuple[dict, dict, list]:
    """What the ``finished`` images (``[embedding key, path, [[class position, x0, y0, x1,
    y1], ...], [indices of boxes removed from the exemplars]]``, as
    :func:`fewclick.server.worker_detect.learn_click_boxes` takes them) teach the next image
    before any click on it: per class, the exemplars ``(unit vectors [K, D], mask areas
    [K])`` of the proposals that box its finished objects (each object's best proposal at
    IoU >= :data:`EXEMPLAR_IOU`; not the boxes the person removed, which still count as
    objects where thresholds are chosen), which boxes those are (``[finished index, box
    index, class position, box]``, :data:`THUMBNAILS` a class), and per class the threshold of least work
    (:func:`~fewclick.metrics.thresholds.least_work_thresholds`) on each finished image
    opened with the other images' exemplars (:data:`~fewclick.metrics.thresholds.NONE_SHOWN`:
    a class whose look-alikes cost more than they save opens with none). A finished image
    whose proposals are not made (or were trimmed with the embeddings) teaches nothing now:
    they are made in the background, one image a call."""
    known = finished_proposals(folder, finished)
    moved = None if not offsets else sorted((c, v.tobytes()) for c, v in offsets.per_class.items())
    # each image's place in ``finished`` too: ``used`` names images by it
    held = tuple((entry, key, rows.tobytes(), kept.tobytes()) for key, _, rows, kept, entry in known)
    digest = (folder, held, repr(moved), iou)
    with _LOCK:
        if digest in _CARRIED:
            return _CARRIED[digest]
    best = [_best_proposals(found, rows) for _, found, rows, _, _ in known]
    chosen = [sure & kept for (sure, _), (_, _, _, kept, _) in zip(best, known)]  # not the removed
    per_image = [
        _exemplars(found, rows, index, mine)
        for (_, found, rows, _, _), (_, index), mine in zip(known, best, chosen)
    ]
    exemplars = _joined(per_image)
    thresholds = _thresholds(known, per_image, offsets, iou)
    used, per_class = [], Counter()
    for (_, _, rows, _, entry), mine in zip(known, chosen):
        for k in np.flatnonzero(mine):
            c = int(rows[k, 0])
            if per_class[c] < THUMBNAILS:
                per_class[c] += 1
                used.append([entry, int(k), c, [round(float(v), 2) for v in rows[k, 1:]]])
    with _LOCK:
        _CARRIED[digest] = (exemplars, thresholds, used)
        while len(_CARRIED) > CARRIED_KEPT:
            _CARRIED.popitem(last=False)
    return exemplars, thresholds, used


def _best_proposals(found, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sure bool[len(boxes)], best int[len(boxes)])``: for each of ``boxes`` (``[class, x0,
    y0, x1, y1]`` rows) its best proposal of ``found``, and whether that boxes it at IoU >=
    :data:`EXEMPLAR_IOU`."""
    from fewclick.metrics.detection import box_iou

    if not len(found) or not len(boxes):
        return np.zeros(len(boxes), bool), np.zeros(len(boxes), np.int64)
    overlap = box_iou(boxes[:, 1:], found.boxes)
    return overlap.max(1) >= EXEMPLAR_IOU, overlap.argmax(1)


def _exemplars(
    found, boxes: np.ndarray, best: np.ndarray, sure: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per class, the vectors and areas of the ``best`` proposals of ``found`` of the ``sure``
    ones of ``boxes`` (``[class, x0, y0, x1, y1]`` rows)."""
    if not len(found) or not sure.any():
        return {}
    areas = found.areas()
    out = {}
    for c in np.unique(boxes[sure, 0]).astype(int):
        index = best[sure & (boxes[:, 0] == c)]
        out[int(c)] = (found.vectors[index], areas[index])
    return out


def _joined(per_image: list[dict]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    classes = sorted({c for e in per_image for c in e})
    return {c: tuple(np.concatenate([e[c][i] for e in per_image if c in e]) for i in (0, 1)) for c in classes}


def _thresholds(known: list, per_image: list[dict], offsets, iou: float | None = None) -> dict[int, float]:
    """Per class, the threshold of least work on each of the ``known`` finished images opened
    with the exemplars of the others, their boxes moved by ``offsets`` (no threshold for a
    class found on one image only); a proposal is right at box IoU ``iou`` (None: the
    page's box rule, :data:`~fewclick.metrics.detection.KEPT_IOU`)."""
    from fewclick.metrics.thresholds import least_work_thresholds
    from fewclick.predict import lookalike
    from fewclick.types import Detections, Objects

    if len(known) < 2:
        return {}
    classes = {c for e in per_image for c in e}
    labelled = {int(c) for _, _, boxes, *_ in known for c in boxes[:, 0]}
    number = max(classes | labelled, default=-1) + 1  # every class a finished box has
    gts, preds = [], []
    for i, (_, found, boxes, *_) in enumerate(known):
        others = _joined(per_image[:i] + per_image[i + 1 :])
        positives = {c: v for c, (v, _) in others.items()}
        sizes = {c: a for c, (_, a) in others.items()}
        alike = lookalike.look_alikes(
            found, positives, thresholds=dict.fromkeys(positives, -np.inf), areas=sizes
        )
        moved = offsets.apply(alike.boxes, alike.labels) if offsets else alike.boxes
        gts.append(Objects(boxes[:, 0].astype(np.int64), boxes[:, 1:]))
        preds.append(Detections(moved, alike.scores, alike.labels))
    # mask mode: a wrong proposal costs its look, a right one saves an object's mask done otherwise
    weighed = (
        {} if iou is None else {"iou_threshold": iou, "false_cost": MASK_LOOK, "missed_cost": MASK_SAVED}
    )
    least = least_work_thresholds(gts, preds, number, **weighed)
    return {c: float(t) for c, t in enumerate(least) if t is not None}


def look_alikes(
    folder: str,
    key: str,
    path: str,
    clicks,
    finished=None,
    offsets=None,
    rejected=(),
    sides=None,
    partial_ok: bool = False,
):
    """The clicked objects and their look-alikes among the image's proposals (while they are made,
    among those of the windows done: :func:`partial`; None before any): ``(Detections, info)``, the
    clicked objects first at score 1 in the clicks' order (each the proposal the click lands on at
    its class's side ``sides``, class position -> pixels, from the finished boxes:
    :func:`~fewclick.predict.lookalike.clicked_proposal`; a click no proposal holds gets SAM's own
    object there, none when SAM finds nothing: ``unboxed`` lists those clicks), then the
    look-alikes, best first: of the clicked objects in a clicked class, of the ``finished`` images'
    objects (:func:`carried`) in the others, each at a score above the background's. What the image
    opened with (the look-alikes of the finished objects, before any click) stays, in its class and
    above its floor (:func:`~fewclick.predict.shown.after_clicks`): a click adds, never takes away.
    ``offsets`` (the project's :class:`~fewclick.predict.own_box.EdgeOffsets`, or None) move the
    boxes the thresholds are chosen on, as the page's are moved. ``rejected``: the boxes (and class
    positions) of the proposals the person rejected on the page, negative exemplars
    (:func:`~fewclick.predict.lookalike.rejected_vectors`). ``info``: ``state`` "ready" or "partial"
    (then ``windows_done`` of ``windows``), ``made`` (how many proposals the image has), ``shown``
    (look-alikes at their class's floor), ``threshold`` (where a clicked class starts:
    :data:`~fewclick.predict.lookalike.RELATIVE`), ``min_scores`` (class position -> the floor of a
    class not clicked), ``exemplars`` (the finished objects matched), ``unboxed`` and ``rejected``
    (the negatives found) (:class:`~fewclick.wire.answers.ProposalsUsed`)."""
    from fewclick.predict import lookalike
    from fewclick.predict.shown import TOP_ALIKE, after_clicks, page_floors
    from fewclick.types import Detections

    found, state = _made(folder, key, partial_ok)
    if found is None:
        return None
    exemplars, least, used = carried(folder, finished, offsets)
    sides = sides or {}
    per_click = np.array([sides.get(int(c), np.nan) for c in clicks.labels], np.float32)
    own = own_object(folder, key, path)
    objects, boxed, unboxed = lookalike.clicked_objects(found, clicks.xy, own, per_click)
    # the proposals the person rejected on the page (their shown boxes): negative exemplars
    negatives = lookalike.rejected_vectors(found, [r[:4] for r in rejected])
    labels = np.asarray(clicks.labels)[boxed]

    def alike(with_clicks: bool) -> tuple:
        to, sizes = _positives(exemplars, objects if with_clicks else None, labels)
        index, scores, classes = lookalike.alike_index(
            found, to, negatives, dict.fromkeys(to, 0.0), objects.boxes, sizes
        )
        return index, np.minimum(scores, TOP_ALIKE), classes

    was_clicked = {int(c) for c in clicks.labels}  # as the page counts them, found or not
    threshold = lookalike.RELATIVE  # a clicked class's start (its least-work one is the carried exemplars')
    (index, scores, classes), floors_of = after_clicks(
        alike(False), alike(True), least, was_clicked, threshold
    )
    det = Detections(
        np.concatenate([objects.boxes, found.boxes[index]]).reshape(-1, 4),
        np.concatenate([np.ones(len(objects), np.float32), scores]),
        np.concatenate([labels, classes]).astype(np.int64),
    )
    floors = page_floors(scores, classes, floors_of, threshold, was_clicked)
    info = {
        "made": len(found),
        "shown": int((scores >= floors).sum()),
        "threshold": float(threshold),
        "min_scores": floors_of,
        "exemplars": int(sum(len(a) for c, (_, a) in exemplars.items() if c not in was_clicked)),
        # the route names their annotations (the panel's thumbnails); a clicked class is
        # matched to its clicks alone, not to them
        "exemplar_rows": [u for u in used if u[2] not in was_clicked],
        "unboxed": unboxed,
        "rejected": len(negatives),
    }
    info.update(state)
    return det, info


def _made(folder: str, key: str, partial_ok: bool) -> tuple:
    """The image's proposals and what :func:`look_alikes` says of them (``state``, and
    while they are made how far: ``windows_done`` of ``windows``); with ``partial_ok``, those
    of the windows done while the rest are made (:func:`partial`); ``(None, {})`` else."""
    so_far = partial(folder, key) if partial_ok else None  # read first: it goes once all are saved
    found = ready(folder, key)
    if found is not None:
        return found, {"state": "ready"}
    if so_far is None:
        return None, {}
    done = windows_done(folder, key)  # None once the making has ended meanwhile
    return so_far, {"state": "partial", **({"windows_done": done[0], "windows": done[1]} if done else {})}


def own_object(folder: str, key: str, path: str):
    """SAM's own object at a click on the image of ``key`` (``path``): ``own(x, y)``."""

    def own(x: float, y: float):
        from fewclick.server import worker

        return maker(folder).click(worker.image(path), x, y, key=key)

    return own


def _positives(exemplars: dict, objects=None, labels=None) -> tuple[dict, dict]:
    """Per class, the exemplars' vectors and mask areas (``exemplars``: class -> ``(vectors,
    areas)``, the finished images' objects); with the clicked ``objects`` (classes
    ``labels``), a clicked class is matched to its clicked objects alone, as lookalikes.py
    measures the first click (the finished images' exemplars, of other sizes and stains, open
    the image)."""
    vectors = {c: v for c, (v, _) in exemplars.items()}
    areas = {c: a for c, (_, a) in exemplars.items()}
    if objects is not None:
        own = objects.areas()
        for c in np.unique(labels).astype(int):
            vectors[int(c)], areas[int(c)] = objects.vectors[labels == c], own[labels == c]
    return vectors, areas
