"""The JSON shapes the API answers with: one function per row kind, plain dicts out.

Views read only the rows (and counts) they are given; the queries behind them are in
:mod:`fewclick.server.storage`. Each shape is declared as a model in
:mod:`fewclick.wire.answers` (the routes' ``response_model``): a key added here is added
there too, or the server's tests name it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from fewclick.server import model_files
from fewclick.server.db import (
    Annotation,
    BackendComparison,
    BoxQuery,
    Event,
    Image,
    Job,
    ModelVersion,
    Project,
    ProjectClass,
    now,
)

ETA_FROM = 0.02  # the progress from which a job's time left is estimated


def columns(row, names: str) -> dict:
    """``{name: row.name}`` for each of the space-separated ``names``, in their order; a
    datetime as ISO text."""
    out = {}
    for name in names.split():
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def project_class(c: ProjectClass) -> dict:
    return columns(c, "id name color key position isthing")


def image(im: Image, annotations: int) -> dict:
    """An image row with ``annotations``, the number of its annotations."""
    return {**columns(im, "id project_id file_name width height status revision"), "annotations": annotations}


def annotation(a: Annotation) -> dict:
    return columns(a, "id image_id class_id kind geometry score quality source backend review exemplar")


def box_query(q: BoxQuery) -> dict:
    """A queried box: where it is, what the detector said, and its answer once given."""
    return columns(q, "id image_id class_id box score model_version status answer annotation_id seconds")


def eta_seconds(progress: float, elapsed: float) -> float | None:
    """Seconds left for a job ``progress`` (0..1) of the way after ``elapsed`` seconds of
    running, at the pace so far; None until the progress reaches ``ETA_FROM``."""
    if progress <= ETA_FROM:
        return None
    return elapsed * (1 - progress) / progress


def job(j: Job, at: datetime | None = None) -> dict:
    """A job row as of ``at`` (now by default). ``message`` is the first line of the row's
    (a failure's is one line with a log reference; its traceback is in the log);
    ``elapsed_seconds`` counts from when it began running (None before); while it runs,
    ``eta_seconds`` estimates the rest, ``eta_range`` how sure that is and ``eta_from`` how
    it was made (:func:`eta`)."""
    at = at or now()
    elapsed, guess = None, {"eta_seconds": None, "eta_range": None, "eta_from": None}
    if j.started_at is not None:
        elapsed = ((at if j.status == "running" else j.updated_at) - j.started_at).total_seconds()
        if j.status == "running":
            guess = eta(j.pace, j.progress, elapsed)
    return {
        **columns(j, "id project_id kind trigger status progress"),
        "message": j.message.split("\n", 1)[0],
        "elapsed_seconds": elapsed,
        **guess,
        "step_counts": None if not j.pace else [j.pace.get("done"), j.pace.get("total")],
        **columns(j, "created_at updated_at"),
    }


def eta(pace: dict | None, progress: float, elapsed: float) -> dict:
    """The time left of a running job: from its steps when its training knows how many it
    will take (:class:`fewclick.server.jobs.pause.Pace`: the steps left at the median of the
    last steps' seconds, the ones slowed by load included, and the work after the steps at
    what it took last time), with a range from the 10th to the 90th percentile of the
    recent steps' seconds, at least half either side of the median (``Pace.as_row``), and
    half to twice the work after them (``eta_from`` says when that was not measured yet);
    else from the share done so far (``progress``), without a range."""
    if pace and pace.get("total") and pace.get("step_seconds") is not None:
        left = max(pace["total"] - pace["done"], 0)
        after = pace.get("after")
        seconds = left * pace["step_seconds"] + (after or 0.0)
        low = left * pace["low"] + (after or 0.0) / 2
        high = left * pace["high"] + (after or 0.0) * 2
        how = f"{left} steps left at {pace['step_seconds']:.2f} s a step, from the last {pace['measured']}"
        if pace.get("busy"):
            how += f", {pace['busy']} of them slowed while the app prepared images for you"
        how += "" if after is not None else "; then scoring, not timed yet"
        return {"eta_seconds": seconds, "eta_range": [low, high], "eta_from": how}
    return {"eta_seconds": eta_seconds(progress, elapsed), "eta_range": None, "eta_from": None}


def event(e: Event) -> dict:
    return columns(e, "id image_id user_id action at duration_ms detail")


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
        "auto_train_every": p.auto_train_every,
        "queue_train_every": p.queue_train_every,
        "pinned_detector": p.pinned_detector,
        "ask_empty": p.ask_empty,
        "progress": finished / total if total else 0.0,
    }


def model_version(m: ModelVersion, models_dir: Path | None = None) -> dict:
    """A model version; ``file`` is its file relative to the project's models folder,
    ``collected`` whether its files were removed (it stays for the project's history) and
    ``unreadable`` why its file could not be read when last tried (None: it reads)."""
    out = columns(m, "task version images method metrics created_at")
    out["file"] = model_files.wire_file(m.path, models_dir, m.project_id)
    out["collected"] = model_files.collected(m)
    out["unreadable"] = model_files.unreadable(m)
    return out


def project_detail(
    p: Project,
    by_status: dict[str, int],
    models: Iterable[ModelVersion],
    detector: ModelVersion | None,
    trainer: Job | None = None,
    models_dir: Path | None = None,
) -> dict:
    """The summary with the project's classes, its trained model versions, the ``detector``
    that serves click-to-detect (None: the training-free start serves), its background
    ``trainer``'s job while it is live (None otherwise) and the disk its model files take
    against their budget, with what they hold (``model_files``)."""
    out = project(p, by_status)
    out["classes"] = [project_class(c) for c in p.classes]
    models = list(models)
    out["models"] = [model_version(m, models_dir) for m in models]
    out["detector"] = None if detector is None else model_version(detector, models_dir)
    out["model_files"] = _model_files(p.id, models, models_dir)
    out["trainer"] = None if trainer is None else job(trainer)
    return out


def _model_files(project_id: int, models: list[ModelVersion], models_dir: Path | None) -> dict:
    """The disk the project's model files take, against their budget, and what they hold
    (:func:`fewclick.server.model_files.holdings`: the page names every part)."""
    out = {
        "bytes": model_files.usage(models_dir, project_id) if models_dir is not None else 0,
        "budget_bytes": model_files.budget_bytes(),
        "kept_per_task": model_files.KEEP_VERSIONS,
    }
    if models_dir is not None:
        live = [m for m in models if not model_files.collected(m)]
        out |= model_files.holdings(models_dir, project_id, live)
    return out


def backends(
    p: Project, serving, comparison: BackendComparison | None, available: list[str], masks: int, needed: int
) -> dict:
    """The project's mask backends: the one ``serving`` (a :class:`~fewclick.server.serving.Serving`)
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
