"""Box-to-mask, full-image segmentation and point refinement in the worker process
(:mod:`fewclick.server.worker`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from fewclick.io.rle import rle_to_mask
from fewclick.predict.segment_api import MaskPrediction
from fewclick.predict.windows import WindowedMasks
from fewclick.server import mask_answers, worker
from fewclick.wire.codec import mask_answer, region_answers

if TYPE_CHECKING:
    from fewclick.server.serving import Serving

_FULLIMAGE: OrderedDict[tuple, list] = OrderedDict()  # (folder, image) -> [predictor, has predicted]


def segment(
    path: str,
    sam: tuple[str, str] | None,
    serving: Serving,
    box: list[float] | None,
    clicks: list,
    candidate: int = 0,
    strokes: list | None = None,
    large: tuple[str, str, int, int] | None = None,
    project: int | None = None,
    under: dict | None = None,
) -> dict:
    """Box-to-mask with corrective clicks ``[x, y, positive]`` by the backend ``serving`` names (``sam``:
    the embedding's cache folder and key, for SAM). Without a ``box`` the clicks prompt SAM (issue 54: a
    click inside an object starts its mask, SAM's candidates for Tab; a corrective click frames the mask
    it corrects: :func:`.mask_answers.framed`). The last answer per image, backend and box is kept
    (:mod:`.mask_answers`): when a request adds one click to it, its ``state`` goes back to the backend as
    ``previous`` (for SAM only the decoder runs); a request with the same clicks gets it again without
    running the backend. With the backend's quality ranker, ``quality`` estimates the mask's IoU from the
    session: every click is a round of one click, so the features are the click count, the last click's
    distance to the previous mask's boundary and how much the mask changed.

    SAM's answer to an ambiguous prompt also holds its ``candidates`` (the mask served first,
    each with its RLE, box and score; to a box alone, the box's ellipse last) for ``Tab``.
    ``candidate`` is the one the person switched to on the last answer: with a new click its
    state goes back to SAM; with the same clicks it is the mask the ``strokes`` edit.
    ``strokes`` (the page's brush and eraser, :class:`~fewclick.brush.Stroke` JSON) are
    painted over the mask in order (over ``under``, ``{"mask": RLE, "score"}``, the mask the
    page shows, when it is sent); the answer then has no candidates and no quality
    estimate. ``changed``: the share of the mask the last click changed (1 - IoU with the
    answer before; None without one): after two small ones the page suggests the brush.
    Bad input (a candidate the last answer did not offer, a stroke outside the image) raises
    ValueError naming it. ``project``: whose mask choice serves (:mod:`.worker_pick`)."""
    from fewclick.brush import Stroke

    painted = [Stroke.parse(raw, i) for i, raw in enumerate(strokes or [])]
    asked, serving = serving, _readable_backend(serving, sam)
    if box is None and serving.name not in SAMS:
        raise ValueError(f"the project's mask model ({serving.name}) starts from a box: drag one")
    prompt = None if box is None else tuple(round(float(v), 2) for v in box)
    key = (path, serving.name, serving.model, prompt)
    made = [list(map(float, k)) for k in clicks]
    last = mask_answers.last(key)
    changed = None
    if painted and under is not None:  # the mask the page shows, painted: no answer made again
        pred, quality, zoom = MaskPrediction(rle_to_mask(under["mask"]), under["score"]), None, None
    elif last is not None and last.clicks == made and last.zoom != "encoding":  # the same clicks: as before
        _, pred, quality, changed, zoom, _ = last
        if painted:
            pred = _candidate(pred, candidate)
    else:  # (asked again while the zoom window was encoded: anew, on the window once it is ready)
        before = last.pred if last is not None and made and last.clicks == made[:-1] else None
        if before is not None:
            before = _candidate(before, candidate)
        framed = None if large else mask_answers.framed(box, made, before, last, path)  # large: its windows
        pred, quality, zoom = _predicted(path, sam, serving, box or framed, made, before, large, project)
        if before is not None:
            changed = _changed(pred, before, path if large is None else None)
        mask_answers.remember(key, mask_answers.Answer(made, pred, quality, changed, zoom, framed))
        if painted and before is None:  # the same prompts made anew: the candidate shown painted
            pred = _candidate(pred, candidate)
    if painted:
        pred, quality = _painted(pred, painted, None if large else worker.image(path).shape[:2]), None
    size = (large[3], large[2]) if large is not None else None
    if size is None and pred.offset is not None:  # a zoom window's mask, numbered in the image
        size = worker.image(path).shape[:2]
    shown = _shown_mask(pred, size)
    note = _NOTES.get(asked.model) if asked.name in ("sam_tuned", "model") else None
    return {
        "method": "sam" if note and serving.name == "sam_tuned" else serving.name,
        "chosen_by": serving.chosen_by,
        "note": note,
        **shown,
        "quality": quality,
        "changed": changed,
        "zoom": zoom,
        "candidates": (
            [shown, *(_shown_mask(c, size) for c in pred.candidates[1:])] if len(pred.candidates) > 1 else []
        ),
    }


def _changed(pred, before, path: str | None) -> float:
    """How much of the mask the click changed (1 - IoU with the answer ``before``); a zoom
    window's and the whole image's (``path``: a small image's) compared in the image."""
    from fewclick.metrics.segmentation import mask_iou

    if path is not None and (pred.offset is None) != (before.offset is None):
        from fewclick.predict.zoom import image_sized

        size = worker.image(path).shape[:2]
        pred, before = image_sized(pred, size), image_sized(before, size)
    return round(1.0 - mask_iou(pred.mask, before.mask), 4)


def _painted(pred, painted: list, size: tuple[int, int] | None):
    """``pred`` with the brush's strokes painted over its mask: a zoom window's first made
    the image's of ``size`` (height, width); a large image's window (``size`` None) keeps its
    frame, the strokes moved into it, and one outside it named with the window."""
    from fewclick.brush import apply_strokes

    if size is not None and pred.offset is not None:
        from fewclick.predict.zoom import image_sized

        pred = image_sized(pred, size)
    if pred.offset is not None:
        at = np.float32(pred.offset)
        painted = [replace(s, points=s.points - at) for s in painted]
    try:
        mask = apply_strokes(pred.mask, painted)
    except ValueError as exc:
        if pred.offset is None:
            raise
        (x, y), (h, w) = pred.offset, pred.mask.shape
        raise ValueError(
            f"{exc}: on a large image the brush paints the window {[x, y, x + w, y + h]} read around the box"
        ) from None
    return MaskPrediction(mask, pred.score, offset=pred.offset)


def _candidate(pred, index: int):
    """Candidate ``index`` of the answer ``pred`` (0: the mask served); ValueError if it
    offered no such candidate."""
    offered = len(pred.candidates) or 1
    if not 0 <= index < offered:
        raise ValueError(f"candidate {index} is not one of the {offered} masks offered for this box")
    return pred.candidates[index] if index else pred


def _predicted(
    path: str, sam, serving: Serving, box: list[float], made: list, before, large, project=None
) -> tuple:
    """The backend's mask for ``box`` and the clicks ``made`` (``before``: the answer to
    all but the last click, whose state goes back), its estimated quality (None without a
    ranker) and its zoom (:func:`fewclick.server.worker_zoom.zoomed`); on a window of a
    ``large`` image (see :func:`segment`)."""
    from fewclick.types import Clicks

    xy = np.asarray([c[:2] for c in made], np.float32).reshape(-1, 2)
    positive = np.asarray([bool(c[2]) for c in made], bool)
    c = Clicks(xy, np.zeros(len(xy), np.int64), positive)
    zoom = None
    if large is not None:
        predictor = _windowed(serving, sam, large)
    else:
        from fewclick.server.worker_zoom import zoomed

        predictor, zoom = zoomed(lambda folder: _zoom_sam(serving, folder), sam, path, box, c)
        predictor = predictor or _mask_backend(serving, path, sam)
        if before is not None and (before.offset is not None) != isinstance(predictor, WindowedMasks):
            before = None  # the answer before was the other view's (a click left the zoom window)
    options = {"multimask": True} if serving.name in SAMS else {}
    if serving.name == "sam":
        from fewclick.server import worker_pick

        options["offsets"] = worker_pick.offsets(project)
    pred = predictor.predict(box, c, None if before is None else before.state, **options)
    if box is not None and not len(c):  # the box alone: its ellipse offered too, last
        from fewclick.predict.shapes import with_ellipse

        pred = with_ellipse(pred, box)
    elif box is None and len(c) == 1 and c.positive[0] and large is None and sam is not None:
        from fewclick.predict.shapes import with_proposal
        from fewclick.server.worker_proposals import proposal_at

        pred = with_proposal(pred, proposal_at(*sam, *map(float, c.xy[0])))  # served first
    ranker = None if pred.shape == "proposal" else _ranker(serving.ranker)  # it learnt from SAM's scores
    if ranker is None:
        return pred, None, zoom
    from fewclick.quality.ranker import interaction_features

    previous = None
    if len(c):
        previous = before.mask if before is not None else predictor.predict(box, c[:-1]).mask
    last = c[-1:] if len(c) else None
    if last is not None and pred.offset is not None:  # a window's masks: its clicks in its pixels
        last = replace(last, xy=last.xy - np.float32(pred.offset))
    features = interaction_features(len(c), last, previous, pred.mask)
    return pred, round(float(ranker.predict(features[None], [pred.score])[0]), 4), zoom


def _zoom_sam(serving: Serving, folder: str):
    """The worker's SAM that serves ``serving`` on zoom windows, ``(key, predictor)``; None
    for a backend other than SAM, or a tuned decoder that cannot be read (the whole image's
    request says why)."""
    if serving.name not in SAMS:
        return None
    tuned = serving.model if serving.name == "sam_tuned" and serving.model not in _NOTES else None
    try:
        return _sam_predictor(folder, tuned)
    except (ValueError, FileNotFoundError):
        return None


def _shown_mask(pred, size: tuple[int, int] | None = None) -> dict:
    """A mask as the page draws it (:func:`fewclick.wire.codec.mask_answer`); a window's
    (``pred.offset`` set) numbered in the image of ``size`` (height, width)."""
    shape = {"shape": pred.shape} if pred.shape else {}
    if pred.offset is None:
        return {**mask_answer(pred.mask, pred.score), **shape}
    return {**mask_answer(pred.mask, pred.score, offset=pred.offset, size=size), **shape}


SAMS = ("sam", "sam_tuned")  # the backends that run SAM on the image's embedding
_NOTES: dict[str, str] = {}  # a tuned decoder's folder -> why the pretrained one serves instead


def _readable_backend(serving: Serving, sam: tuple[str, str] | None) -> Serving:
    """``serving``, or when it is the project's mask model and its file cannot be read,
    SAM (GrabCut without SAM's embedding) with the reason kept in ``_NOTES`` for the page."""
    if serving.name != "model":
        return serving
    from fewclick.predict.backends import make_backend

    key = ("mask", serving.name, serving.model)
    if key not in worker.PREDICTORS:
        try:
            worker.PREDICTORS[key] = make_backend(serving.name, serving.model)
        except (ValueError, FileNotFoundError) as exc:
            instead = "sam" if sam is not None else "grabcut"
            _NOTES[serving.model] = f"the project's mask model cannot be read ({exc}): {instead} serves"
            return replace(serving, name=instead, model=None, ranker=None)
    _NOTES.pop(serving.model, None)
    return serving


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
    return worker.predictor(key, lambda: make_backend(serving.name, serving.model), path)


def _windowed(serving: Serving, sam: tuple[str, str] | None, large: tuple[str, str, int, int]):
    """The project's mask backend on windows of the large image ``large`` (see
    :func:`segment`): SAM on each window's embedding (encoded once and kept in the
    embedding folder under the window's key; the decoder is the one whole images use), any
    other backend on the window's pixels."""
    from fewclick.io.regions import cached_regions
    from fewclick.predict.backends import make_backend
    from fewclick.predict.windows import WindowedMasks

    source, name, width, height = large
    key = ("window", serving.name, serving.model, sam[0] if sam else None)
    held = worker.PREDICTORS.get(key)
    if held is None:
        if serving.name in SAMS:
            if sam is None:
                raise ValueError(f"the {serving.name} backend needs the image's embedding folder")
            tuned = None
            if serving.name == "sam_tuned" and serving.model not in _NOTES:
                try:
                    tuned = _sam_predictor(sam[0], serving.model)[0]
                except (ValueError, FileNotFoundError) as exc:
                    _NOTES[serving.model] = (
                        f"the tuned SAM decoder cannot be read ({exc}): the pretrained one serves"
                    )
            held = worker.sam_windows(tuned or _sam_predictor(sam[0])[0])
        else:
            backend = make_backend(serving.name, serving.model)
            held = WindowedMasks(backend, lambda pixels, window, image: backend.set_image(pixels))
        worker.PREDICTORS[key] = held
    regions = cached_regions(source)
    if regions is None:
        raise ValueError(f"{source}: the large image cannot be read by regions")
    held.set_image(name, width, height, lambda w: regions.read((w.x0, w.y0, w.x1, w.y1), w.scale))
    return held


def _sam_predictor(folder: str, tuned: str | None = None) -> tuple[tuple, object]:
    """The worker's one SAM of the embedding folder ``folder`` (with ``tuned``, a mask
    model's folder, its tuned decoder), made on first use: its key and itself."""
    from fewclick.predict.backends import make_backend
    from fewclick.server import embeddings

    key = ("sam", folder, tuned)
    predictor = worker.PREDICTORS.get(key)
    if predictor is None:
        encoder = embeddings.encoder(folder)
        made = (
            make_backend("sam", encoder=encoder)
            if tuned is None
            else make_backend("sam_tuned", tuned, encoder)
        )
        predictor = worker.PREDICTORS[key] = made
    return key, predictor


def _sam(sam: tuple[str, str], path: str, tuned: str | None = None):
    """SAM holding the embedding of the image at ``path`` (waiting for its encoding when
    one is under way); with ``tuned`` (a mask model's folder), its tuned decoder."""
    from fewclick.server import embeddings

    folder, image_key = sam
    key, predictor = _sam_predictor(folder, tuned)
    if worker.CURRENT.get(key) != image_key:
        predictor.set_embedding(embeddings.embedding(folder, image_key, path))
        worker.CURRENT[key] = image_key
    return predictor


def fullimage(
    path: str,
    sam: tuple[str, str] | None,
    regions: list[dict],
    changed: list[int] | None,
    model: str | None = None,
    large: tuple[str, str, int, int] | None = None,
) -> dict:
    """Full-image segmentation of the image at ``path``: every region from its extreme points
    and scribbles (``regions`` checked by :func:`fewclick.server.fullimage.check_regions`),
    by the predictor :func:`~fewclick.server.fullimage.fullimage_predictor` makes on SAM
    (``sam``: the embedding's folder and key; None without the SAM files). One predictor per
    image is kept (the last 3 images). ``changed``: the regions whose prompts changed since
    the last request on the image; a predictor with ``update(prompts, changed)`` is given
    only those once it has predicted the image, else every region is predicted. Answers
    ``regions`` (per region its index, RLE mask and area), ``method`` and ``ms`` (the time
    spent here). ``model``: a trained full-image model's file, served instead of SAM. On a
    ``large`` image (as :func:`segment`'s) it segments the window the prompts span
    (:func:`~fewclick.predict.windows.fullimage_window`), each region's RLE numbered in the image."""
    import time

    from fewclick.server import fullimage as fi

    start = time.perf_counter()
    if large is not None:
        return _fullimage_window(sam, regions, changed, model, large, start)
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
        predictor.set_image(worker.image(path))
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
        "regions": region_answers(np.asarray(labels), len(prompts)),
        "method": fi.method_name(predictor),
        "ms": round(1000 * (time.perf_counter() - start), 1),
    }


def _fullimage_window(sam, regions: list[dict], changed, model, large, start: float) -> dict:
    """:func:`fullimage` on the window of a large image its regions' prompts span."""
    import time

    from fewclick.io.regions import window_path
    from fewclick.io.rle import rle_to_mask, window_to_rle
    from fewclick.predict.windows import fullimage_window
    from fewclick.server import fullimage as fi

    source, key, width, height = large
    x0, y0, x1, y1 = fullimage_window(fi.prompt_points(regions), width, height)
    moved = [
        {
            **r,
            "extreme": [[x - x0, y - y0] for x, y in r["extreme"]],
            "scribbles": [[[x - x0, y - y0] for x, y in s] for s in r["scribbles"]],
        }
        for r in regions
    ]
    at = None if sam is None else (sam[0], f"{key}@{x0}_{y0}_{x1}_{y1}")
    out = fullimage(window_path(source, (x0, y0, x1, y1)), at, moved, changed, model)
    for region in out["regions"]:
        region["rle"] = window_to_rle(rle_to_mask(region["rle"]), (x0, y0), height, width)
    out["window"] = [x0, y0, x1, y1]
    out["ms"] = round(1000 * (time.perf_counter() - start), 1)
    return out


def _ranker(file: str | None):
    """The quality ranker saved in ``file``, or None without one."""
    if file is None:
        return None
    key = ("ranker", file)
    if key not in worker.PREDICTORS:
        from fewclick.quality.ranker import QualityRanker

        try:
            worker.PREDICTORS[key] = QualityRanker.load(file)
        except (FileNotFoundError, ValueError) as exc:  # torn or gone: no estimate, never an error
            import logging

            logging.getLogger(__name__).warning("the quality ranker %s cannot be read: %s", file, exc)
            return None
    return worker.PREDICTORS[key]


def snap(
    path: str,
    model: str | None,
    sam: tuple[str, str] | None,
    click: tuple[float, float, int],
    others: list,
    large: tuple[str, str, int, int] | None = None,
) -> dict:
    """Where a points-mode ``click`` (x, y, class position) lands: CPR refinement when the
    project has a point model, else the centre of SAM's mask for the click ("sam-centre")
    when ``sam`` (embedding folder and key) is given, else the click itself. On a ``large``
    image (as :func:`segment`'s) both run on the 1024 px window around the click, the one
    click-to-detect encodes there, with the other points inside it."""
    x, y, label = click
    if large is not None:
        from fewclick.io.regions import window_path
        from fewclick.predict.windows import detect_window

        source, key, width, height = large
        x0, y0, x1, y1 = detect_window(x, y, width, height)
        inside = [[ox - x0, oy - y0, ol] for ox, oy, ol in others if x0 <= ox < x1 and y0 <= oy < y1]
        at = None if sam is None else (sam[0], f"{key}@{x0}_{y0}_{x1}_{y1}")
        out = snap(window_path(source, (x0, y0, x1, y1)), model, at, (x - x0, y - y0, label), inside)
        px, py = out["point"]
        return {**out, "point": [round(px + x0, 2), round(py + y0, 2)]}
    note = None
    if model is not None:
        from fewclick.predict.points import PointRefiner

        try:
            refiner = worker.predictor(("points", model), lambda: PointRefiner.load(model), path)
        except (ValueError, FileNotFoundError) as exc:  # torn or gone: SAM's centre, and the page says why
            note = f"the project's point model cannot be read ({exc})"
        else:
            pts = np.asarray([o[:2] for o in others], np.float32).reshape(-1, 2)
            labels = np.asarray([int(o[2]) for o in others], np.int64)
            sx, sy = refiner.snap(x, y, label, pts, labels)
            return {"method": "cpr", "point": [round(sx, 2), round(sy, 2)]}
    noted = {"note": note} if note else {}
    if sam is not None:
        from fewclick.predict.sam import click_centre

        cx, cy, _ = click_centre(_sam(sam, path), x, y)
        return {"method": "sam-centre", "point": [round(cx, 2), round(cy, 2)], **noted}
    return {"method": "none", "point": [x, y], **noted}
