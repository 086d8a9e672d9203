"""The JSON shapes the API answers with: one function per row kind, plain dicts out.

Views read only the rows (and counts) they are given; the queries behind them are in
:mod:`fewclick.server.queries`.
"""

from __future__ import annotations

from collections.abc import Iterable

from fewclick.server.db import (
    Annotation,
    BackendComparison,
    Event,
    Image,
    Job,
    ModelVersion,
    Project,
    ProjectClass,
)


def project_class(c: ProjectClass) -> dict:
    return {"id": c.id, "name": c.name, "color": c.color, "key": c.key, "position": c.position}


def image(im: Image, annotations: int) -> dict:
    """An image row with ``annotations``, the number of its annotations."""
    return {
        "id": im.id,
        "project_id": im.project_id,
        "file_name": im.file_name,
        "width": im.width,
        "height": im.height,
        "status": im.status,
        "revision": im.revision,
        "annotations": annotations,
    }


def annotation(a: Annotation) -> dict:
    return {
        "id": a.id,
        "image_id": a.image_id,
        "class_id": a.class_id,
        "kind": a.kind,
        "geometry": a.geometry,
        "score": a.score,
        "quality": a.quality,
        "source": a.source,
        "backend": a.backend,
        "review": a.review,
    }


def job(j: Job) -> dict:
    return {
        "id": j.id,
        "project_id": j.project_id,
        "kind": j.kind,
        "status": j.status,
        "progress": j.progress,
        "message": j.message,
        "created_at": j.created_at.isoformat(),
        "updated_at": j.updated_at.isoformat(),
    }


def event(e: Event) -> dict:
    return {
        "id": e.id,
        "image_id": e.image_id,
        "user_id": e.user_id,
        "action": e.action,
        "at": e.at.isoformat(),
        "duration_ms": e.duration_ms,
        "detail": e.detail,
    }


def project(p: Project, by_status: dict[str, int]) -> dict:
    """A project's summary; ``by_status`` counts its images per status."""
    total = sum(by_status.values())
    finished = by_status.get("done", 0) + by_status.get("reviewed", 0)
    return {
        "id": p.id,
        "name": p.name,
        "oriented": p.oriented,
        "source": p.source,
        "images": total,
        "by_status": by_status,
        "progress": finished / total if total else 0.0,
    }


def project_detail(p: Project, by_status: dict[str, int], models: Iterable[ModelVersion]) -> dict:
    """The summary with the project's classes and its trained model versions."""
    out = project(p, by_status)
    out["classes"] = [project_class(c) for c in p.classes]
    out["models"] = [
        {"task": m.task, "version": m.version, "images": m.images, "created_at": m.created_at.isoformat()}
        for m in models
    ]
    return out


def backends(
    p: Project, serving, comparison: BackendComparison | None, available: list[str], masks: int, needed: int
) -> dict:
    """The project's mask backends: the one ``serving`` (a :class:`~fewclick.server.worker.Serving`)
    and why, the user's pick, the ``available`` ones, its newest ``comparison`` (None before
    one), the finished ``masks`` and how many more a comparison ``needed``."""
    return {
        "serving": serving.name,
        "chosen_by": serving.chosen_by,
        "quality_ranker": serving.ranker is not None,
        "override": p.mask_backend,
        "available": available,
        "finished_masks": masks,
        "masks_needed": needed,
        "comparison": None
        if comparison is None
        else {
            "table": comparison.table,
            "chosen": comparison.chosen,
            "masks": comparison.masks,
            "created_at": comparison.created_at.isoformat(),
        },
    }
