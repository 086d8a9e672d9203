"""The model in the loop: click-to-detect, box-to-mask, point snapping, full-image
segmentation, and Label Studio's ML backend; a mask's editable outline."""

from __future__ import annotations

from typing import Any, Literal

from fewclick.wire.answers.base import Answer, Rle


class Exemplar(Answer):
    """A finished box whose SAM proposal serves as an exemplar of its class: the annotation
    (``annotation_id``, removed from the exemplars by ``PUT /api/annotations/{id}/exemplar``),
    its image, class and box."""

    annotation_id: int
    image_id: int
    class_id: int
    box: list[float]


class ProposalsUsed(Answer):
    """The image's SAM proposals (issue 52) in a training-free answer: ``state`` "ready" (the
    look-alikes came from them), "partial" (from those of the image's first ``windows_done`` of
    ``windows``: the rest are being made; ask again) or "making" (none made yet: feature similarity
    answered); when ready or partial, how many the image has (``made``), how many look-alikes are
    shown (``shown``), from which score a clicked class's start (``threshold``), how many objects of
    the finished images they were matched to as well (``exemplars``, and a few of them per class to
    show as thumbnails: ``exemplar_boxes``), and the clicks, by index, for which neither a proposal
    nor SAM found an object (``unboxed``: their boxes are SAM's click boxes), and how many proposals
    the person rejected served as negative exemplars (``rejected``)."""

    state: str
    windows_done: int | None = None
    windows: int | None = None
    made: int | None = None
    shown: int | None = None
    unboxed: list[int] = []
    threshold: float | None = None
    exemplars: int | None = None
    exemplar_boxes: list[Exemplar] = []
    rejected: int = 0


class MaskProposals(Answer):
    """What mask mode opens an image with (issue 54): the look-alikes of the finished images'
    objects among the image's SAM proposals, best first, each with its ``masks`` (COCO RLE),
    ``boxes``, ``scores`` and ``labels`` (class ids); the page shows those at or above their
    class's ``min_scores`` (class id -> threshold; a class without one starts at
    ``threshold``). ``state``: "ready", "making" (not made yet: ask again) or "none" (not
    here: ``note`` says why)."""

    state: str
    note: str | None = None
    made: int | None = None
    boxes: list[list[float]] = []
    scores: list[float] = []
    labels: list[int] = []
    masks: list[Rle] = []
    min_scores: dict[int, float] = {}
    threshold: float | None = None


class Detected(Answer):
    """Click-to-detect: per object its ``boxes`` XYXY, ``rboxes`` (cx, cy, w, h, angle; None
    for axis-aligned detectors), ``scores`` and ``labels`` (class ids); the classes whose
    SAM boxes moved by learnt edges (``fitted_classes``) or were made tight
    (``tight_classes``); the ``model_version`` that answered (None: the training-free start),
    the file it was read from (``model_file``, relative to the project's models folder) and
    its score thresholds, overall and per class id; the look-alikes' cap (None: none); the
    version the project serves (``requested_version``) and, when another answered because
    its file could not be read or it knows other classes, why (``fallback``); the image's
    SAM proposals when the training-free start answered (``proposals``); the seconds the
    fast learner's refit took where it serves a class and was refit for this answer
    (``learner_fit_s``; None: kept from an earlier answer, or it serves none)."""

    method: str
    boxes: list[list[float]]
    rboxes: list[list[float]] | None
    scores: list[float]
    labels: list[int]
    fitted_classes: list[int]
    tight_classes: list[int]
    model_version: int | None
    min_score: float | None
    min_scores: dict[int, float] | None
    look_alike_limit: int | None
    proposals: ProposalsUsed | None = None
    requested_version: int | None = None
    model_file: str | None = None
    fallback: str | None = None
    learner_fit_s: float | None = None


class Swept(Answer):
    """The look-alikes sweep of a large image (:mod:`fewclick.server.worker_sweep`): its
    ``status`` (running, done, stopped, failed; ``message`` says why), the windows detected
    of all, its seconds so far, the ``method`` detecting, and the boxes found so far as in
    :class:`Detected` (labels as class ids)."""

    status: str
    windows_done: int
    windows: int
    seconds: float
    message: str
    method: str
    boxes: list[list[float]]
    rboxes: list[list[float]] | None
    scores: list[float]
    labels: list[int]


class Prepared(Answer):
    """Whether the image needs SAM's embedding and whether it is ready; the mask backend;
    where its SAM proposals are ("ready", "making", why they failed; None: not made for it)
    and, while they are made, how many of the image's windows are done (None while it
    waits for its turn or its windows are not counted yet), and whether the proposals of
    those are there to be shown (``proposals_partial``: detect answers from them)."""

    needs_sam: bool
    backend: str
    chosen_by: str
    ready: bool
    proposals: str | None = None
    proposals_done: int | None = None
    proposals_windows: int | None = None
    proposals_partial: bool | None = None


class Mask(Answer):
    """A mask as the page draws it: RLE, tight box (an empty mask's is [0, 0, 0, 0]; None
    only were it not finite), score and area in pixels; ``shape`` names a shape prior
    offered beside SAM's candidates ("ellipse": the box's; "proposal": the image's proposal
    under a click, served first), not SAM's own answer to the prompt."""

    mask: Rle
    box: list[float] | None
    score: float
    area: int
    shape: str | None = None


class Segmented(Answer):
    """Box-to-mask: the mask, by which ``method`` and why (``chosen_by``), why the tuned SAM
    does not serve (``note``, else None), the quality ranker's IoU estimate (None without
    one), the share the last click ``changed`` (None without one), SAM's ``candidates``
    for an ambiguous prompt, and (the tuned SAM only) what its ``decoder`` scored. ``zoom``
    (:mod:`fewclick.server.worker_zoom`): "window" when a small box's zoom window served,
    "encoding" while that window is encoded (the whole image served: ask again), else None.
    ``shape`` when the mask served is not the backend's answer ("proposal": the image's
    proposal under a click alone, as in :class:`Mask`)."""

    method: str
    chosen_by: str
    note: str | None
    mask: Rle
    box: list[float] | None
    score: float
    area: int
    quality: float | None
    changed: float | None
    candidates: list[Mask]
    zoom: Literal["window", "encoding"] | None = None
    decoder: dict[str, Any] | None = None  # only when the tuned SAM served
    shape: str | None = None


class Snapped(Answer):
    """Where a point lands (x, y), and by which ``method``: cpr, sam-centre or none; ``note``
    says why the project's point model did not (its file cannot be read)."""

    method: str
    point: list[float]
    note: str | None = None


class Region(Answer):
    index: int
    rle: Rle
    area: int


class FullImage(Answer):
    """Full-image segmentation: per region its mask and area; ``ms`` the worker's time; on a
    large image, the ``window`` (x0, y0, x1, y1) its prompts span and it segmented (else None)."""

    regions: list[Region]
    method: str
    ms: float
    window: list[int] | None = None


class Ring(Answer):
    """One ring of an outline: ``points`` [K][2] (x, y) in pixel-edge coordinates (pixel
    (x, y) covers [x, x + 1) x [y, y + 1)), K >= 3; ``hole``: it was traced around a hole."""

    points: list[list[float]]
    hole: bool


class Outline(Answer):
    """A mask as an editable outline (:func:`fewclick.outline.editable_outline`): its rings,
    parts and holes; filled even-odd (a pixel is on when its centre lies inside an odd
    number of rings) they give the mask back at IoU >= 0.95."""

    rings: list[Ring]


class Health(Answer):
    status: str


class ModelVersionName(Answer):
    model_version: str


class Acknowledged(Answer):
    """An empty object."""


class Prediction(Answer):
    """One task's prediction: Label Studio results, their mean score, and why it is empty
    (``error``: only when it failed)."""

    result: list[dict[str, Any]]
    score: float
    model_version: str
    error: str | None = None  # only when the task got no prediction


class Predictions(Answer):
    results: list[Prediction]
    model_version: str
