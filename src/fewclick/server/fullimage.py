"""Full-image segmentation in the app: every region of an image from its 4 extreme points and
its scribbles, all regions at once, every pixel given to exactly one region.

A request holds the regions as plain data: per region ``extreme``, 4 points ``[x, y]`` in
any order, and ``scribbles``, polylines ``[[x, y], ...]`` that extend it (image pixels).
:func:`check_regions` says what is wrong with one (a ``ValueError`` naming the region, the
scribble or the point; the route answers 422), :func:`region_prompts` turns it into
:class:`~fewclick.models.fullimage.RegionPrompt` s, and :func:`fullimage_predictor` is the
one place that decides which predictor serves.

What counts as bad input, and what happens to the edge cases:

- Fewer or more than 4 extreme points: refused. Points that span less than 1 pixel across
  or down (all on one horizontal or vertical line) have no box: refused. Points on one
  slanted line do have a box (a thin diagonal object) and are accepted.
- Two regions with the same box are both kept: their extreme points and scribbles tell
  them apart. Two regions with the same 4 extreme points (to within half a pixel) cannot
  be told apart, so the request is refused, naming both.
- A scribble of fewer than 2 points or shorter than 1 pixel is refused (zero length), and
  so is one that starts outside every region's box (it belongs to no region).
- A region marked ``background`` is the pixels no other region claims (its extreme
  points on the image's edges give it the whole image's box): without one, every pixel
  goes to the nearest object, and a few objects of one class split the image into strips.
- A region the others cover entirely is answered with area 0 (nothing is refused: a
  scribble can bring it back); the page does not save it.
- At most :data:`MAX_REGIONS` regions, :data:`MAX_SCRIBBLES` scribbles and
  :data:`MAX_SCRIBBLE_POINTS` points a scribble per request, on images of at most
  :data:`MAX_PIXELS` pixels. Coordinates are finite and inside the image (``0 <= x <
  width``, ``0 <= y < height``).
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np

MAX_REGIONS = 500
MAX_SCRIBBLES = 2000
MAX_SCRIBBLE_POINTS = 10_000
MAX_PIXELS = 25_000_000  # 5000 x 5000: a region's logits at every pixel, for every region


def fullimage_predictor(sam=None, model: str | None = None):
    """The full-image predictor the app serves: the trained full-image model in ``model``
    (a file of ``fewclick train fullimage``; the app serves ``DATA/models/fullimage.pt``
    when it exists), else ``SamCompete`` on ``sam`` (a SAM predictor that already holds the
    image's embedding, see :class:`EmbeddedSam`), or ``BoxFill`` when the SAM files are not
    set up (``sam`` None). A predictor needs ``set_image(image)`` and ``predict(prompts) ->
    int32[H, W]``; the trained model recomputes only the regions whose input changed."""
    from fewclick.predict.fullimage import BoxFill, FullImageModel, SamCompete

    if model is not None:
        encoder = None if sam is None else getattr(sam, "sam", sam).encoder
        return FullImageModel.load(model, encoder, sam)
    return BoxFill() if sam is None else SamCompete(sam)


def method_name(predictor) -> str:
    """The name the answer gives for ``predictor``: its ``name``, else its class name in
    snake case (``SamCompete`` -> ``sam_compete``)."""
    name = getattr(predictor, "name", None)
    return (
        name if isinstance(name, str) else re.sub(r"(?<!^)(?=[A-Z])", "_", type(predictor).__name__).lower()
    )


class EmbeddedSam:
    """A SAM predictor and the image's prepared ``embedding``: ``set_image(image)`` takes
    the embedding instead of encoding again (seconds), after checking it is of an image of
    this size; everything else is the SAM predictor's own. The worker keeps the shared SAM
    predictor on the image while a full-image request runs (``worker_masks._sam``)."""

    def __init__(self, sam, embedding) -> None:
        self.sam = sam
        self.embedding = embedding

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        if tuple(self.embedding.image_size) != tuple(image.shape[:2]):
            raise RuntimeError(
                f"the prepared embedding is of a {tuple(self.embedding.image_size)} image, "
                f"not of this {image.shape[:2]} one"
            )
        self.sam.set_embedding(self.embedding)

    def __getattr__(self, name: str):
        return getattr(self.sam, name)


def prompt_points(regions: list[dict]) -> list:
    """Every extreme point and scribble point of ``regions``: what a large image's window
    must hold (:func:`fewclick.predict.windows.fullimage_window`)."""
    return [p for r in regions for p in [*r["extreme"], *(q for s in r["scribbles"] for q in s)]]


def check_regions(
    regions: list[dict], changed: list[int] | None, width: int, height: int, windowed: bool = False
) -> None:
    """ValueError naming what is wrong with a request's ``regions`` (see the module) and
    ``changed`` (indices of regions, each once) on a ``width`` x ``height`` image. A
    ``windowed`` image (a large one, segmented on the window its prompts span, which
    :func:`fewclick.predict.windows.fullimage_window` bounds) has no pixel limit."""
    if width * height > MAX_PIXELS and not windowed:
        raise ValueError(
            f"the image is {width} x {height} = {width * height} pixels; full-image segmentation "
            f"takes images of at most {MAX_PIXELS} pixels"
        )
    if not regions:
        raise ValueError("expected at least one region, got none")
    if len(regions) > MAX_REGIONS:
        raise ValueError(f"{len(regions)} regions: at most {MAX_REGIONS} are segmented in one request")
    scribbles = sum(len(r.get("scribbles", [])) for r in regions)
    if scribbles > MAX_SCRIBBLES:
        raise ValueError(f"{scribbles} scribbles: at most {MAX_SCRIBBLES} are taken in one request")
    boxes = [_check_extreme(i, r["extreme"], width, height) for i, r in enumerate(regions)]
    seen: dict[tuple, int] = {}
    for i, r in enumerate(regions):
        points = tuple(sorted((round(2 * x) / 2, round(2 * y) / 2) for x, y in r["extreme"]))
        if points in seen:
            raise ValueError(
                f"region {i} has the same extreme points as region {seen[points]}: one of the two "
                "could get no pixels; delete one of them"
            )
        seen[points] = i
    for i, r in enumerate(regions):
        for j, scribble in enumerate(r.get("scribbles", [])):
            _check_scribble(f"region {i}, scribble {j}", scribble, boxes, width, height)
    if changed is not None:
        for k in changed:
            if not 0 <= k < len(regions):
                raise ValueError(f"changed holds {k}, not a region index (0 to {len(regions) - 1})")
        if len(set(changed)) != len(changed):
            raise ValueError(f"changed names a region twice: {changed}")


def _check_extreme(i: int, points: list, width: int, height: int) -> tuple[float, float, float, float]:
    """The half-open box of region ``i``'s extreme points, as RegionPrompt.box has it."""
    if len(points) != 4:
        raise ValueError(
            f"region {i}: expected 4 extreme points (the left-, right-, top- and bottom-most), "
            f"got {len(points)}"
        )
    for j, point in enumerate(points):
        _check_point(f"region {i}: extreme point {j}", point, width, height)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    across, down = max(xs) - min(xs), max(ys) - min(ys)
    if across < 1 or down < 1:
        raise ValueError(
            f"region {i}: the extreme points do not form a box: they span {across:g} px across and "
            f"{down:g} px down (all on one line); give the left-, right-, top- and bottom-most points"
        )
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _check_scribble(what: str, scribble: list, boxes: list[tuple], width: int, height: int) -> None:
    if len(scribble) > MAX_SCRIBBLE_POINTS:
        raise ValueError(f"{what} has {len(scribble)} points; at most {MAX_SCRIBBLE_POINTS} are taken")
    for k, point in enumerate(scribble):
        _check_point(f"{what}: point {k}", point, width, height)
    length = sum(math.dist(a, b) for a, b in itertools.pairwise(scribble))
    if len(scribble) < 2 or length < 1:
        raise ValueError(
            f"{what} has zero length ({len(scribble)} points, {length:.1f} px long): "
            "drag from inside the region into the pixels it should take"
        )
    x, y = scribble[0]
    if not any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in boxes):
        raise ValueError(
            f"{what} starts at ({x:g}, {y:g}), outside every region's box: a scribble starts "
            "inside the region it extends"
        )


def _check_point(what: str, point, width: int, height: int) -> None:
    x, y = point
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{what} at ({x}, {y}) is not finite")
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"{what} at ({x:g}, {y:g}) is outside the {width} x {height} image")


def order_extreme(points) -> np.ndarray:
    """4 extreme points in any order -> ``float32[4, 2]`` (x, y) in ExtremePoints' order:
    left-, top-, right-, bottom-most. Of the 24 orders, the one whose points lie nearest to
    the box's sides they stand for (a point on a corner can serve either side)."""
    pts = np.asarray(points, np.float64).reshape(4, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)

    def cost(order):
        left, top, right, bottom = (pts[k] for k in order)
        return (left[0] - x0) + (top[1] - y0) + (x1 - right[0]) + (y1 - bottom[1])

    best = min(itertools.permutations(range(4)), key=cost)
    return pts[list(best)].astype(np.float32)


def region_prompts(regions: list[dict]) -> list:
    """The checked request's regions as ``RegionPrompt`` s (each scribble's ``region`` is
    the index of the region it extends)."""
    from fewclick.models.fullimage import RegionPrompt
    from fewclick.types import ExtremePoints, Scribble

    return [
        RegionPrompt(
            ExtremePoints(order_extreme(r["extreme"])),
            [Scribble(np.asarray(s, np.float32), region=i) for s in r.get("scribbles", [])],
            background=bool(r.get("background", False)),
        )
        for i, r in enumerate(regions)
    ]
