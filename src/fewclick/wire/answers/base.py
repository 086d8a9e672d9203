"""The base of every answer, and the answers several resources share: jobs, masks as RLE
and annotations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A JSON object of an answer."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Job(Answer):
    """A job: ``message`` is the first line of its message; ``elapsed_seconds`` counts from
    when it began running (None before), ``eta_seconds`` estimates the rest while it runs
    (:func:`fewclick.server.views.eta`)."""

    id: int
    project_id: int
    kind: str
    trigger: str
    status: str
    progress: float  # 0..1
    message: str
    elapsed_seconds: float | None
    eta_seconds: float | None
    eta_range: list[float] | None = None  # [low, high] seconds: how sure eta_seconds is
    eta_from: str | None = None  # how it was estimated (steps left and their seconds)
    step_counts: list[int | None] | None = None  # [done, total] of its training's current stretch
    created_at: str
    updated_at: str


class Trainer(Job):
    """The background trainer's job, with the ``steps`` it has trained."""

    steps: int


class Rle(Answer):
    """A mask as compressed COCO RLE: ``size`` [height, width]."""

    size: list[int]
    counts: str


class Annotation(Answer):
    """An annotation; ``geometry`` holds the field its ``kind`` names (``box`` [x0, y0, x1,
    y1], ``rbox`` [cx, cy, w, h, angle], ``mask`` RLE with its ``box``, ``point`` [x, y]
    with the ``original`` click); ``exemplar``: whether a box serves as an exemplar its
    class's look-alikes are matched to (issue 52)."""

    id: int
    image_id: int
    class_id: int
    kind: str
    geometry: dict[str, Any]
    score: float | None
    quality: float | None
    source: str
    backend: str | None
    review: str
    exemplar: bool = True
