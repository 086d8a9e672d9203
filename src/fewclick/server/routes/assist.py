"""The model in the loop: click-to-detect, box-to-mask and point snapping on an image.

The newest model the project trained for the task serves, in the worker process; before
there is one, the worker's training-free method does. Masks come from the project's serving
backend (:mod:`fewclick.server.serving`); SAM's image embedding is computed ahead of the
click (``prepare``), and points snap to SAM's mask centre until a point model is trained.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from fewclick.io.rle import check_rle
from fewclick.predict.segment_api import check_box
from fewclick.server import (
    assisting,
    embeddings,
    serving,
    tiles,
    worker_detect,
    worker_mask_proposals,
    worker_masks,
    worker_proposals,
    worker_sweep,
)
from fewclick.server.db import Image
from fewclick.server.deps import DB, Config, Worker
from fewclick.server.storage import rows
from fewclick.server.storage.versions import newest_model
from fewclick.wire import answers
from fewclick.wire.codec import ClassMap

router = APIRouter(prefix="/api")


class DetectIn(BaseModel):
    # x, y, class id; none: pre-annotation by the project's trained detector alone
    clicks: list[tuple[float, float, int]] = Field(max_length=1000)
    # x0, y0, x1, y1, class id: proposals the person rejected (negative exemplars)
    rejected: list[tuple[float, float, float, float, int]] = Field(default=[], max_length=5000)


class SweepIn(BaseModel):
    clicks: list[tuple[float, float, int]] = Field(max_length=1000)  # as DetectIn's
    view: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 on the screen: swept first


class StrokeIn(BaseModel):
    points: list[tuple[float, float]] = Field(max_length=20000)  # x, y in image pixels
    radius: float  # px
    add: bool = True  # the brush; False: the eraser


class UnderIn(BaseModel):
    mask: dict[str, Any]  # COCO RLE: {"size": [h, w], "counts": str or [int]}
    score: float = 0.0


class SegmentIn(BaseModel):
    # None: the clicks alone prompt SAM (a positive first click starts the mask)
    box: tuple[float, float, float, float] | None = None
    clicks: list[tuple[float, float, bool]] = []  # x, y, positive
    candidate: int = 0  # the candidate mask of the last answer the person switched to (Tab)
    strokes: list[StrokeIn] = Field([], max_length=1000)  # painted over the mask, in order
    # the candidate the strokes paint over, as the page shows it (so they never land on an
    # answer the server had to make again): its COCO RLE of the image's size, and its score
    under: UnderIn | None = None


class SnapIn(BaseModel):
    x: float
    y: float
    class_id: int


@router.post("/images/{image_id}/detect", response_model=answers.Detected)
async def detect(image_id: int, body: DetectIn, session: DB, config: Config, models: Worker):
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    call = assisting.detect_call(session, config, image, body.clicks, body.rejected)
    result = await models.run(worker_detect.detect, *call.args)
    assisting.note_failures(session, call, result.get("failed", []))
    answer = assisting.detect_answer(call, result)
    if call.ready_for_clicks is not None:
        models.later(worker_detect.ready_for_clicks, *call.ready_for_clicks)
    return answer


@router.post("/images/{image_id}/lookalikes", response_model=answers.Swept, status_code=202)
async def start_sweep(image_id: int, body: SweepIn, session: DB, config: Config, models: Worker):
    """Detect the rest of a large image in the background (:mod:`fewclick.server.worker_sweep`):
    the look-alikes of the clicked objects, or the trained detector's proposals, window by
    window, those in ``view`` first; the same sweep again when it looks for the same."""
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    args, classes = assisting.sweep_call(session, config, image, body.clicks, body.view)
    return _swept(await models.run(worker_sweep.start_sweep, *args), classes)


@router.get("/images/{image_id}/lookalikes", response_model=answers.Swept)
async def sweep_status(image_id: int, session: DB, config: Config, models: Worker):
    """The image's sweep: its progress and the boxes found so far. 404 when none runs or ran
    for it since the worker started (another image's sweep replaces it)."""
    image = rows.get(session, Image, image_id, "image")
    found = await models.run(worker_sweep.sweep_status, assisting.sam_image(config, image)[1])
    if found is None:
        raise HTTPException(
            404, f"no look-alikes sweep of image {image_id}: click on it in Detect mode first"
        )
    return _swept(found, ClassMap(image.project.classes))


@router.delete("/images/{image_id}/lookalikes", response_model=answers.Swept)
async def stop_sweep(image_id: int, session: DB, config: Config, models: Worker):
    """Stop the image's sweep at its next window; the boxes found so far stay readable."""
    image = rows.get(session, Image, image_id, "image")
    key = assisting.sam_image(config, image)[1]
    await models.run(worker_sweep.stop_sweep, key)
    found = await models.run(worker_sweep.sweep_status, key)
    if found is None:
        raise HTTPException(404, f"no look-alikes sweep of image {image_id}")
    return _swept(found, ClassMap(image.project.classes))


def _swept(found: dict, classes: ClassMap) -> dict:
    return {**found, "labels": classes.ids(found["labels"])}


@router.post("/images/{image_id}/prepare", response_model=answers.Prepared)
async def prepare(image_id: int, session: DB, config: Config, models: Worker):
    """Start encoding the image for SAM (and the project's next image after it); says
    whether its embedding is ready. Nothing to prepare when SAM serves nothing here. While
    the training-free start serves click-to-detect, SAM's proposals of the image and of the
    next few are made after the embeddings; ``proposals`` says where the open image's are ("ready",
    "making", or why the last try failed) and, while they are made, how many of its windows
    are done (``proposals_done`` of ``proposals_windows``)."""
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    for fn, *args in assisting.learning_calls(session, config, image.project):  # learnt meanwhile
        await models.run(fn, *args)
    out = assisting.sam_needs(session, image)
    if not out["needs_sam"] or tiles.is_large(image.width, image.height):
        return {**out, "ready": True}  # a large image is never encoded whole: its windows on demand
    folder, items = assisting.encoding_items(config, image)
    ready = [serving.embedding_ready(config.embeddings, k) for k, _ in items]
    if not all(ready):
        states = await models.run(embeddings.prepare, folder, items)
        assisting.check_encoding(image, states[0])
        ready[0] = states[0] is None
    if assisting.proposes(session, image):  # made after the embeddings, on a thread of their own
        ahead = assisting.proposal_items(config, image)
        out.update(await models.run(worker_proposals.prepare_open, folder, ahead))
    return {**out, "ready": ready[0]}


@router.post("/images/{image_id}/mask_proposals", response_model=answers.MaskProposals)
async def mask_proposals(image_id: int, session: DB, config: Config, models: Worker):
    """Mask mode on open (issue 54): SAM's proposals of the image like the objects of the
    project's finished images, each with its mask, for Enter to save at once
    (:func:`fewclick.server.worker_mask_proposals.mask_look_alikes`). Not asked of SAM: read from
    the proposals made ahead (``prepare``); "making" starts them when nothing did."""
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    out = {"state": "none"}
    if not assisting.proposes(session, image):
        if not serving.sam_available():
            return {**out, "note": "no proposals: SAM's pretrained files are not installed (make models)"}
        why = "a large image" if tiles.is_large(image.width, image.height) else "a trained detector serves"
        return {**out, "note": f"no proposals on open here: {why} (its proposals come in Detect mode)"}
    finished = assisting.finished_boxes(session, image.project)
    if not finished:
        return {**out, "note": "finish an image first: its objects pick the proposals like them"}
    folder, key = assisting.sam_image(config, image)
    found = await models.run(worker_mask_proposals.mask_look_alikes, folder, key, finished)
    if found is None:
        state = (await models.run(worker_proposals.prepare, folder, [(key, image.path)]))[0]
        return {**out, "state": "making" if state in ("making", "ready") else "none", "note": state}
    if found["state"] == "learning":  # the page asks again, as while they are made
        return {
            **out,
            "state": "making",
            "note": "the finished images' proposals are being made to learn from",
        }
    classes = ClassMap(image.project.classes)
    least = found.pop("min_scores")
    return {
        **out,
        **found,
        "labels": classes.ids(found["labels"]),
        "min_scores": classes.by_id([least.get(p) for p in range(max(least, default=-1) + 1)]),
    }


@router.post(
    "/images/{image_id}/segment", response_model=answers.Segmented, response_model_exclude_unset=True
)
async def segment(image_id: int, body: SegmentIn, session: DB, config: Config, models: Worker):
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    try:
        if body.box is not None:
            check_box(body.box, image.width, image.height)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    for i, (x, y, _) in enumerate(body.clicks):
        assisting.check_click(image, x, y, f"click {i} at")
    backend = serving.serving(session, image.project)
    sam = assisting.sam_image(config, image) if backend.name in worker_masks.SAMS else None
    large = assisting.large_image(config, image)
    if body.box is None:
        _check_click_start(body.clicks, large)
    under = None
    if body.under is not None and body.strokes and large is None:  # a large image's masks are its windows'
        try:
            under = {"mask": check_rle(body.under.mask, image.height, image.width), "score": body.under.score}
        except ValueError as exc:
            raise HTTPException(400, f"the mask under the strokes: {exc}") from None
    out = await models.run(
        worker_masks.segment,
        image.path,
        sam,
        backend,
        None if body.box is None else list(body.box),
        [list(c) for c in body.clicks],
        body.candidate,
        [s.model_dump() for s in body.strokes],
        large,
        image.project_id,
        under,
    )
    if backend.name == "sam_tuned" and not out.get("note"):  # what the tuned decoder scored, held out
        model = newest_model(session, image.project_id, "segment")
        out["decoder"] = (model.metrics or {}).get("sam_decoder") if model is not None else None
    return out


def _check_click_start(clicks: list, large) -> None:
    """A mask without a box starts from a positive first click, on an image encoded whole."""
    if not clicks or not clicks[0][2]:
        raise HTTPException(
            400, "a mask starts from a box or from a positive click on the object: neither was sent"
        )
    if large is not None:
        raise HTTPException(400, "on a large image a mask starts from a box: drag one around the object")


@router.post("/images/{image_id}/snap", response_model=answers.Snapped, response_model_exclude_none=True)
async def snap(image_id: int, body: SnapIn, session: DB, config: Config, models: Worker):
    image = rows.get(session, Image, image_id, "image")
    classes = ClassMap(image.project.classes)
    if body.class_id not in classes:
        raise HTTPException(400, f"class id {body.class_id} is not a class of this project")
    assisting.check_click(image, body.x, body.y, "point")
    serving.image_file(image)
    model = newest_model(session, image.project_id, "points")
    sam = assisting.sam_image(config, image) if serving.sam_available() else None  # CPR falls back to it
    others = [
        [*a.geometry["original"], classes.position(a.class_id)]
        for a in image.annotations
        if a.kind == "point" and not a.reference and a.review != "rejected"
    ]
    click = (body.x, body.y, classes.position(body.class_id))
    large = assisting.large_image(config, image)
    return await models.run(
        worker_masks.snap, image.path, model.path if model else None, sam, click, others, large
    )
