"""The model in the loop: click-to-detect, box-to-mask and point snapping on an image.

The newest model the project trained for the task serves, in the worker process; before
there is one, the worker's training-free method does. Masks come from the project's serving
backend (:mod:`fewclick.server.serving`); SAM's image embedding is computed ahead of the
click (``prepare``), and points snap to SAM's mask centre until a point model is trained.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from fewclick.active.continual import held_out
from fewclick.predict.segment_api import check_box
from fewclick.server import embeddings, queries, serving, store, worker_detect, worker_masks
from fewclick.server.db import Image
from fewclick.server.deps import DB, Config, Settings, Worker
from fewclick.server.serving import newest_model, serving_detector
from fewclick.wire import answers
from fewclick.wire.codec import ClassMap

router = APIRouter(prefix="/api")
#: the training-free start shows at most this many look-alikes per object of the fullest
#: finished image (issue 32: "never more than a few times the objects a finished image holds")
LOOK_ALIKES_PER_OBJECT = 3
#: the page's proposal slider before a detector suggests a score (pages/annotate.js)
PAGE_MIN_SCORE = 0.3
#: the newest finished images looked at for held-out ones (one in four is held out)
HELD_OUT_LOOKED_AT = 40


class DetectIn(BaseModel):
    # x, y, class id; none: pre-annotation by the project's trained detector alone
    clicks: list[tuple[float, float, int]] = Field(max_length=1000)


class StrokeIn(BaseModel):
    points: list[tuple[float, float]] = Field(max_length=20000)  # x, y in image pixels
    radius: float  # px
    add: bool = True  # the brush; False: the eraser


class SegmentIn(BaseModel):
    box: tuple[float, float, float, float]
    clicks: list[tuple[float, float, bool]] = []  # x, y, positive
    candidate: int = 0  # the candidate mask of the last answer the person switched to (Tab)
    strokes: list[StrokeIn] = Field([], max_length=1000)  # painted over the mask, in order


class SnapIn(BaseModel):
    x: float
    y: float
    class_id: int


def _outside(image: Image) -> str:
    return f"outside the {image.width} x {image.height} image"


def _check_click(image: Image, x: float, y: float, what: str) -> None:
    """400 naming ``what`` (e.g. "click 2 at") unless (x, y) is on one of the image's
    pixels. Pixel (i, j) covers [i, i + 1) x [j, j + 1), so a click at x == width is
    outside a width-pixel image: the page's ``view.inside`` holds clicks to the same rule.
    (A point annotation's geometry may lie on the far edge: ``convert.check_geometry``.)"""
    if not (0 <= x < image.width and 0 <= y < image.height):
        raise HTTPException(400, f"{what} ({x:g}, {y:g}) is {_outside(image)}")


@router.post("/images/{image_id}/detect", response_model=answers.Detected)
async def detect(image_id: int, body: DetectIn, session: DB, config: Config, models: Worker):
    image = store.get(session, Image, image_id, "image")
    serving.image_file(image)
    project = image.project
    classes = ClassMap(project.classes)
    clicks = []
    for i, (x, y, class_id) in enumerate(body.clicks):
        if class_id not in classes:
            raise HTTPException(400, f"click {i}: class id {class_id} is not a class of this project")
        _check_click(image, x, y, f"click {i} at")
        clicks.append([x, y, classes.position(class_id)])
    version = serving_detector(session, project.id)
    # a version whose pick was the training-free start has no network: that start serves
    model = version if version is not None and version.method != "training-free" else None
    if not clicks and model is None:
        raise HTTPException(
            400, "detection without clicks needs a trained detector: click an object, or train the project's"
        )
    # box sizes per class help SAM box a clicked object (the training-free start's clicks,
    # and a trained detector's clicks it leaves unboxed); the look-alikes' cap only the
    # training-free start: a few times the objects a finished image holds
    sizes = queries.class_sizes(session, project.id) if clicks else {}
    most = None if model else queries.most_objects_finished(session, project.id)
    limit = None if most is None else LOOK_ALIKES_PER_OBJECT * most
    names = [c.name for c in project.classes]
    sam = serving.sam_available()
    # the proposals the page shows before the slider is moved are made tight where SAM helps
    thresholds = (version.metrics or {}) if model else {}
    tight_from = min(
        [t for t in thresholds.get("score_thresholds") or [] if t is not None]
        + [thresholds.get("score_threshold") or PAGE_MIN_SCORE]
    )
    result = await models.run(
        worker_detect.detect,
        image.path,
        model.path if model else None,
        names,
        clicks,
        classes.by_position(sizes),
        _sam_image(config, image) if sam else None,
        limit,
        _finished_boxes(session, project) if sam and clicks else None,
        _held_out_keys(session, project) if sam and model else None,
        tight_from,
    )
    trained_for = result.pop("classes")
    if trained_for not in (None, names):
        raise HTTPException(409, _other_classes(model.version, trained_for, names))
    if sam and not clicks:  # the proposals on open: the first click's SAM set up meanwhile
        models.later(worker_detect.ready_for_clicks, image.path, _sam_image(config, image), len(names))
    result["labels"] = classes.ids(result["labels"])
    result["fitted_classes"] = classes.ids(result.get("fitted_classes", []))
    result["tight_classes"] = classes.ids(result.get("tight_classes", []))
    result["model_version"] = version.version if version else None
    # the score threshold of the best F1 on the held-out finished images the pick ran on
    result["min_score"] = (version.metrics or {}).get("score_threshold") if version else None
    # per class, the score from which the background trainer's version left the least work
    # on the held-out finished images (until the slider is moved: then it holds for all)
    per_class = ((version.metrics or {}).get("score_thresholds") if model else None) or []
    result["min_scores"] = classes.by_id(per_class) if per_class else None
    result["look_alike_limit"] = limit
    return result


def _finished_boxes(session, project) -> list:
    """The user's boxes on the recently finished images as the worker learns SAM's click boxes
    against them (:func:`fewclick.server.worker_detect.learn_click_boxes`): classes by position."""
    return _for_worker(project, queries.finished_boxes(session, project.id))


def _held_out_boxes(session, project) -> list:
    """The user's boxes on the recently finished images the background trainer holds out (the
    serving detector never trained on them), as the worker learns on them whether SAM makes
    its proposals tighter (:func:`fewclick.server.worker_detect.learn_tight_boxes`)."""
    held = _held_out_images(session, project)
    return _for_worker(project, [(image, queries.user_boxes(session, image)) for image in held])


def _held_out_keys(session, project) -> list[str]:
    """The embedding keys of :func:`_held_out_boxes`' images (one query: a click's budget)."""
    return [serving.embedding_key(image) for image in _held_out_images(session, project)]


def _held_out_images(session, project) -> list[Image]:
    """The held-out ones among the project's newest finished images with boxes."""
    newest = queries.newest_finished(session, project.id, HELD_OUT_LOOKED_AT)
    return [image for image in newest if held_out(image.id)]


def _for_worker(project, finished: list) -> list:
    """``[embedding key, path, [[class position, x0, y0, x1, y1], ...]]`` per finished image."""
    classes = ClassMap(project.classes)
    out = []
    for image, boxes in finished:
        if Path(image.path).is_file():  # a file gone since: nothing to learn from it
            at = [[classes.position(c), *b] for c, *b in boxes]
            out.append([serving.embedding_key(image), image.path, at])
    return out


def _other_classes(version: int, trained_for: list[str], names: list[str]) -> str:
    """Why the project's detector cannot serve: the classes added or renamed since it trained."""
    new = [n for n in names if n not in trained_for]
    what = (
        f"class{'es' if len(new) > 1 else ''} {', '.join(map(repr, new))} came" if new else "classes changed"
    )
    return (
        f"the project's detector v{version} was trained for classes {trained_for}; {what} after it "
        f"(the project has {names}): train again to detect with it"
    )


def _sam_image(config: Settings, image: Image) -> tuple[str, str]:
    """Where the worker finds (or puts) the image's SAM embedding: (folder, key)."""
    return str(config.embeddings), serving.embedding_key(image)


def _next_image(image: Image) -> Image | None:
    siblings = image.project.images
    i = siblings.index(image)
    return siblings[i + 1] if i + 1 < len(siblings) else None


def _needs_sam(session, image: Image) -> bool:
    """Whether the pretrained encoder serves this image: SAM's masks or point snapping, or
    click-to-detect (the training-free start, or a detector on pretrained features)."""
    if not serving.sam_available():
        return False
    if serving.serving(session, image.project).name in worker_masks.SAMS:
        return True
    detector = serving_detector(session, image.project_id)
    if detector is None or detector.method not in ("scratch", "imagenet"):
        return True
    return newest_model(session, image.project_id, "points") is None


@router.post("/images/{image_id}/prepare", response_model=answers.Prepared)
async def prepare(image_id: int, session: DB, config: Config, models: Worker):
    """Start encoding the image for SAM (and the project's next image after it); says
    whether its embedding is ready. Nothing to prepare when SAM serves nothing here."""
    image = store.get(session, Image, image_id, "image")
    serving.image_file(image)
    project = image.project
    if serving.sam_available():  # SAM's click boxes on the finished images, learnt meanwhile
        sizes = ClassMap(project.classes).by_position(queries.class_sizes(session, project.id))
        finished = _finished_boxes(session, project)
        await models.run(
            worker_detect.learn_click_boxes, str(config.embeddings), len(project.classes), sizes, finished
        )
        version = serving_detector(session, project.id)
        if version is not None and version.method != "training-free":  # tight boxes, learnt meanwhile
            held = _held_out_boxes(session, project)
            await models.run(
                worker_detect.learn_tight_boxes,
                str(config.embeddings),
                version.path,
                len(project.classes),
                held,
            )
    backend = serving.serving(session, project)
    out = {"needs_sam": _needs_sam(session, image), "backend": backend.name, "chosen_by": backend.chosen_by}
    if not out["needs_sam"]:
        return {**out, "ready": True}
    folder, key = _sam_image(config, image)
    items = [(key, image.path)]
    following = _next_image(image)
    if following is not None and Path(following.path).is_file():
        items.append(_sam_image(config, following)[1:] + (following.path,))
    ready = [serving.embedding_ready(config.embeddings, k) for k, _ in items]
    if not all(ready):
        states = await models.run(embeddings.prepare, folder, items)
        if states[0] not in (None, "encoding"):
            # the pretrained files gone: the set-up's fix; else the image itself cannot be read
            status = 409 if states[0].startswith("PretrainedModelError") else 422
            raise HTTPException(status, f"encoding image {image.file_name!r} failed: {states[0]}")
        ready[0] = states[0] is None
    return {**out, "ready": ready[0]}


@router.post(
    "/images/{image_id}/segment", response_model=answers.Segmented, response_model_exclude_unset=True
)
async def segment(image_id: int, body: SegmentIn, session: DB, config: Config, models: Worker):
    image = store.get(session, Image, image_id, "image")
    serving.image_file(image)
    try:
        check_box(body.box, image.width, image.height)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    for i, (x, y, _) in enumerate(body.clicks):
        _check_click(image, x, y, f"click {i} at")
    backend = serving.serving(session, image.project)
    sam = _sam_image(config, image) if backend.name in worker_masks.SAMS else None
    out = await models.run(
        worker_masks.segment,
        image.path,
        sam,
        backend,
        list(body.box),
        [list(c) for c in body.clicks],
        body.candidate,
        [s.model_dump() for s in body.strokes],
    )
    if backend.name == "sam_tuned" and not out.get("note"):  # what the tuned decoder scored, held out
        model = newest_model(session, image.project_id, "segment")
        out["decoder"] = (model.metrics or {}).get("sam_decoder") if model is not None else None
    return out


@router.post("/images/{image_id}/snap", response_model=answers.Snapped)
async def snap(image_id: int, body: SnapIn, session: DB, config: Config, models: Worker):
    image = store.get(session, Image, image_id, "image")
    classes = ClassMap(image.project.classes)
    if body.class_id not in classes:
        raise HTTPException(400, f"class id {body.class_id} is not a class of this project")
    _check_click(image, body.x, body.y, "point")
    serving.image_file(image)
    model = newest_model(session, image.project_id, "points")
    sam = _sam_image(config, image) if model is None and serving.sam_available() else None
    others = [
        [*a.geometry["original"], classes.position(a.class_id)]
        for a in image.annotations
        if a.kind == "point" and not a.reference and a.review != "rejected"
    ]
    click = (body.x, body.y, classes.position(body.class_id))
    return await models.run(worker_masks.snap, image.path, model.path if model else None, sam, click, others)
