"""Project analytics from the interaction log: time and interactions per image, objects per
minute, and, where the project holds reference annotations, mAP against elapsed annotation
time (the C3Det user study's Figure 10) and the detector's mAP against the boxes labeled
when each version trained (box-level active learning's curve; scored by the training job,
:mod:`fewclick.server.jobs.training`).

Time on an image is its active time summed over every visit. A visit runs from the
browser's ``open`` event to its ``leave`` or ``submit``; each event on the image carries in
``duration_ms`` the active time since the one before it in the visit (or since the image
opened), so a visit's time is the sum of its events' durations. The page measures active
time by the person's input (a mouse move, a scroll, a key): a gap of over ``IDLE_SECONDS``
without input counts ``IDLE_SECONDS`` (they were away), and while no action is logged it
posts an ``active`` event (not an interaction) every 30 s, so studying an image between
two boxes counts in full. Here each event's time is cut to ``IDLE_SECONDS`` too, for
clients that post raw gaps. Interactions are the log's user actions on the image. Objects
per minute counts the objects made in the app on finished images: not those imported with
a dataset or pre-annotated by the detector (``PREMADE_SOURCES``), which no one here made.
Per image, ``finished`` is its place (1, 2, ...) in the order images were first submitted,
None for one not submitted: the learning curve plots only the finished ones.
For the curve, the annotations are taken as they stand now, each counted from its creation
time on (a deleted object leaves no trace, so early points can read low by what was later
deleted); elapsed time is the sum of the image times submitted up to that moment.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlalchemy.orm import Session

from fewclick.metrics.detection import evaluate_detections
from fewclick.server.convert import to_objects
from fewclick.server.db import Project
from fewclick.server.storage import events as event_log
from fewclick.server.storage import versions as model_versions
from fewclick.types import Detections
from fewclick.wire.codec import ClassMap

IDLE_SECONDS = 120.0  # a longer gap between two events on an image counts this long
INTERACTIONS = (
    "click", "accept", "delete", "edit", "draw", "undo", "redo", "class change", "reject", "threshold",
    "vertex", "tab", "stroke", "brush", "fit", "exemplar",
    # mask mode's proposals: one clicked to save its mask, the rest hidden (Esc)
    "take", "hide",
    # a mask's outline: made (a key), then its vertices dragged, inserted, deleted, or a
    # stretch redrawn (each redraw click one)
    "outline", "outline_drag", "outline_insert", "outline_delete", "outline_redraw",
)  # fmt: skip
# where objects made by no one here come from: a dataset's import, the detector's pre-annotation
PREMADE_SOURCES = ("import", "preannotate")
# the review queue's answers (server-logged, one per box) and its click on a missed object
QUEUE_INTERACTIONS = ("queue_accept", "queue_fix", "queue_background", "queue_missed")


def project_analytics(session: Session, project: Project) -> dict:
    events = event_log.in_order(session, project.id)
    seconds: dict[int, float] = defaultdict(float)
    interactions: dict[int, int] = defaultdict(int)
    submits = []
    for e in events:
        if e.image_id is None:
            continue
        if e.duration_ms:
            seconds[e.image_id] += min(max(e.duration_ms, 0) / 1000, IDLE_SECONDS)
        if e.action == "submit":
            submits.append((e.at, e.image_id))
        elif e.action in INTERACTIONS or e.action in QUEUE_INTERACTIONS:
            interactions[e.image_id] += 1
    names = {im.id: im.file_name for im in project.images}
    finished: dict[int, int] = {}  # the images in the order first submitted, then the others
    for _, image_id in submits:
        finished.setdefault(image_id, len(finished))
    last = len(finished)
    per_image = [
        {
            "image_id": i,
            "file_name": names.get(i, "?"),
            "seconds": round(seconds.get(i, 0.0), 1),
            "interactions": interactions.get(i, 0),
            "finished": finished[i] + 1 if i in finished else None,
        }
        for i in sorted(set(seconds) | set(interactions), key=lambda i: (finished.get(i, last), i))
    ]
    total_s = sum(seconds.values())
    made = sum(
        sum(1 for a in im.annotations if _made_here(a))
        for im in project.images
        if im.status in ("done", "reviewed")
    )
    return {
        "images": per_image,
        "total_seconds": round(total_s, 1),
        "mean_seconds_per_image": round(total_s / len(seconds), 1) if seconds else None,
        "mean_interactions_per_image": round(sum(interactions.values()) / len(per_image), 1)
        if per_image
        else None,
        "objects_per_minute": round(made / (total_s / 60), 2) if total_s > 0 else None,
        "map_vs_time": _map_curve(project, submits, seconds),
        "map_vs_boxes": _detector_curve(session, project),
    }


def _made_here(a) -> bool:
    """Whether annotation ``a`` is work done in the app: made here, not a reference, not rejected."""
    return not a.reference and a.review != "rejected" and a.source not in PREMADE_SOURCES


def _detector_curve(session: Session, project: Project) -> list[dict] | None:
    """Each detector version scored against the reference annotations: its mAP on unlabeled
    images and the boxes labeled when it trained, by version."""
    versions = model_versions.detectors(session, project.id)
    curve = [
        {
            "version": v.version,
            "boxes": v.metrics["boxes_labeled"],
            "mAP": v.metrics["reference_mAP"],
            "images": v.metrics.get("reference_images"),
        }
        for v in versions
        if v.metrics and v.metrics.get("reference_mAP") is not None
    ]
    return curve or None


def _map_curve(project: Project, submits: list, seconds: dict[int, float]) -> list[dict] | None:
    """mAP@0.5 of the annotations made by each submit, against the reference annotations."""
    with_reference = [im for im in project.images if any(a.reference for a in im.annotations)]
    if not with_reference or not submits:
        return None
    position_of = ClassMap(project.classes).position_of
    gts = [
        to_objects([a for a in im.annotations if a.reference], position_of, False) for im in with_reference
    ]
    work = {
        im.id: [a for a in im.annotations if not a.reference and a.review != "rejected"]
        for im in with_reference
    }
    curve, elapsed = [], 0.0
    counted: set[int] = set()
    for at, image_id in submits:
        if image_id not in counted:
            elapsed += seconds.get(image_id, 0.0)
            counted.add(image_id)
        preds = []
        for im in with_reference:
            anns = [a for a in work[im.id] if a.created_at <= at and "box" in a.geometry]
            objs = to_objects(anns, position_of, False)
            score = np.array([1.0 if a.score is None else a.score for a in anns], np.float32)
            preds.append(Detections(objs.boxes, score, objs.labels))
        result = evaluate_detections(gts, preds, len(project.classes), 0.5)
        curve.append(
            {"seconds": round(elapsed, 1), "mAP": None if np.isnan(result.map) else round(result.map, 4)}
        )
    return curve
