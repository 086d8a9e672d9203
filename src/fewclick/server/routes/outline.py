"""A mask as an editable outline (``POST /api/images/{id}/outline``): the page sends the
mask it shows (SAM's answer, the brushed one, or a saved mask) and gets back its outline
of few vertices, made by the same function the simulated annotator uses
(:func:`fewclick.outline.editable_outline`). Nothing is saved here: the page fills the
edited outline and saves the mask through the annotations routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from fewclick.io.rle import segmentation_window
from fewclick.outline import editable_outline
from fewclick.server.db import Image
from fewclick.server.deps import DB
from fewclick.server.storage import rows
from fewclick.wire import answers
from fewclick.wire.codec import outline_answer

router = APIRouter(prefix="/api")


class OutlineIn(BaseModel):
    mask: dict[str, Any]  # COCO RLE of the image's size: {"size": [h, w], "counts": str or [int]}


# a plain def: FastAPI runs it on its thread pool, so a large mask's tracing never holds
# the event loop (and the clicks of other people) up
@router.post("/images/{image_id}/outline", response_model=answers.Outline)
def outline(image_id: int, body: OutlineIn, session: DB):
    """The mask's rings ``[{"points": [[x, y], ...], "hole"}]`` in image pixels (pixel
    edges); a 400 naming the problem for an RLE that is not one of this image, or an empty
    mask. Only the mask's box is decoded (a large image's mask is never made whole)."""
    image = rows.get(session, Image, image_id, "image")
    try:
        window, offset = segmentation_window(body.mask, image.height, image.width)
    except ValueError as exc:
        raise HTTPException(400, f"cannot outline this mask: {exc}") from None
    if not window.any():
        raise HTTPException(400, "cannot outline this mask: it is empty")
    return outline_answer(editable_outline(window), offset)
