"""Full-image segmentation of an image: every region from its 4 extreme points and its
scribbles, all regions at once (:mod:`fewclick.server.fullimage` says what is refused and
why), computed in the worker process. Nothing is saved here: the page saves the regions
it accepts as mask annotations through the annotations routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from fewclick.predict.windows import fullimage_window
from fewclick.server import assisting, serving, worker_masks
from fewclick.server.db import Image
from fewclick.server.deps import DB, Config, Worker
from fewclick.server.fullimage import check_regions, prompt_points
from fewclick.server.storage import rows
from fewclick.wire import answers

router = APIRouter(prefix="/api")

FULLIMAGE_MODEL = "fullimage.pt"  # a model of `fewclick train fullimage` in DATA/models serves when present

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]  # x, y in image pixels


class RegionIn(BaseModel):
    extreme: list[Point]  # the left-, right-, top- and bottom-most points, in any order
    scribbles: list[list[Point]] = []  # polylines that extend this region
    background: bool = False  # the pixels no other region claims (the page does not save it)


class FullImageIn(BaseModel):
    regions: list[RegionIn]
    # the regions whose prompts changed since the last request on this image; None: all
    changed: list[int] | None = None


@router.post("/images/{image_id}/fullimage", response_model=answers.FullImage)
async def fullimage(image_id: int, body: FullImageIn, session: DB, config: Config, models: Worker):
    """``{"regions": [{"index", "rle", "area"}], "method", "ms"}``: per region its mask as
    COCO RLE (as the segment route gives masks) and its area in pixels; 422 naming the
    region, scribble or point when the request is bad."""
    image = rows.get(session, Image, image_id, "image")
    serving.image_file(image)
    regions = [
        {
            "extreme": [list(p) for p in r.extreme],
            "scribbles": [[list(p) for p in s] for s in r.scribbles],
            "background": r.background,
        }
        for r in body.regions
    ]
    large = assisting.large_image(config, image)
    try:
        check_regions(regions, body.changed, image.width, image.height, windowed=large is not None)
        if large is not None:  # the window the prompts span: refused here when too large
            fullimage_window(prompt_points(regions), image.width, image.height)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    sam = (str(config.embeddings), serving.embedding_key(image)) if serving.sam_available() else None
    trained = config.models_dir / FULLIMAGE_MODEL
    model = str(trained) if trained.is_file() else None
    return await models.run(worker_masks.fullimage, image.path, sam, regions, body.changed, model, large)
