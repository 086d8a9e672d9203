"""Pre-annotating a project: the serving detector over every image nobody has started.

A job in its own process, running the batch code of ``fewclick predict``
(:class:`fewclick.batch.PredictJob` through :func:`fewclick.batch.run`, in-process here):
every image of the project that is not finished and holds none of the users' annotations
gets the detector's boxes (oriented boxes in an oriented project) at or above the score of
its best F1 on held-out finished images (:data:`FALLBACK_SCORE` when it has none), saved as
annotations with source ``preannotate``, their scores, and review pending, so the review
mode takes the least sure first. Images a person has started are left alone; an image the
model could not read is named in the job's message and the others are saved. A large image
is detected in overlapping windows read by regions (:func:`fewclick.batch.window_items`),
the job's progress counting windows.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fewclick.server.db import User, make_engine, session_factory
from fewclick.server.errors import Conflict
from fewclick.server.jobs.process import MESSAGE_CHARS
from fewclick.server.jobs.status import DONE, RUNNING, update_job
from fewclick.server.storage import images, rows

log = logging.getLogger(__name__)

FALLBACK_SCORE = 0.3  # a version trained without held-out images has no best-F1 score
SOURCE = "preannotate"


def preannotate(db_url: str, job_id: int, models_dir: Path, embeddings: str | None = None) -> None:
    """Run job ``job_id``: pre-annotate its project (module docstring)."""
    from fewclick import batch
    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.models.detector import load_detector
    from fewclick.server import imports
    from fewclick.server.jobs.queue import OTHER_CLASSES, job_detector
    from fewclick.types import Objects

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job, project, version = job_detector(session, job_id)
        classes = load_detector(version.path)[1]["classes"]  # what its labels index, by name
        if list(classes) != [c.name for c in project.classes]:
            raise ValueError(OTHER_CLASSES.format(version=version.version))
        untouched = images.not_started(session, project.id)
        seen = {image.id: image.revision for image in untouched}  # a change meanwhile skips the image
        best = (version.metrics or {}).get("score_threshold")
        threshold = FALLBACK_SCORE if best is None else float(best)
        update_job(db_url, job_id, status=RUNNING, message=f"pre-annotating {len(untouched)} images")
        done = 0

        def progress(n: int) -> None:  # per item: an image, or a window of a large one
            nonlocal done
            done += n
            update_job(db_url, job_id, progress=done / max(len(items), 1) * 0.99)

        # a large image: the file it is read by regions from, in windows (never whole)
        tile_cache = Path(models_dir).parent / "tiles"  # the app's Settings.tile_cache beside its models
        readable = {image.id: _readable(tile_cache, image) for image in untouched}
        items = [
            {"path": readable[image.id], "rel": str(image.id)} for image in untouched if readable[image.id]
        ]
        items, windows = batch.window_items(items)
        options = {"model": version.path, "score_threshold": threshold}
        predicted = batch.run(batch.PredictJob, items, options, progress=progress) if items else []
        predicted = batch.merge_windows(predicted, windows)
        by_id = {image.id: image for image in untouched}
        records = []
        failed = [
            f"{by_id[i].file_name} (still being converted for reading by regions)"
            for i, p in readable.items()
            if not p
        ]
        for row in predicted:
            image = by_id[int(row["rel"])]
            if row["error"]:
                failed.append(f"{image.file_name} ({row['error']})")
                continue
            det = batch.detections_of(row)
            rboxes = det.rboxes if project.oriented else None
            objects = Objects(det.labels, det.boxes, rboxes=rboxes, extra={"scores": det.scores})
            path = Path(image.path)
            records.append(ImageRecord(image.file_name, image.width, image.height, objects, path, image.id))
        user = rows.find(session, User, job.created_by)
        records, skipped = _still_untouched(session, project.id, records, by_id, seen, user)
        warnings = imports.import_annotations(
            session, user, project, Dataset(classes, records), source=SOURCE
        )
        session.commit()
        boxes = sum(len(r.objects) for r in records)
        message = (
            f"{boxes} boxes on {len(records)} images (detector v{version.version}, score >= {threshold:.2f})"
        )
        if skipped:
            message += f"; {skipped} image(s) left alone: someone changed them meanwhile"
        if failed:
            message += f"; not read: {len(failed)} image(s): {', '.join(failed[:3])}"
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 3] + "..."
        for warning in warnings:
            log.warning("job %d: %s", job_id, warning)
        log.info("job %d: %s", job_id, message)
    update_job(db_url, job_id, status=DONE, progress=1.0, message=message)
    engine.dispose()


def _readable(tile_cache: Path, image) -> str | None:
    """The file an image is read from: its own, or for a large one the file it is read by
    regions from (its converted pyramid, for a large JPEG or PNG; None while that is being
    made: a large image is never read whole)."""
    from fewclick.server import tiles

    if tiles.is_large(image.width, image.height):
        try:
            return tiles.region_file(tile_cache, image.id, image.path)
        except (OSError, ValueError):  # gone or unreadable: named when its item is read
            return image.path
    return image.path


def _still_untouched(
    session, project_id: int, records: list, by_id: dict, seen: dict, user
) -> tuple[list, int]:
    """The records whose image nobody changed while the detector ran (still not started, at
    the revision the job saw), each image's revision claimed for the boxes (an open page is
    told it is stale); and how many were skipped."""
    session.expire_all()  # what people did while the detector ran
    eligible = {image.id for image in images.not_started(session, project_id)}
    kept = []
    for rec in records:
        image = by_id[rec.id]
        if image.id not in eligible:
            continue
        try:
            images.claim_revision(session, image, seen[image.id], user)
        except Conflict:
            continue
        kept.append(rec)
    return kept, len(records) - len(kept)
