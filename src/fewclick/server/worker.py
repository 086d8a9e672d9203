"""Model work off the request thread: predictions in a worker process, training in jobs.

:class:`ModelWorker` owns one worker process (``ProcessPoolExecutor``, spawn). The process
keeps its predictors and the last images it decoded, so a second click on the same image
pays only for the light part of the model (the image is encoded once per predictor). The
functions below run *in* that process; their arguments and results are plain data.

Training runs in its own process per job (``run_training``), which writes its progress to
the job's row; the app never blocks on it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_IMAGES: OrderedDict[str, np.ndarray] = OrderedDict()
_PREDICTORS: dict[tuple, object] = {}
_CURRENT: dict[tuple, str] = {}  # predictor key -> the image it holds
_LAST_MASKS: dict[
    tuple, tuple
] = {}  # (image, backend, model, box) -> (clicks, MaskPrediction, quality, changed)
_FULLIMAGE: OrderedDict[tuple, list] = OrderedDict()  # (folder, image) -> [predictor, has predicted]
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


@dataclass(frozen=True)
class Serving:
    """The backend serving a project's masks: ``name``; ``chosen_by`` "you" (the user's
    pick), "comparison" (the best measured) or "default" (no comparison yet); ``model``
    the mask model's folder when ``name`` is "model"; ``ranker`` the quality ranker's file
    for this backend, or None."""

    name: str
    chosen_by: str
    model: str | None = None
    ranker: str | None = None


class ModelWorker:
    """The worker process pool; its processes end with this process (they watch it:
    :func:`fewclick.server.processes.watch_parent`) or on :meth:`close`."""

    def __init__(self, processes: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=_init, initargs=(os.getpid(),)
        )

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def close(self) -> None:
        """Cancel the waiting work and stop the processes, busy or not (``shutdown`` alone
        lets a busy one run on, past the server's exit)."""
        from fewclick.server.processes import stop

        # the executor's own table of its processes: the only handle on them before
        # Python 3.14's terminate_workers
        workers = list((self.pool._processes or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        stop(workers)


def _init(parent: int) -> None:
    import torch

    from fewclick.server.processes import watch_parent

    watch_parent(parent)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _image(path: str) -> np.ndarray:
    from fewclick.io.images import load_image

    if path in _IMAGES:
        _IMAGES.move_to_end(path)
        return _IMAGES[path]
    image = load_image(path)
    _IMAGES[path] = image
    while len(_IMAGES) > 3:
        _IMAGES.popitem(last=False)
    return image


def _predictor(key: tuple, make, path: str):
    """The cached predictor for ``key``, holding the image at ``path``."""
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        predictor = _PREDICTORS[key] = make()
    if _CURRENT.get(key) != path:
        predictor.set_image(_image(path))
        _CURRENT[key] = path
    return predictor


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
    held-out finished images), once the image's embedding is ready (``tight_classes``)."""
    from fewclick.types import Clicks, Detections

    num_classes = len(names)
    xy = np.asarray([c[:2] for c in clicks], np.float32).reshape(-1, 2)
    labels = np.asarray([int(c[2]) for c in clicks], np.int64)
    c = Clicks(xy, labels, np.ones(len(xy), bool))
    sizes = {int(k): float(v) for k, v in sizes.items()}
    classes, offsets, tight = None, _offsets(finished), set()
    if model is not None:
        from fewclick.predict.detect import ClickDetector

        def make():
            from fewclick.server import embeddings

            return ClickDetector.load(model, encoder=embeddings.encoder(encoding[0]) if encoding else None)

        key = ("detect", model)
        if key not in _PREDICTORS:
            _PREDICTORS[key] = make()
        # only a detector on SAM's features waits for the image's embedding: an ImageNet or
        # scratch one answers while SAM still encodes (its clicks' own boxes wait for it)
        sam_features = _PREDICTORS[key].method == "pretrained"
        predictor = _encoded(key, make, path, encoding if sam_features else None)
        method, classes = predictor.method, list(predictor.classes)
        if classes != list(names):
            return {
                "method": method,
                "classes": classes,
                "boxes": [],
                "rboxes": None,
                "scores": [],
                "labels": [],
            }
        det = predictor.predict(c)
        if encoding is not None:
            tight = _tight_classes(model, held)
            if tight and tight_from is not None and det.rboxes is None:
                det = _tightened(det, path, encoding, num_classes, tight, tight_from)
            # a click the detector left unboxed: SAM's box from it
            det = _own_boxes(det, c, path, encoding, num_classes, sizes, offsets)
    elif encoding is not None:
        predictor = _similar(path, encoding, num_classes)
        det = predictor.predict(c, sizes=sizes, limit=limit)
        if offsets:  # every box of the training-free start is a SAM click box, or sized as one
            det = Detections(offsets.apply(det.boxes, det.labels), det.scores, det.labels)
        method = predictor.method
    else:
        from fewclick.predict.template import TemplateDetector

        predictor = _predictor(("template", num_classes), lambda: TemplateDetector(num_classes), path)
        det = predictor.predict(c, sizes=sizes)
        method = "template"
    return {
        "method": method,
        "classes": classes,
        "boxes": det.boxes.round(2).tolist(),
        "rboxes": None if det.rboxes is None else det.rboxes.round(3).tolist(),
        "scores": det.scores.round(4).tolist(),
        "labels": det.labels.tolist(),
        # the classes whose SAM boxes move by the edges learnt on finished images
        "fitted_classes": sorted(offsets.per_class) if offsets else [],
        # the classes whose proposals SAM makes tight (learnt on held-out finished images)
        "tight_classes": sorted(tight),
    }


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
    for key, path, boxes in held:
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

    return _encoded(("similar", encoding[0], num_classes), make, path, encoding)


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
    for key, path, boxes in finished:
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
    for key, _, boxes in finished or []:
        for b in boxes:
            found = _CLICK_BOXES.get(_pair(key, b))
            if found is not None:
                labels.append(int(b[0]))
                theirs.append(b[1:])
                sam.append(found)
    return EdgeOffsets.fit(np.array(labels), np.array(theirs), np.array(sam)) if labels else None


def _encoded(key: tuple, make, path: str, encoding: tuple[str, str] | None):
    """The cached predictor for ``key`` holding the image at ``path``, set under the image's
    encoding key once the encoding ``prepare`` started is done (none is started twice)."""
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        predictor = _PREDICTORS[key] = make()
    current = encoding[1] if encoding else path
    if _CURRENT.get(key) != current:
        if encoding is not None:
            from fewclick.server import embeddings

            embeddings.embedding(encoding[0], encoding[1], path)
        predictor.set_image(_image(path), key=encoding[1] if encoding else None)
        _CURRENT[key] = current
    return predictor


def segment(
    path: str,
    sam: tuple[str, str] | None,
    serving: Serving,
    box: list[float],
    clicks: list,
    candidate: int = 0,
    strokes: list | None = None,
) -> dict:
    """Box-to-mask with corrective clicks ``[x, y, positive]`` by the backend ``serving``
    names (``sam``: the embedding's cache folder and key, for SAM). The last answer per
    image, backend and box is kept: when a request adds one click to it, its ``state``
    goes back to the backend as ``previous`` (for SAM only the decoder runs); a request
    with the same clicks gets it again without running the backend. With the backend's
    quality ranker, ``quality`` estimates the mask's IoU from the session: every click is a
    round of one click, so the features are the click count, the last click's distance to
    the previous mask's boundary and how much the mask changed.

    SAM's answer to an ambiguous prompt also holds its ``candidates`` (the mask served
    first, each with its RLE, box and score) for the page's ``Tab``. ``candidate`` is the
    one the person switched to on the last answer: with a new click its state goes back to
    SAM; with the same clicks it is the mask the ``strokes`` edit. ``strokes`` (the page's
    brush and eraser, :class:`~fewclick.predict.brush.Stroke` JSON) are painted over the
    mask in order; the answer then has no candidates and no quality estimate. ``changed``
    is the share of the mask the last click changed (1 - IoU with the answer before it;
    None without one): after two small ones the page suggests the brush. Bad input
    (a candidate the last answer did not offer, a stroke outside the image) raises
    ValueError naming it."""
    from fewclick.predict.brush import Stroke, apply_strokes
    from fewclick.predict.segment_api import MaskPrediction

    painted = [Stroke.parse(raw, i) for i, raw in enumerate(strokes or [])]
    key = (path, serving.name, serving.model, tuple(round(float(v), 2) for v in box))
    made = [list(map(float, k)) for k in clicks]
    last = _LAST_MASKS.get(key)
    changed = None
    if last is not None and last[0] == made:  # the same clicks: the same answer
        pred, quality, changed = last[1], last[2], last[3]
        if painted:
            pred = _candidate(pred, candidate)
    else:
        before = last[1] if last is not None and made and last[0] == made[:-1] else None
        if before is not None:
            before = _candidate(before, candidate)
        pred, quality = _predicted(path, sam, serving, box, made, before)
        if before is not None:  # how much of the mask the click changed (1 - IoU)
            from fewclick.metrics.segmentation import mask_iou

            changed = round(1.0 - mask_iou(pred.mask, before.mask), 4)
        _LAST_MASKS[key] = (made, pred, quality, changed)
        while len(_LAST_MASKS) > 8:
            _LAST_MASKS.pop(next(iter(_LAST_MASKS)))
    if painted:
        pred, quality = MaskPrediction(apply_strokes(pred.mask, painted), pred.score), None
    shown = _shown_mask(pred)
    note = _NOTES.get(serving.model) if serving.name == "sam_tuned" else None
    return {
        "method": "sam" if note else serving.name,
        "chosen_by": serving.chosen_by,
        "note": note,
        **shown,
        "quality": quality,
        "changed": changed,
        "candidates": [shown, *map(_shown_mask, pred.candidates[1:])] if len(pred.candidates) > 1 else [],
    }


def _candidate(pred, index: int):
    """Candidate ``index`` of the answer ``pred`` (0: the mask served); ValueError if it
    offered no such candidate."""
    offered = len(pred.candidates) or 1
    if not 0 <= index < offered:
        raise ValueError(f"candidate {index} is not one of the {offered} masks offered for this box")
    return pred.candidates[index] if index else pred


def _predicted(path: str, sam, serving: Serving, box: list[float], made: list, before) -> tuple:
    """The backend's mask for ``box`` and the clicks ``made`` (``before``: the answer to
    all but the last click, whose state goes back), and its estimated quality (None
    without a ranker)."""
    from fewclick.types import Clicks

    xy = np.asarray([c[:2] for c in made], np.float32).reshape(-1, 2)
    positive = np.asarray([bool(c[2]) for c in made], bool)
    c = Clicks(xy, np.zeros(len(xy), np.int64), positive)
    predictor = _mask_backend(serving, path, sam)
    options = {"multimask": True} if serving.name in SAMS else {}
    pred = predictor.predict(box, c, None if before is None else before.state, **options)
    ranker = _ranker(serving.ranker)
    if ranker is None:
        return pred, None
    from fewclick.quality.ranker import interaction_features

    previous = None
    if len(c):
        previous = before.mask if before is not None else predictor.predict(box, c[:-1]).mask
    features = interaction_features(len(c), c[-1:] if len(c) else None, previous, pred.mask)
    return pred, round(float(ranker.predict(features[None], [pred.score])[0]), 4)


def _shown_mask(pred) -> dict:
    """A mask as the page draws it: its RLE, box (None when empty), score and area."""
    from fewclick.io.rle import mask_to_rle, rle_boxes

    rle = mask_to_rle(pred.mask)
    b = rle_boxes([rle])[0]
    return {
        "mask": rle,
        "box": None if not np.isfinite(b).all() else b.tolist(),
        "score": float(pred.score),
        "area": int(pred.mask.sum()),
    }


SAMS = ("sam", "sam_tuned")  # the backends that run SAM on the image's embedding
_NOTES: dict[str, str] = {}  # a tuned decoder's folder -> why the pretrained one serves instead


def _mask_backend(serving: Serving, path: str, sam: tuple[str, str] | None):
    from fewclick.predict.backends import make_backend

    if serving.name in SAMS:
        if sam is None:
            raise ValueError(f"the {serving.name} backend needs the image's embedding folder and key")
        if serving.name == "sam_tuned":
            try:
                return _sam(sam, path, serving.model)
            except (ValueError, FileNotFoundError) as exc:  # a corrupt or missing tuned decoder
                _NOTES[serving.model] = (
                    f"the tuned SAM decoder cannot be read ({exc}): the pretrained one serves"
                )
        return _sam(sam, path)
    key = ("mask", serving.name, serving.model)
    return _predictor(key, lambda: make_backend(serving.name, serving.model), path)


def _sam(sam: tuple[str, str], path: str, tuned: str | None = None):
    """SAM holding the embedding of the image at ``path`` (waiting for its encoding when
    one is under way); with ``tuned`` (a mask model's folder), its tuned decoder."""
    from fewclick.predict.backends import make_backend
    from fewclick.server import embeddings

    folder, image_key = sam
    key = ("sam", folder, tuned)
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        encoder = embeddings.encoder(folder)
        made = (
            make_backend("sam", encoder=encoder)
            if tuned is None
            else make_backend("sam_tuned", tuned, encoder)
        )
        predictor = _PREDICTORS[key] = made
    if _CURRENT.get(key) != image_key:
        predictor.set_embedding(embeddings.embedding(folder, image_key, path))
        _CURRENT[key] = image_key
    return predictor


def fullimage(
    path: str,
    sam: tuple[str, str] | None,
    regions: list[dict],
    changed: list[int] | None,
    model: str | None = None,
) -> dict:
    """Full-image segmentation of the image at ``path``: every region from its extreme points
    and scribbles (``regions`` checked by :func:`fewclick.server.fullimage.check_regions`),
    by the predictor :func:`~fewclick.server.fullimage.fullimage_predictor` makes on SAM
    (``sam``: the embedding's folder and key; None without the SAM files). One predictor per
    image is kept (the last 3 images). ``changed``: the regions whose prompts changed since
    the last request on the image; a predictor with ``update(prompts, changed)`` is given
    only those once it has predicted the image, else every region is predicted. Answers
    ``regions`` (per region its index, RLE mask and area), ``method`` and ``ms`` (the time
    spent here). ``model``: a trained full-image model's file, served instead of SAM."""
    import time

    from fewclick.server import fullimage as fi

    start = time.perf_counter()
    key = ((None, path) if sam is None else sam, model)
    entry = _FULLIMAGE.get(key)
    shared = None
    if sam is not None:
        from fewclick.server import embeddings

        shared = _sam(sam, path)  # the shared SAM on this image while the request runs
        if entry is None:
            shared = fi.EmbeddedSam(shared, embeddings.embedding(sam[0], sam[1], path))
    if entry is None:
        predictor = fi.fullimage_predictor(shared, model)
        predictor.set_image(_image(path))
        entry = _FULLIMAGE[key] = [predictor, False]
        while len(_FULLIMAGE) > 3:
            _FULLIMAGE.popitem(last=False)
    _FULLIMAGE.move_to_end(key)
    predictor, predicted = entry
    prompts = fi.region_prompts(regions)
    if changed is not None and predicted and hasattr(predictor, "update"):
        labels = predictor.update(prompts, changed)
    else:
        labels = predictor.predict(prompts)
    entry[1] = True
    return {
        "regions": fi.region_answers(np.asarray(labels), len(prompts)),
        "method": fi.method_name(predictor),
        "ms": round(1000 * (time.perf_counter() - start), 1),
    }


def _ranker(file: str | None):
    """The quality ranker saved in ``file``, or None without one."""
    if file is None:
        return None
    key = ("ranker", file)
    if key not in _PREDICTORS:
        from fewclick.quality.ranker import QualityRanker

        _PREDICTORS[key] = QualityRanker.load(file)
    return _PREDICTORS[key]


def snap(
    path: str, model: str | None, sam: tuple[str, str] | None, click: tuple[float, float, int], others: list
) -> dict:
    """Where a points-mode ``click`` (x, y, class position) lands: CPR refinement when the
    project has a point model, else the centre of SAM's mask for the click ("sam-centre")
    when ``sam`` (embedding folder and key) is given, else the click itself."""
    x, y, label = click
    if model is not None:
        from fewclick.predict.points import PointRefiner

        refiner = _predictor(("points", model), lambda: PointRefiner.load(model), path)
        pts = np.asarray([o[:2] for o in others], np.float32).reshape(-1, 2)
        labels = np.asarray([int(o[2]) for o in others], np.int64)
        sx, sy = refiner.snap(x, y, label, pts, labels)
        return {"method": "cpr", "point": [round(sx, 2), round(sy, 2)]}
    if sam is not None:
        from fewclick.predict.sam import click_centre

        cx, cy, _ = click_centre(_sam(sam, path), x, y)
        return {"method": "sam-centre", "point": [round(cx, 2), round(cy, 2)]}
    return {"method": "none", "point": [x, y]}


def ping() -> int:
    return os.getpid()


def warm() -> int:
    """Import the models' code ahead of the first click (the spawn costs seconds)."""
    import fewclick.predict.detect  # noqa: F401
    import fewclick.predict.grabcut  # noqa: F401
    import fewclick.predict.sam  # noqa: F401
    import fewclick.predict.segment  # noqa: F401
    import fewclick.predict.similar  # noqa: F401
    import fewclick.predict.template  # noqa: F401

    return os.getpid()


def run_training(db_url: str, job_id: int, models_dir: str, minutes: float, embeddings: str) -> None:
    """A training job, run in its own process (see :mod:`fewclick.server.training`)."""
    from fewclick.server import training

    _job(training.train_project, db_url, job_id, Path(models_dir), minutes, embeddings=embeddings)


def run_trainer(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """A project's background trainer, in its own process (:mod:`fewclick.server.trainer`)."""
    from fewclick.server import trainer

    _job(trainer.run_trainer, db_url, job_id, Path(models_dir), embeddings)


def run_queue(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """Building a review queue, in its own process (:mod:`fewclick.server.box_queue`)."""
    from fewclick.server import box_queue

    _job(box_queue.build_queue, db_url, job_id, Path(models_dir), embeddings)


def run_preannotate(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """Pre-annotating a project, in its own process (:mod:`fewclick.server.preannotate`)."""
    from fewclick.server import preannotate

    _job(preannotate.preannotate, db_url, job_id, Path(models_dir), embeddings)


def run_comparison(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """A comparison of mask backends, in its own process (:mod:`fewclick.server.comparison`)."""
    from fewclick.server import comparison

    _job(comparison.compare_job, db_url, job_id, Path(models_dir), embeddings)


def _job(fn, db_url: str, job_id: int, *args, **kwargs) -> None:
    from fewclick.server import logs
    from fewclick.server.job_process import run_job

    logs.configure()  # a spawned process starts without the server's logging
    run_job(fn, db_url, job_id, *args, **kwargs)
