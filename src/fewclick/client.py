"""A small typed Python client for fewclick's HTTP API.

    from fewclick.client import Client

    api = Client("http://localhost:8000", token)         # fewclick token create NAME
    project = api.create_project("cells", folder="/data/cells", classes=["nucleus"])
    image = api.images(project.id)[0]
    found = api.detect(image.id, clicks=[(120, 88, project.classes[0].id)])
    api.save(image.id, create=[proposal.to_new() for proposal in found])
    api.export(project.id, "yolo-seg", "cells_yolo.zip")

Every call raises :class:`ApiError` with the server's own message when the request is
refused (``ApiError.status`` is the HTTP status). Every answer is parsed with the model its
route declares (:mod:`fewclick.wire.answers`, the server's own): an answer that is not what
the route declares raises :class:`AnswerError`. Records are frozen dataclasses made from the
parsed answers; ``raw`` keeps the whole JSON answer for fields this client does not name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from fewclick.wire import answers

__all__ = ["Client", "ApiError", "AnswerError", "Project", "ProjectClass", "Image", "Annotation", "Job"]

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """A request the server refused: ``status`` and the server's ``detail``."""

    def __init__(self, status: int, detail: Any, method: str, path: str) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"{method} {path}: {status}: {detail}")


class AnswerError(RuntimeError):
    """An answer that is not what its route declares (a server of another version?): the
    problems pydantic found, with the request."""

    def __init__(self, method: str, path: str, model: Any, problems: ValidationError) -> None:
        self.problems = problems
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}the answer is not a {_name(model)}: {problems}")


def _name(model: Any) -> str:
    return getattr(model, "__name__", None) or str(model)


@cache
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def parse(model: Any, data: Any, method: str = "", path: str = "") -> Any:
    """``data`` (a JSON answer) as ``model`` (a :mod:`fewclick.wire.answers` model, or a list
    of one); :class:`AnswerError` naming ``method path`` when it is not one."""
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise AnswerError(method, path, model, exc) from None


@dataclass(frozen=True)
class ProjectClass:
    id: int
    name: str
    color: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    classes: list[ProjectClass]
    images: int = 0
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict) -> Project:
        """A project as the API gives it: with its classes (one project), or without (the
        list of projects: ``classes`` is then empty)."""
        found = parse(answers.Project if "classes" in data else answers.ProjectSummary, data)
        given = zip(getattr(found, "classes", []), data.get("classes", []), strict=True)
        classes = [ProjectClass(c.id, c.name, c.color, raw) for c, raw in given]
        return cls(found.id, found.name, classes, found.images, data)

    def class_id(self, name: str) -> int:
        for cls in self.classes:
            if cls.name == name:
                return cls.id
        raise KeyError(
            f"project {self.name!r} has no class {name!r}; it has {[c.name for c in self.classes]}"
        )


@dataclass(frozen=True)
class Annotation:
    """A saved annotation, or a proposal (``id`` None) from :meth:`Client.detect` /
    :meth:`Client.segment`."""

    id: int | None
    class_id: int | None
    kind: str
    geometry: dict
    score: float | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict) -> Annotation:
        """A saved annotation as the API gives it."""
        found = parse(answers.Annotation, data)
        return cls(found.id, found.class_id, found.kind, found.geometry, found.score, data)

    def to_new(self, class_id: int | None = None) -> dict:
        """This annotation as a new one to save (optionally of another class)."""
        new = {"class_id": class_id if class_id is not None else self.class_id, "kind": self.kind}
        new["geometry"] = self.geometry
        return new if self.score is None else {**new, "score": self.score}


@dataclass(frozen=True)
class Image:
    id: int
    file_name: str
    width: int
    height: int
    status: str
    revision: int
    annotations: list[Annotation] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict) -> Image:
        """An image as the API gives it: with its annotations (one image), or with their
        count only (a project's list: ``annotations`` is then empty, ``raw`` has the count)."""
        given = data.get("annotations")
        found = parse(answers.OpenImage if isinstance(given, list) else answers.Image, data)
        anns = [Annotation.of(a) for a in given] if isinstance(given, list) else []
        return cls(
            found.id, found.file_name, found.width, found.height, found.status, found.revision, anns, data
        )


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    status: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict) -> Job:
        found = parse(answers.Job, data)
        return cls(found.id, found.kind, found.status, data)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class Client:
    """fewclick's HTTP API at ``url``, as the user whose bearer ``token`` this is.

    ``http`` is an ``httpx.Client`` to send through instead of a new one (a test's
    ``TestClient``, a client with a proxy or certificates of your own)."""

    def __init__(
        self,
        url: str = "",
        token: str | None = None,
        timeout: float = 120.0,
        http: httpx.Client | None = None,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.http.headers.update(headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------- plumbing
    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send one request to ``/api{path}``; :class:`ApiError` unless it succeeded."""
        try:
            response = self.http.request(method, f"/api{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{method} {self.http.base_url}/api{path}: no answer ({exc})") from exc
        log.debug("%s %s -> %s", method, path, response.status_code)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail, method, path)
        return response

    def _answer(self, method: str, path: str, model: Any, **kwargs) -> tuple[Any, Any]:
        """``(parsed, raw)``: the JSON answer to one request parsed as ``model`` (the route's
        :mod:`fewclick.wire.answers` model; :class:`AnswerError` when it is not one), and as
        received."""
        raw = self.request(method, path, **kwargs).json()
        return parse(model, raw, method, path), raw

    def _json(self, method: str, path: str, model: Any, **kwargs) -> Any:
        """The JSON answer to one request, checked to be a ``model`` (see :meth:`_answer`)."""
        return self._answer(method, path, model, **kwargs)[1]

    # ----------------------------------------------------------------------- projects
    def projects(self) -> list[Project]:
        return [Project.of(p) for p in self._json("GET", "/projects", list[answers.ProjectSummary])]

    def project(self, project_id: int) -> Project:
        return Project.of(self._json("GET", f"/projects/{project_id}", answers.Project))

    def create_project(
        self,
        name: str,
        folder: str | Path | None = None,
        classes: Sequence[str] = (),
        dataset: str | Path | None = None,
        **options: Any,
    ) -> Project:
        """A new project of the images in ``folder`` (on the server's disk, inside its data
        roots), or of a ``dataset`` with its annotations; ``options`` are the API's other
        fields (``mode``, ``oriented``, ...)."""
        body: dict[str, Any] = {"name": name, "classes": list(classes), **options}
        if folder is not None:
            body["folder"] = str(folder)
        if dataset is not None:
            body["dataset"] = str(dataset)
        return Project.of(self._json("POST", "/projects", answers.ProjectWithWarnings, json=body)["project"])

    def import_dataset(self, project_id: int, dataset: str | Path, format: str | None = None) -> list[str]:
        """Add a dataset's annotations (on the server's disk) to the project's images;
        predictions keep their scores. Returns the server's warnings."""
        body = {"dataset": str(dataset), **({"format": format} if format else {})}
        path = f"/projects/{project_id}/import"
        return self._json("POST", path, answers.ProjectWithWarnings, json=body)["warnings"]

    def export(self, project_id: int, format: str, to: str | Path) -> Path:
        """Download the project's annotations in ``format`` (any name ``fewclick data
        convert --to`` takes) to the file ``to`` (a .json for coco, else a .zip)."""
        response = self.request("GET", f"/projects/{project_id}/export", params={"format": format})
        path = Path(to)
        path.write_bytes(response.content)
        return path

    # ----------------------------------------------------------------------- images
    def images(self, project_id: int) -> list[Image]:
        return [Image.of(i) for i in self._json("GET", f"/projects/{project_id}/images", list[answers.Image])]

    def image(self, image_id: int) -> Image:
        """The image with its annotations."""
        return Image.of(self._json("GET", f"/images/{image_id}", answers.OpenImage))

    def upload(self, project_id: int, path: str | Path) -> Image:
        path = Path(path)
        with open(path, "rb") as f:
            return Image.of(
                self._json(
                    "POST", f"/projects/{project_id}/images", answers.Image, files={"file": (path.name, f)}
                )
            )

    def set_status(self, image_id: int, status: str, empty: bool = False) -> Image:
        """Move the image to ``in_progress``, ``done`` or ``reviewed``, as the user's role may
        (``fewclick.server.store.MOVES``); an annotator's finishing an image may start a
        training job by itself (the answer's ``raw["job"]``). An image with no objects is
        finished only with ``empty`` (it teaches the detector that nothing is there)."""
        body = {"status": status, "empty": empty}
        return Image.of(self._json("PATCH", f"/images/{image_id}", answers.MovedImage, json=body))

    # ----------------------------------------------------------------------- annotations
    def save(
        self,
        image_id: int,
        create: Iterable[dict] = (),
        delete: Iterable[int] = (),
        revision: int | None = None,
    ) -> Image:
        """Create and delete annotations of one image in one transaction; returns the image
        as saved.

        ``revision`` is the image's revision you last saw (the server refuses the change
        when someone changed the image since); None reads it first."""
        if revision is None:
            revision = self.image(image_id).revision
        body = {"revision": revision, "create": list(create), "delete": list(delete)}
        self._json("POST", f"/images/{image_id}/annotations/batch", answers.BatchSaved, json=body)
        return self.image(image_id)

    def update_annotation(self, annotation_id: int, revision: int, **fields: Any) -> Annotation:
        """Change an annotation's ``class_id``, ``kind``, ``geometry`` or ``review``."""
        body = {**fields, "revision": revision}
        saved = self._json("PATCH", f"/annotations/{annotation_id}", answers.AnnotationSaved, json=body)
        return Annotation.of(saved["annotation"])

    # ----------------------------------------------------------------------- assistance
    def detect(self, image_id: int, clicks: Sequence[tuple[float, float, int]] = ()) -> list[Annotation]:
        """Click-to-detect: the objects the clicks ``(x, y, class id)`` ask for (none: the
        trained detector's pre-annotation), as proposals to save with :meth:`save`."""
        body = {"clicks": [list(c) for c in clicks]}
        found, raw = self._answer("POST", f"/images/{image_id}/detect", answers.Detected, json=body)
        rboxes = found.rboxes or [None] * len(found.boxes)
        out = []
        for box, rbox, label, score in zip(found.boxes, rboxes, found.labels, found.scores, strict=True):
            kind, geometry = ("box", {"box": box}) if rbox is None else ("rbox", {"rbox": rbox, "box": box})
            out.append(Annotation(None, label, kind, geometry, score, raw))
        return out

    def segment(
        self,
        image_id: int,
        box: tuple[float, float, float, float],
        clicks: Sequence[tuple[float, float, bool]] = (),
    ) -> Annotation:
        """Box-to-mask with corrective clicks ``(x, y, positive)``: one mask proposal."""
        body = {"box": list(box), "clicks": [list(c) for c in clicks]}
        found, raw = self._answer("POST", f"/images/{image_id}/segment", answers.Segmented, json=body)
        geometry = {"mask": raw["mask"], **({"box": found.box} if found.box else {})}
        return Annotation(None, None, "mask", geometry, found.score, raw)

    # ----------------------------------------------------------------------- jobs
    def train(self, project_id: int) -> Job:
        return Job.of(self._json("POST", f"/projects/{project_id}/train", answers.Job, json={}))

    def job(self, job_id: int) -> Job:
        return Job.of(self._json("GET", f"/jobs/{job_id}", answers.Job))

    def jobs(self, project_id: int) -> list[Job]:
        return [Job.of(j) for j in self._json("GET", f"/projects/{project_id}/jobs", list[answers.Job])]

    def wait(self, job: Job | int, timeout: float = 3600.0, poll: float = 2.0) -> Job:
        """Poll a job until it is done or failed; TimeoutError after ``timeout`` seconds."""
        job_id = job if isinstance(job, int) else job.id
        deadline = time.monotonic() + timeout
        while True:
            current = self.job(job_id)
            if current.finished:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {current.status} after {timeout:.0f} s")
            time.sleep(poll)
