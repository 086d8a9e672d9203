"""Click-to-detect in the worker process (:mod:`fewclick.server.worker`), and what it learns
on the side from finished images: the edges by which SAM's click boxes move
(:func:`learn_click_boxes`) and the classes whose proposals SAM makes tight
(:func:`learn_tight_boxes`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from fewclick.server import worker
from fewclick.server.worker_mixed import mixed_answer
from fewclick.wire.codec import answer_detections, detection_lists

# (embedding key, class, the person's box) -> SAM's box from a click at its centre
_CLICK_BOXES: OrderedDict[tuple, np.ndarray] = OrderedDict()
CLICK_BOXES_KEPT = 20000
# (detector, embedding key) -> the person's boxes on a held-out finished image, their classes,
# the detector's proposals on them and those made tight (:func:`learn_tight_boxes`)
_TIGHT: OrderedDict[tuple, tuple] = OrderedDict()
TIGHT_KEPT = 400
# (embedding key, class, a proposal's box) -> the box made tight, across an image's requests
_TIGHTENED: OrderedDict[tuple, np.ndarray] = OrderedDict()
TIGHTENED_KEPT = 20000
# a large image's window and everything asked of it -> its click-to-detect answer
_WINDOWS: OrderedDict[tuple, dict] = OrderedDict()
WINDOWS_KEPT = 64
DETECTORS_KEPT = 3  # trained detectors held in memory: the serving one and those before it
# (detector, image, tight classes) -> its answer without clicks, kept for the image's clicks
_OPENED: OrderedDict[tuple, object] = OrderedDict()
OPENED_KEPT = 16


def detect(
    path: str,
    model: str | None,
    names: list[str],
    clicks: list[list[float]],
    sizes: dict,
    encoding: tuple[str, str] | None = None,
    limit: int | None = None,
    finished: list | None = None,
    held: list[str] | None = None,
    tight_from: float | None = None,
    large: tuple[str, str, int, int] | None = None,
    fallbacks: tuple[str, ...] = (),
    same_ids: tuple[str, ...] = (),
    rejected: tuple = (),
    mixed: tuple[int, ...] = (),
    learned: tuple = (),
) -> dict:
    """Click-to-detect: the project's detector when it has one, else the training-free
    start on the pretrained encoder (``encoding``: the embedding cache folder and the
    image's key, None without the encoder's files; ``limit``: its most look-alikes), else
    template correlation. ``method`` says which: "pretrained", "scratch" or "imagenet" (the
    detector's backbone), "training-free" or "template". ``classes`` is the detector's class
    names (None without one); when they are not the project's ``names`` nothing is predicted
    (the caller says to train again). SAM's boxes (the training-free start's, a click's own
    box) move by the edge offsets fitted on ``finished`` (:func:`learn_click_boxes`'s
    argument; only the pairs already learnt count: nothing is computed for them here). A
    detector's proposals at ``tight_from`` or more are made tight by SAM in the classes
    :func:`learn_tight_boxes` found it helps on the ``held`` images (the embedding keys of
    held-out finished images), once the image's embedding is ready (``tight_classes``).
    A ``large`` image (``(file read by regions, its embedding key, width, height)``) is
    detected on windows around the clicks instead (:func:`_on_windows`).

    A detector whose file cannot be read, or that knows other classes, does not answer: the
    first of ``fallbacks`` (older versions' files) that can does, else the training-free
    start. A detector in ``same_ids`` learnt the project's classes by id: renamed since, they
    are still its classes (:func:`knows_classes`). ``model`` in the answer is the file that
    answered (None: no trained detector), ``failed`` lists ``[file, why, kind]`` of those
    passed over (kind "unreadable" or "classes"). ``rejected``: the boxes ``[x0, y0, x1, y1,
    class position]`` of the proposals the person rejected, negative exemplars of the
    look-alikes (:func:`fewclick.server.worker_proposals.look_alikes`). ``mixed``: the class
    positions the look-alikes serve beside a trained detector, ``learned`` the ``(class
    position, score)`` the fast learner does (:func:`~fewclick.server.worker_mixed.mixed_answer`)."""
    model, failed = _answering(model, fallbacks, names, encoding, same_ids)
    answer = _detect(
        path, model, names, clicks, sizes, encoding, limit, finished, held, tight_from, large, rejected
    )
    request = (path, clicks, sizes, finished, rejected)
    answer = mixed_answer(answer, model, large, encoding, mixed, learned, request, _offsets)
    return {**answer, "model": model, "failed": failed}


def _answering(model, fallbacks, names, encoding, same_ids=()) -> tuple[str | None, list[list[str]]]:
    """The first of ``model`` and ``fallbacks`` that loads and knows the classes ``names``
    (None: none does), and ``[file, why, kind]`` of each passed over."""
    from fewclick.predict.pretrained import PretrainedModelError

    failed = []
    for candidate in [model, *fallbacks] if model is not None else []:
        try:
            detector = _loaded(candidate, encoding)
        except PretrainedModelError:  # SAM's files, not the detector's: the route says how to fetch them
            raise
        except (FileNotFoundError, ValueError) as exc:
            failed.append([candidate, _unreadable(candidate, exc), "unreadable"])
            continue
        if not knows_classes(detector, names, candidate in same_ids):
            why = f"trained for the classes {list(detector.classes)}, not the project's {list(names)}"
            failed.append([candidate, why, "classes"])
            continue
        return candidate, failed
    return None, failed


def knows_classes(detector, names: list[str], same_ids: bool) -> bool:
    """Whether ``detector`` predicts the project's classes ``names`` by position: its own
    names are they, or it learnt the same classes by id (``same_ids``) and only names changed."""
    if same_ids:
        return len(detector.classes) == len(names)
    return list(detector.classes) == list(names)


def _unreadable(path: str, exc: Exception) -> str:
    """Why the file at ``path`` could not be read, short, without the server's path: "its file
    is gone", or the checkpoint's complaint cut at its first sentence."""
    if isinstance(exc, FileNotFoundError):
        return "its file is gone"
    first = str(exc).replace(f"{path}: ", "").split(". ")[0]
    return first + ")" * (first.count("(") - first.count(")"))  # a bracket the cut left open


def _loaded(model: str, encoding: tuple[str, str] | None):
    """The detector at ``model``, loaded once and kept (the few newest loaded; a file is never
    written again under its name, so what is kept is what the file holds)."""
    from fewclick.predict.detect import ClickDetector

    key = ("detect", model)
    if key not in worker.PREDICTORS:
        from fewclick.server import embeddings

        encoder = embeddings.encoder(encoding[0]) if encoding else None  # SAM's own errors pass through
        if not Path(model).is_file():
            raise FileNotFoundError(f"{model}: no such model file")
        detector = ClickDetector.load(model, encoder=encoder)  # raises before anything is kept
        for old in [k for k in worker.PREDICTORS if k[0] == "detect"][: -DETECTORS_KEPT + 1 or None]:
            worker.PREDICTORS.pop(old, None)
            worker.CURRENT.pop(old, None)
        worker.PREDICTORS[key] = detector
    return worker.PREDICTORS[key]


def _detect(
    path, model, names, clicks, sizes, encoding, limit, finished, held, tight_from, large, rejected=()
) -> dict:
    """:func:`detect` with the detector that answers (``model``; None: training-free)."""
    from fewclick.types import Clicks, Detections

    if large is not None:
        return _on_windows(large, model, names, clicks, sizes, encoding, limit, finished, held, tight_from)

    num_classes = len(names)
    xy = np.asarray([c[:2] for c in clicks], np.float32).reshape(-1, 2)
    labels = np.asarray([int(c[2]) for c in clicks], np.int64)
    c = Clicks(xy, labels, np.ones(len(xy), bool))
    sizes = {int(k): float(v) for k, v in sizes.items()}
    classes, offsets, tight, found, least, opened = None, _offsets(finished), set(), None, None, None
    if model is not None:
        predictor = _trained(model, path, encoding)
        method, classes = predictor.method, list(predictor.classes)
        det = predictor.predict(c)
        if encoding is not None:
            tight = _tight_classes(model, held)
            if tight and tight_from is not None and det.rboxes is None:
                det = _tightened(det, path, encoding, num_classes, tight, tight_from)
            # a click the detector left unboxed: SAM's box from it
            det = _own_boxes(det, c, path, encoding, num_classes, sizes, offsets)
        if len(c) and det.rboxes is None:  # what the image opened with, for the page to keep
            opened = _opened(model, path, predictor, encoding, num_classes, tight, tight_from)
    elif encoding is not None:
        from fewclick.server import worker_proposals

        # no cap of a few look-alikes per finished object (``limit``: that held feature
        # similarity's texture back): every proposal is an object SAM segmented, each shown
        # by its score. With the cap, one click on dsb2018 10ba6cbe (67 nuclei) after a
        # finished image of 6 showed 18 look-alikes; without it, 64 boxes
        matched = worker_proposals.look_alikes(
            *encoding, path, c, finished, offsets, rejected, sizes, partial_ok=True
        )
        if matched is not None:  # the image's SAM proposals are made: the look-alikes among them
            det, found = matched
            least = found.pop("min_scores")
            method = "look-alikes"
        else:
            predictor = _similar(path, encoding, num_classes)
            making = worker_proposals.making(*encoding)
            # while the proposals are made, each click gets its object's own box from SAM and
            # nothing else: the look-alikes come from the proposals (the page asks again);
            # feature similarity's boxes, sized as the clicked object, only when none will come
            if making:
                det = predictor.clicked_boxes(c, sizes)
            else:
                det = predictor.predict(c, sizes=sizes, limit=limit)
            method = predictor.method
            found = {"state": "making"} if making else None
        if offsets:  # every box of the training-free start is a SAM box, or sized as one
            det = Detections(offsets.apply(det.boxes, det.labels), det.scores, det.labels)
        if matched is not None:  # a click where neither a proposal nor SAM found an object
            det = _own_boxes(det, c, path, encoding, num_classes, sizes, offsets)
    else:
        from fewclick.predict.template import TemplateDetector

        predictor = worker.predictor(("template", num_classes), lambda: TemplateDetector(num_classes), path)
        det = predictor.predict(c, sizes=sizes)
        method = "template"
    return {
        "method": method,
        "classes": classes,
        "proposals": found,
        # the look-alikes' least-work thresholds per class position, on the finished images
        "min_scores_carried": least,
        **detection_lists(det),  # labels: class positions (the route makes them class ids)
        # the classes whose SAM boxes move by the edges learnt on finished images
        "fitted_classes": sorted(offsets.per_class) if offsets else [],
        # the classes whose proposals SAM makes tight (learnt on held-out finished images)
        "tight_classes": sorted(tight),
        # a trained detector's answer without the clicks: the route keeps what it showed
        **({"opened": detection_lists(opened)} if opened is not None else {}),
    }


def _opened(model: str, path: str, predictor, encoding, num_classes: int, tight: set, tight_from):
    """The trained detector's answer on the image without clicks, as the page opened it
    (made tight where that is learnt), kept for the image's further clicks."""
    from fewclick.types import Clicks

    key = (model, path, tuple(sorted(tight)), tight_from)
    if key not in _OPENED:
        nothing = Clicks(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
        det = predictor.predict(nothing)
        if encoding is not None and tight and tight_from is not None and det.rboxes is None:
            det = _tightened(det, path, encoding, num_classes, tight, tight_from)
        _OPENED[key] = det
        while len(_OPENED) > OPENED_KEPT:
            _OPENED.popitem(last=False)
    _OPENED.move_to_end(key)
    return _OPENED[key]


def _on_windows(large, model, names, clicks, sizes, encoding, limit, finished, held, tight_from) -> dict:
    """Click-to-detect on a large image: each click's window (:func:`~fewclick.predict.windows.detect_window`,
    1024 px at full resolution, encoded once and kept on disk under its key) is detected as
    a small image with the clicks inside it (the training-free start's answer for a window
    asked the same again comes from memory), for the last clicks' windows up to
    :data:`~fewclick.predict.windows.MAX_DETECT_WINDOWS`; the boxes move into the image and
    those found twice where windows overlap are merged once. Without clicks (a trained
    detector's proposals on open) nothing is detected: the person clicks where they look."""
    from fewclick.io.regions import window_path
    from fewclick.io.tiling import Tile, merge_detections
    from fewclick.predict.windows import MAX_DETECT_WINDOWS, detect_window
    from fewclick.types import Detections

    source, key, width, height = large
    groups: OrderedDict[tuple, list] = OrderedDict()
    for c in clicks:
        window = detect_window(c[0], c[1], width, height)
        groups.setdefault(window, []).append(c)
        groups.move_to_end(window)
    windows = list(groups.items())[-MAX_DETECT_WINDOWS:]
    per_window, out = [], {"method": None, "classes": None, "fitted_classes": [], "tight_classes": []}
    for (x0, y0, x1, y1), inside in windows:
        moved = [[c[0] - x0, c[1] - y0, c[2]] for c in inside]
        at = None if encoding is None else (encoding[0], f"{key}@{x0}_{y0}_{x1}_{y1}")
        path = window_path(source, (x0, y0, x1, y1))
        # the training-free start's answer depends on the request and the click boxes learnt
        # so far (a trained detector's also on what the encoding thread has learnt and
        # encoded meanwhile: it is not kept)
        asked = None
        if model is None:
            digest = hashlib.sha1(repr((names, moved, sorted(sizes.items()), limit, finished)).encode())
            asked = (path, at, len(_CLICK_BOXES), digest.hexdigest())
        found = _WINDOWS.get(asked) if asked else None  # the same clicks in a window: its answer again
        if found is None:
            found = detect(path, model, names, moved, sizes, at, limit, finished, held, tight_from)
            if asked:
                _WINDOWS[asked] = found
            while len(_WINDOWS) > WINDOWS_KEPT:
                _WINDOWS.popitem(last=False)
        if found["classes"] not in (None, list(names)):
            return {**found, **detection_lists(Detections.empty())}
        out.update({k: found[k] for k in out if k in found})
        per_window.append((Tile(x0, y0, x1, y1), answer_detections(found)))
    oriented = any(d.rboxes is not None for _, d in per_window)
    det = merge_detections(per_window, oriented, score_threshold=0.0) if per_window else Detections.empty()
    return {**out, "method": out["method"] or "none", **detection_lists(det)}


def _trained(model: str, path: str, encoding: tuple[str, str] | None):
    """The trained detector at ``model``, set on the image at ``path``. Only a detector on
    SAM's features waits for the image's embedding: an ImageNet or scratch one answers while
    SAM still encodes (its clicks' own boxes wait for it)."""
    detector = _loaded(model, encoding)
    sam_features = detector.method == "pretrained"
    return worker.encoded(
        ("detect", model), lambda: _loaded(model, encoding), path, encoding if sam_features else None
    )


def _own_boxes(
    det, clicks, path: str, encoding: tuple[str, str], num_classes: int, sizes: dict, offsets=None
):
    """``det`` with the clicked object's own box (:mod:`fewclick.predict.own_box`) for each
    click it left without one: SAM's from the click, by the training-free start's code,
    moved by ``offsets`` (an :class:`~fewclick.predict.own_box.EdgeOffsets`) when given."""
    from fewclick.predict.own_box import unboxed_clicks, with_own_boxes

    missing = unboxed_clicks(det, clicks)
    if not missing:
        return det
    similar = _similar(path, encoding, num_classes)
    own = {i: similar.clicked_box(*clicks.xy[i], clicks.labels[i], sizes) for i in missing}
    if offsets:
        moved = offsets.apply(np.stack(list(own.values())), clicks.labels[missing])
        own = dict(zip(own, moved))
    return with_own_boxes(det, clicks, own)


def _tightened(det, path: str, encoding: tuple[str, str], num_classes: int, tight: set, tight_from: float):
    """``det`` with its proposals of the ``tight`` classes at ``tight_from`` or more made tight
    by SAM (the box around SAM's mask for each as a box prompt), when the image's embedding is
    ready (never waited for: the proposals on open come before it); each proposal once."""
    from fewclick.server import embeddings
    from fewclick.types import Detections

    if embeddings.encoder(encoding[0]).cached(encoding[1]) is None:
        return det
    todo = np.flatnonzero(np.isin(det.labels, list(tight)) & (det.scores >= tight_from))
    if not len(todo):
        return det
    boxes, similar = det.boxes.copy(), None
    for i in todo:
        key = (encoding[1], int(det.labels[i]), *np.round(det.boxes[i], 1).tolist())
        if key not in _TIGHTENED:
            if similar is None:
                similar = _similar(path, encoding, num_classes)
            _TIGHTENED[key] = similar.tight_box(det.boxes[i])
            while len(_TIGHTENED) > TIGHTENED_KEPT:
                _TIGHTENED.popitem(last=False)
        boxes[i] = _TIGHTENED[key]
    return Detections(boxes, det.scores, det.labels, det.rboxes)


def learn_tight_boxes(folder: str, model: str, num_classes: int, held: list) -> None:
    """Start learning, on the worker's encoding thread, whether SAM makes the proposals of
    ``model`` tighter: on each ``held`` image (held-out finished images, as
    :func:`learn_click_boxes`' argument) whose embedding is cached, the detector's proposals
    on open near the person's boxes, as proposed and made tight. :func:`detect` decides per
    class on them (:func:`fewclick.predict.own_box.tight_classes`)."""
    from fewclick.server import embeddings

    embeddings.background(_learn_tight_boxes, folder, model, num_classes, held)


def _learn_tight_boxes(folder: str, model: str, num_classes: int, held: list) -> None:
    from fewclick.predict.detect import ClickDetector
    from fewclick.predict.own_box import near_pairs
    from fewclick.predict.similar import SimilarityDetector
    from fewclick.server import embeddings

    enc = embeddings.encoder(folder)
    detector = fitter = None
    for key, path, boxes, *_ in held:
        image = None if (model, key) in _TIGHT else _learnable(enc, key, path)
        if image is None:
            continue
        if detector is None:  # their own: the requests' predictors keep their images
            detector = ClickDetector.load(model, encoder=enc)
            fitter = SimilarityDetector(num_classes, enc)
        if len(detector.classes) != num_classes:
            return  # trained for other classes: it does not serve
        detector.set_image(image, key=key)
        det = detector.predict()
        theirs = np.asarray([b[1:] for b in boxes], np.float32).reshape(-1, 4)
        labels = np.asarray([int(b[0]) for b in boxes], np.int64)
        pairs = [] if det.rboxes is not None else near_pairs(det, theirs, labels)
        if pairs:
            fitter.set_image(image, key=key)
        i = np.array([p for p, _ in pairs], np.int64)
        j = np.array([o for _, o in pairs], np.int64)
        proposed = det.boxes[i].reshape(-1, 4)
        tight = np.array([fitter.tight_box(b) for b in proposed], np.float32).reshape(-1, 4)
        _TIGHT[(model, key)] = (labels[j], theirs[j], proposed, tight)
        while len(_TIGHT) > TIGHT_KEPT:
            _TIGHT.popitem(last=False)


def _tight_classes(model: str | None, held: list[str] | None) -> set[int]:
    """The classes whose proposals SAM makes tighter on the ``held`` images (embedding keys)
    learnt so far."""
    from fewclick.predict.own_box import tight_classes

    # .get: the encoding thread may drop the oldest meanwhile
    learnt = [found for key in held or [] if (found := _TIGHT.get((model, key))) is not None]
    if model is None or not learnt:
        return set()
    return tight_classes(*(np.concatenate(parts) for parts in zip(*learnt)))


def _similar(path: str, encoding: tuple[str, str], num_classes: int):
    """The training-free start (:class:`~fewclick.predict.similar.SimilarityDetector`) holding
    the image at ``path``: it serves clicks before a detector is trained, and boxes a trained
    detector's click that it left unboxed (:func:`_own_boxes`)."""

    def make():
        from fewclick.predict.similar import SimilarityDetector
        from fewclick.server import embeddings

        return SimilarityDetector(num_classes, embeddings.encoder(encoding[0]))

    return worker.encoded(("similar", encoding[0], num_classes), make, path, encoding)


def ready_for_clicks(path: str, encoding: tuple[str, str], num_classes: int) -> None:
    """Set the training-free start on the image ahead of its first click (its embedding read
    and its similarity maps made), so that a trained detector's first click that needs SAM's
    box does not pay for it: asked for once the proposals on open are answered."""
    _similar(path, encoding, num_classes)


def learn_click_boxes(folder: str, num_classes: int, sizes: dict, finished: list) -> None:
    """Start learning, on the worker's encoding thread, SAM's click box at the centre of each
    of the person's boxes on the ``finished`` images (``[embedding key, path, [[class, x0,
    y0, x1, y1], ...]]``, classes by position) whose embedding is cached: the pairs
    :func:`detect` fits its edge offsets on. An image not encoded is left out, not encoded."""
    from fewclick.server import embeddings

    embeddings.background(
        _learn_click_boxes, folder, num_classes, {int(k): float(v) for k, v in sizes.items()}, finished
    )


def _learn_click_boxes(folder: str, num_classes: int, sizes: dict, finished: list) -> None:
    from fewclick.predict.similar import SimilarityDetector
    from fewclick.server import embeddings

    enc = embeddings.encoder(folder)
    fitter = None
    for key, path, boxes, *_ in finished:
        todo = [b for b in boxes if _pair(key, b) not in _CLICK_BOXES]
        image = _learnable(enc, key, path) if todo else None
        if image is None:
            continue
        if fitter is None:  # its own: the click's predictors keep their images
            fitter = SimilarityDetector(num_classes, enc)
        fitter.set_image(image, key=key)
        for b in todo:
            _, x0, y0, x1, y1 = b
            _CLICK_BOXES[_pair(key, b)] = fitter.clicked_box((x0 + x1) / 2, (y0 + y1) / 2, int(b[0]), sizes)
        while len(_CLICK_BOXES) > CLICK_BOXES_KEPT:
            _CLICK_BOXES.popitem(last=False)


def _learnable(enc, key: str, path: str):
    """The image at ``path`` when the encoding thread can learn from it without encoding it:
    its embedding is cached under ``key`` and it is one tile (a large image's tiles are
    encoded apart, under other keys); else None. Read here, not from :func:`_image`'s cache:
    that is the requests' thread's."""
    from fewclick.io.images import load_image
    from fewclick.io.tiling import tile_grid

    if enc.cached(key) is None:
        return None
    image = load_image(path)
    return None if len(tile_grid(image.shape[1], image.shape[0])) > 1 else image


def _pair(key: str, box: list) -> tuple:
    """The :data:`_CLICK_BOXES` key of the person's ``box`` ``[class, x0, y0, x1, y1]`` on
    the image of embedding ``key``."""
    return (key, int(box[0]), *map(float, box[1:]))


def _offsets(finished: list | None):
    """The edge offsets fitted on the pairs already learnt for ``finished`` (None: none)."""
    from fewclick.predict.own_box import EdgeOffsets

    labels, theirs, sam = [], [], []
    for key, _, boxes, *_ in finished or []:
        for b in boxes:
            found = _CLICK_BOXES.get(_pair(key, b))
            if found is not None:
                labels.append(int(b[0]))
                theirs.append(b[1:])
                sam.append(found)
    return EdgeOffsets.fit(np.array(labels), np.array(theirs), np.array(sam)) if labels else None
