"""The simulated annotator of an annotation campaign (``benchmarks/campaign.py``): what a
person does to bring an image to manual quality, and what that costs.

Manual quality, detect mode: every required object (every ground-truth object but
ignore-type ones: hit_uav's DontCare, COCO's crowd) is matched one-to-one by a box of its
class at IoU >= :data:`MATCH_IOU`, and no other box is left; a box on an ignore-type object
(IoU >= :data:`IGNORE_IOU`) is neither required nor a false positive. Mask mode: every
required object has a mask of its class at mask IoU >= :data:`MASK_IOU`; an object that
corrective clicks do not bring there is finished with the brush (:mod:`fewclick.simulate.brush`)
or drawn as a polygon (:func:`polygon_outlines`, closed by Enter), whichever the cost model
prices lower for what is left. Clicks stop there after :data:`MAX_MASK_CLICKS`, or as soon
as :data:`STALL_RUN` clicks in a row each gained under :data:`STALL_GAIN` of IoU
(:func:`clicks_stalled`).

Every physical action is one interaction, counted the same way for us and the baselines,
and logged as one event of the app's interaction log (so the app's analytics count it):

- ``click``: a click on an object (click-to-detect), or a click that selects a box;
- ``class change``: a class key, only when the class changes;
- ``threshold``: a move of the proposal slider (which proposals show);
- ``accept``: Enter, accepting the proposals shown;
- ``delete``: the Delete key on a selected box;
- ``reject``: a right-click on a proposal not accepted yet, which drops it alone;
- ``edit``: a drag that fixes a box;
- ``draw``: a drag that draws a box;
- ``vertex``: a polygon's vertex, clicked;
- ``tab``: Tab, to SAM's next candidate mask;
- ``stroke``: a brush or eraser stroke, priced by its length and turns
  (:func:`~fewclick.simulate.brush.stroke_seconds`);
- ``brush``: a key that picks the brush or the eraser, or changes its size;
- ``fit``: E, which moves a class's proposals by the edges of the box drawn over one of them
  (:func:`edge_fit`).

:data:`COST_SECONDS` prices each (sources beside them); accepting also costs a look at each
proposal accepted (``verify``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fewclick.extras import require
from fewclick.metrics.detection import KEPT_IOU, box_iou
from fewclick.types import Objects

MATCH_IOU = KEPT_IOU  # a box of the object's class this close is the object (manual quality)
NEAR_IOU = 0.3  # a leftover box this close to a missed object is dragged onto it, not deleted
IGNORE_IOU = 0.5  # a box this close to an ignore-type object is neither required nor wrong
MIN_SIDE = 1.0  # image pixels: a box narrower or lower than this cannot be drawn, nor saved
MASK_IOU = 0.85  # a mask this close to its object is the object (mask mode's manual quality)
MAX_MASK_CLICKS = 20  # corrective clicks on one mask before it is finished another way
STALL_GAIN = 0.01  # a corrective click that gains less IoU than this did not help...
STALL_RUN = 2  # ...and after this many such clicks in a row the annotator stops clicking
COCO_POLYGON_SECONDS = 79.2  # COCO's measured time per polygon object (Lin et al., ECCV 2014)

#: seconds per action; the Keystroke-Level Model (Card, Moran and Newell, 1980): K (key)
#: 0.28 s, P (point) 1.1 s, B (button) 0.1 s, M (mental preparation) 1.35 s
COST_SECONDS = {
    "click": 2.55,  # M + P + B: decide, point at the object, press
    "class change": 1.63,  # M + K
    "threshold": 2.55,  # M + P + B: the proposal slider dragged
    "accept": 1.63,  # M + K (Enter), plus "verify" per proposal accepted
    "verify": 1.6,  # a box looked at and judged right (Papadopoulos et al., CVPR 2016)
    "delete": 0.28,  # K, after the click that selected the box
    "reject": 2.55,  # M + P + B: a right-click on a proposal
    "edit": 7.0,  # a box dragged tight, at extreme clicking's 7.0 s (Papadopoulos et al., ICCV 2017)
    "draw": 7.0,  # the same, for a new box
    "vertex": 1.0,  # a polygon's vertex: COCO's polygons took 79 s an object (Lin et al., 2014)
    "tab": 1.63,  # M + K: a candidate mask looked at, Tab pressed
    "stroke": 2.65,  # M + P + B + B, plus D for the drag (simulate.brush.stroke_seconds)
    "brush": 1.63,  # M + K: the brush, the eraser or a brush size picked
    "fit": 1.63,  # M + K: E, a class's proposals moved by the edges of a box drawn over one
    "take": 2.55,  # M + P + B: mask mode, a click on a proposal saves its mask
    "hide": 1.63,  # M + K: mask mode, Esc hides the proposals left
}
COST_SOURCES = {
    "click": "KLM M + P + B (Card, Moran and Newell 1980)",
    "class change": "KLM M + K",
    "threshold": "KLM M + P + B (the proposal slider dragged)",
    "accept": "KLM M + K, plus a verification per proposal accepted",
    "verify": "box verification, 1.6 s (Papadopoulos et al., CVPR 2016)",
    "delete": "KLM K (after a selecting click)",
    "reject": "KLM M + P + B (a right-click on the proposal)",
    "edit": "a tight box, 7.0 s as by extreme clicking (Papadopoulos et al., ICCV 2017; "
    "about 35 s drawn the usual way)",
    "draw": "as edit",
    "vertex": "about 1 s a vertex (COCO's polygons: 79.2 s an object, Lin et al., ECCV 2014)",
    "tab": "KLM M + K",
    "stroke": "KLM M + P + B + D + B, D = 0.9 s a straight segment + 0.16 s a cm at 96 dpi "
    "(Card, Moran and Newell 1980)",
    "brush": "KLM M + K",
    "fit": "KLM M + K",
    "take": "KLM M + P + B (a click on a proposal)",
    "hide": "KLM M + K (Esc)",
}


@dataclass
class Action:
    """One interaction: ``kind`` (an event action above), the annotation it concerns (index
    into the accepted boxes, or None), and for ``edit`` / ``draw`` / ``class change`` the
    box and class it leaves."""

    kind: str
    index: int | None = None
    box: list[float] | None = None
    class_index: int | None = None


@dataclass
class Plan:
    """The actions that finish an image from its accepted boxes, in order."""

    actions: list[Action] = field(default_factory=list)

    @property
    def interactions(self) -> int:
        return len(self.actions)

    @property
    def fixes_proposals(self) -> bool:
        """Whether an action changes an accepted box other than by drawing over it (a delete,
        a class change of one): on the page the proposals are accepted first (Enter) for
        that. An edit is a box drawn over the proposal, which takes its place (a drag in
        detect mode), and a reject drops one before they are accepted; what is missing is
        drawn beside them; the submit keeps them."""
        return any(a.index is not None and a.kind not in ("edit", "reject") for a in self.actions)

    def seconds(self, verified: int = 0) -> float:
        return sum(COST_SECONDS[a.kind] for a in self.actions) + verified * COST_SECONDS["verify"]


def required(gt: Objects) -> np.ndarray:
    """``bool[N]``: the ground-truth objects manual quality requires: not ignore-type, and a
    box at least :data:`MIN_SIDE` wide and tall (a person cannot draw a box of no width, and
    the app refuses one: DOTA's P1478 tile holds two objects whose corners enclose no area)."""
    boxes = np.asarray(gt.boxes, np.float32).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        drawable = (boxes[:, 2] - boxes[:, 0] >= MIN_SIDE) & (boxes[:, 3] - boxes[:, 1] >= MIN_SIDE)
    return ~np.asarray(gt.ignore, bool) & np.isfinite(boxes).all(1) & drawable


def match(gt: Objects, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``int64[M]``: for each box, the required object it matches one-to-one (its class, IoU
    >= :data:`MATCH_IOU`, greedily by IoU), -1 for none."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    out = np.full(len(boxes), -1, np.int64)
    need = np.flatnonzero(required(gt))
    if not len(boxes) or not len(need):
        return out
    iou = box_iou(boxes, gt.boxes[need])
    iou[labels[:, None] != gt.labels[need][None, :]] = 0
    taken = np.zeros(len(need), bool)
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < MATCH_IOU:
            break
        if out[i] < 0 and not taken[j]:
            out[i], taken[j] = need[j], True
    return out


def missed(gt: Objects, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of the required objects no box matches."""
    hit = set(match(gt, boxes, labels).tolist())
    return np.array([j for j in np.flatnonzero(required(gt)) if j not in hit], np.int64)


def on_ignore(gt: Objects, boxes: np.ndarray) -> np.ndarray:
    """``bool[M]``: boxes on an ignore-type object (neither required nor false positives)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    ignored = np.asarray(gt.ignore, bool) & np.isfinite(gt.boxes).all(1)
    if not len(boxes) or not ignored.any():
        return np.zeros(len(boxes), bool)
    return box_iou(boxes, gt.boxes[ignored]).max(1) >= IGNORE_IOU


def finish(gt: Objects, boxes: np.ndarray, labels: np.ndarray, current_class: int | None) -> Plan:
    """What finishes the image from the boxes it holds (``boxes`` / ``labels``, class
    indices): a leftover box near a missed object has the object's box drawn over it, in the
    object's class (a class key first when another is picked), a wrong-class box on an
    object gets its class, the other leftovers are rejected (a right-click on each, before
    they are accepted), and what is still
    missing is drawn, grouped by class from ``current_class`` on (a class key only when the
    class changes)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    matched = match(gt, boxes, labels)
    plan = Plan()
    left = list(np.flatnonzero((matched < 0) & ~on_ignore(gt, boxes)))
    todo = list(missed(gt, boxes, labels))
    cls = current_class
    for j in list(todo):  # leftovers near a missed object become it
        if not left:
            break
        iou = box_iou(gt.boxes[j : j + 1], boxes[left])[0]
        k = int(np.argmax(iou))
        if iou[k] < NEAR_IOU:
            continue
        i = left.pop(k)
        todo.remove(j)
        target = int(gt.labels[j])
        if iou[k] < MATCH_IOU:  # drawn over, with the object's class picked
            if target != cls:
                plan.actions.append(Action("class change", class_index=target))
                cls = target
            plan.actions.append(Action("edit", int(i), gt.boxes[j].tolist(), target))
            continue
        plan.actions.append(Action("click", int(i)))  # select it
        if target != labels[i]:
            plan.actions.append(Action("class change", int(i), class_index=target))
            cls = target
    for i in left:
        plan.actions.append(Action("reject", int(i)))
    draws = sorted(todo, key=lambda j: (int(gt.labels[j]) != cls, int(gt.labels[j])))
    for j in draws:
        if int(gt.labels[j]) != cls:
            cls = int(gt.labels[j])
            plan.actions.append(Action("class change", class_index=cls))
        plan.actions.append(Action("draw", box=gt.boxes[j].tolist(), class_index=cls))
    return plan


def apply(plan: Plan, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boxes and labels the image holds once ``plan`` is carried out on them."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    labels = np.asarray(labels, np.int64).reshape(-1).copy()
    keep = np.ones(len(boxes), bool)
    new_boxes, new_labels = [], []
    for a in plan.actions:
        if a.kind == "edit":
            boxes[a.index], labels[a.index] = a.box, a.class_index
        elif a.kind in ("delete", "reject"):
            keep[a.index] = False
        elif a.kind == "class change" and a.index is not None:
            labels[a.index] = a.class_index
        elif a.kind == "draw":
            new_boxes.append(a.box)
            new_labels.append(a.class_index)
    return (
        np.concatenate([boxes[keep], np.asarray(new_boxes, np.float32).reshape(-1, 4)]),
        np.concatenate([labels[keep], np.asarray(new_labels, np.int64)]),
    )


def polygon_outlines(mask: np.ndarray, segmentation=None) -> list[np.ndarray]:
    """The polygons a person clicks to outline ``mask``, one ``float64[K, 2]`` ring (x, y) a
    part: the object's own polygons when ``segmentation`` holds them (COCO's), else its outer
    contours (OpenCV, through the edge pixels' centres, moved half a pixel out onto the
    object's edge by shapely's mitred buffer). Simplified at 1 pixel (Douglas-Peucker), or
    at 0.5 or not at all where that is what brings the filled outline to :data:`MASK_IOU`
    (a person clicks as many vertices as manual quality takes)."""
    from fewclick.io.rle import polygons_to_mask

    cv2 = require("cv2", "outlining a mask as polygons")

    if isinstance(segmentation, list):
        parts = [np.asarray(p, np.float32).reshape(-1, 2) for p in segmentation]
        parts, shift = [p for p in parts if len(p) >= 3], 0.0
    else:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        parts, shift = [c.reshape(-1, 2).astype(np.float32) for c in contours], 0.5
    rings: list[np.ndarray] = []
    for tolerance in (1.0, 0.5, 0.0):
        rings = [_ring(p, tolerance, shift) for p in parts]
        if not parts or mask_iou(polygons_to_mask(rings, *mask.shape), mask) >= MASK_IOU:
            break
    return rings


def _ring(points: np.ndarray, tolerance: float, shift: float) -> np.ndarray:
    """``points`` simplified at ``tolerance`` pixels; with ``shift`` (a raster contour through
    pixel centres) moved that far out, keeping its vertices."""
    from shapely.geometry import Polygon

    cv2 = require("cv2", "simplifying an outline")
    simple = cv2.approxPolyDP(points.reshape(-1, 1, 2), tolerance, True).reshape(-1, 2).astype(np.float64)
    if not shift:
        return simple if len(simple) >= 3 else points.astype(np.float64)
    centres = simple + shift
    if len(centres) < 3:  # a line of pixels: its rectangle
        (x0, y0), (x1, y1) = centres.min(0) - shift, centres.max(0) + shift
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    edge = Polygon(centres).buffer(shift, join_style="mitre")
    if edge.geom_type != "Polygon":  # a contour that touches itself: its largest part
        edge = max(edge.geoms, key=lambda g: g.area)
    return np.asarray(edge.exterior.coords)[:-1]


def polygon_vertices(mask: np.ndarray, segmentation=None) -> int:
    """The vertices a person clicks to outline ``mask`` (:func:`polygon_outlines`), at least 3
    a polygon."""
    return sum(max(len(r), 3) for r in polygon_outlines(mask, segmentation))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def manual_masks(
    masks: list[np.ndarray], labels: np.ndarray, current_class: int | None, segmentations: list | None = None
) -> Plan:
    """Outlining every required object as a polygon (:func:`polygon_outlines`, from its
    ``segmentations`` where given), grouped by class from ``current_class`` on: a class key
    when the class changes, then each polygon's vertices and Enter."""
    plan, cls = Plan(), current_class
    segmentations = segmentations or [None] * len(masks)
    for j in sorted(range(len(masks)), key=lambda j: (int(labels[j]) != cls, int(labels[j]))):
        if int(labels[j]) != cls:
            cls = int(labels[j])
            plan.actions.append(Action("class change", class_index=cls))
        for ring in polygon_outlines(masks[j], segmentations[j]):  # its vertices, then closed (Enter)
            plan.actions += [Action("vertex", j)] * max(len(ring), 3) + [Action("accept", j)]
    return plan


def manual(gt: Objects, current_class: int | None) -> Plan:
    """Drawing every required object by hand, grouped by class from ``current_class`` on."""
    return finish(gt, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), current_class)


def next_click(gt: Objects, boxes: np.ndarray, labels: np.ndarray, classes=None) -> int | None:
    """The required object to click next: the largest one no box matches, of one of
    ``classes`` (class indices; None: any) (None: none). An object whose centre is inside a
    shown box of its class is not clicked: on the page that click accepts the box (it is
    fixed by drawing over it, :func:`finish`)."""
    todo = missed(gt, boxes, labels)
    if classes is not None:
        todo = todo[np.isin(gt.labels[todo], list(classes))]
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(todo) and len(boxes):
        cx = (gt.boxes[todo, 0] + gt.boxes[todo, 2]) / 2
        cy = (gt.boxes[todo, 1] + gt.boxes[todo, 3]) / 2
        inside = (
            (boxes[None, :, 0] <= cx[:, None]) & (cx[:, None] <= boxes[None, :, 2])
            & (boxes[None, :, 1] <= cy[:, None]) & (cy[:, None] <= boxes[None, :, 3])
            & (labels[None, :] == gt.labels[todo][:, None])
        )  # fmt: skip
        todo = todo[~inside.any(1)]
    if not len(todo):
        return None
    b = gt.boxes[todo]
    return int(todo[int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))])


def work_left(gt: Objects, boxes: np.ndarray, labels: np.ndarray, current_class: int | None) -> float:
    """The seconds that finish the image from the proposals shown (``boxes`` / ``labels``):
    :func:`finish`'s plan, and Enter first when it fixes a proposal."""
    return finish_cost(finish(gt, boxes, labels, current_class), len(boxes))[1]


def finish_cost(plan: Plan, shown: int, extra: tuple[str, ...] = ()) -> tuple[int, float]:
    """``(interactions, seconds)`` of finishing by ``plan`` with ``shown`` proposals on the
    page: the ``extra`` actions (kinds of :data:`COST_SECONDS`) first, and Enter when the
    plan fixes a proposal."""
    keys = [*extra, *(["accept"] if shown and plan.fixes_proposals else [])]
    return plan.interactions + len(keys), plan.seconds() + sum(COST_SECONDS[k] for k in keys)


@dataclass
class EdgeFit:
    """A box drawn over proposal ``index`` (its object's, ``box``, class ``label``), then E:
    the proposals (``boxes``, the drawn-over one still among them) as E leaves them."""

    index: int
    box: np.ndarray
    label: int
    boxes: np.ndarray


def fit_edges(boxes: np.ndarray, labels: np.ndarray, label: int, move: np.ndarray) -> np.ndarray:
    """``boxes`` of class ``label`` with each edge (x0, y0, x1, y1) moved by ``move`` pixels,
    none under a pixel a side: what E does on the page (``modes/detect.js: moveEdges``)."""
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    mine = np.asarray(labels) == label
    x0, y0, x1, y1 = (out[mine] + np.asarray(move, np.float32)).T
    out[mine] = np.stack([np.minimum(x0, x1 - 1), np.minimum(y0, y1 - 1), np.maximum(x1, x0 + 1),
                          np.maximum(y1, y0 + 1)], 1)  # fmt: skip
    return out


def edge_fit(gt: Objects, boxes: np.ndarray, labels: np.ndarray, scores, current_class: int | None):
    """Whether a person draws one proposal right and presses E (:func:`fit_edges` by that
    box's edge moves), and on which: per class, the surest proposal that misses its object
    (IoU < :data:`MATCH_IOU`) but overlaps one no proposal matches (IoU >= :data:`NEAR_IOU`).
    The :class:`EdgeFit` that leaves the fewest interactions (then seconds) to finish, the
    draw, E and a class key included, when fewer than without it; else None."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels, scores = np.asarray(labels, np.int64), np.asarray(scores, np.float32)
    matched, free = match(gt, boxes, labels), required(gt)
    free[matched[matched >= 0]] = False  # the objects no proposal matches
    if not len(boxes) or not free.any():
        return None
    best, best_cost = None, finish_cost(finish(gt, boxes, labels, current_class), len(boxes))
    overlap = box_iou(boxes, np.asarray(gt.boxes, np.float32).reshape(-1, 4))
    for c in np.unique(labels):
        near = np.where(free & (gt.labels == c), overlap, 0.0)
        near[(labels != c) | (matched >= 0)] = 0.0
        candidates = np.flatnonzero(near.max(1) >= NEAR_IOU)
        if len(np.flatnonzero(labels == c)) < 2 or not len(candidates):
            continue
        i = int(candidates[np.argmax(scores[candidates])])
        j = int(near[i].argmax())
        if int(overlap[:, j].argmax()) != i:  # the page replaces the proposal the box overlaps most
            continue
        truth = np.asarray(gt.boxes[j], np.float32)
        moved = fit_edges(boxes, labels, int(c), truth - boxes[i])
        moved[i] = truth  # the box drawn over it takes its place
        extra = ("draw", "fit", *(["class change"] if int(c) != current_class else []))
        ours = finish_cost(finish(gt, moved, labels, int(c)), len(boxes), extra)
        if ours < best_cost:
            best, best_cost = EdgeFit(i, truth, int(c), moved), ours
    return best


@dataclass
class ClickMemory:
    """What a person remembers of their own clicks, and so whether they click: per class, the
    seconds each of its last ``window`` clicks saved (the work left before it, less the work
    left after it, the click itself, the wait for its answer and a look at each proposal it
    showed anew; a person sees all of them). A class whose remembered clicks
    saved nothing on average is drawn instead of clicked, and tried again once ``retry``
    images went by without a click of it (the detector keeps learning). A class never
    clicked is worth a try."""

    window: int = 4
    retry: int = 3
    gains: dict[int, list[float]] = field(default_factory=dict)
    tried: dict[int, int] = field(default_factory=dict)  # class -> the image of its last click

    def worth(self, cls: int, image: int) -> bool:
        """Whether the person clicks an object of class ``cls`` on their ``image``-th image."""
        seen = self.gains.get(cls)
        if not seen or image - self.tried[cls] >= self.retry:
            return True
        return float(np.mean(seen)) > 0

    def remember(self, cls: int, image: int, saved_seconds: float) -> None:
        self.gains[cls] = [*self.gains.get(cls, []), float(saved_seconds)][-self.window :]
        self.tried[cls] = image


def clicks_stalled(ious: list[float], gain: float = STALL_GAIN, run: int = STALL_RUN) -> bool:
    """Whether a person stops clicking: ``ious`` is the mask's IoU before the first click
    and after each click since; the last ``run`` clicks each gained under ``gain``."""
    if len(ious) <= run:
        return False
    return all(b - a < gain for a, b in zip(ious[-run - 1 : -1], ious[-run:]))


def at_manual_quality(gt: Objects, boxes: np.ndarray, labels: np.ndarray) -> bool:
    """Whether ``boxes`` are the image at manual quality (module docstring)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    matched = match(gt, boxes, labels)
    extra = (matched < 0) & ~on_ignore(gt, boxes)
    return not len(missed(gt, boxes, labels)) and not extra.any()


__all__ = [
    "COCO_POLYGON_SECONDS",
    "COST_SECONDS",
    "COST_SOURCES",
    "MATCH_IOU",
    "Action",
    "ClickMemory",
    "EdgeFit",
    "Plan",
    "STALL_GAIN",
    "STALL_RUN",
    "clicks_stalled",
    "apply",
    "edge_fit",
    "fit_edges",
    "at_manual_quality",
    "finish",
    "finish_cost",
    "manual",
    "manual_masks",
    "mask_iou",
    "polygon_outlines",
    "polygon_vertices",
    "match",
    "missed",
    "next_click",
    "required",
    "work_left",
]
