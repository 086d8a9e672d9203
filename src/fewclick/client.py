"""A small typed Python client for fewclick's HTTP API.

    from fewclick.client import Client

    api = Client("http://localhost:8000", token)         # fewclick token create NAME
    project = api.create_project("cells", folder="/data/cells", classes=["nucleus"])
    image = api.images(project.id)[0]
    found = api.detect(image.id, clicks=[(120, 88, project.classes[0].id)])
    api.save(image.id, create=[proposal.to_new() for proposal in found])
    api.export(project.id, "yolo-seg", "cells_yolo.zip")

Every call raises :class:`ApiError` with the server's own message when the request is
refused (``ApiError.status`` is the HTTP status). Records are frozen dataclasses; ``raw``
keeps the whole JSON answer for fields this client does not name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Client", "ApiError", "Project", "ProjectClass", "Image", "Annotation", "Job"]

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """A request the server refused: ``status`` and the server's ``detail``."""

    def __init__(self, status: int, detail: Any, method: str, path: str) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"{method} {path}: {status}: {detail}")


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
        classes = [ProjectClass(c["id"], c["name"], c.get("color", ""), c) for c in data.get("classes", [])]
        return cls(data["id"], data["name"], classes, int(data.get("images", 0) or 0), data)

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
        return cls(
            data.get("id"), data.get("class_id"), data["kind"], data["geometry"], data.get("score"), data
        )

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
        anns = [Annotation.of(a) for a in given] if isinstance(given, list) else []
        return cls(
            data["id"],
            data["file_name"],
            data["width"],
            data["height"],
            data.get("status", ""),
            data.get("revision", 0),
            anns,
            data,
        )


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    status: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict) -> Job:
        return cls(data["id"], data.get("kind", ""), data["status"], data)

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

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self.request(method, path, **kwargs).json()

    # ----------------------------------------------------------------------- projects
    def projects(self) -> list[Project]:
        return [Project.of(p) for p in self._json("GET", "/projects")]

    def project(self, project_id: int) -> Project:
        return Project.of(self._json("GET", f"/projects/{project_id}"))

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
        return Project.of(self._json("POST", "/projects", json=body)["project"])

    def import_dataset(self, project_id: int, dataset: str | Path, format: str | None = None) -> list[str]:
        """Add a dataset's annotations (on the server's disk) to the project's images;
        predictions keep their scores. Returns the server's warnings."""
        body = {"dataset": str(dataset), **({"format": format} if format else {})}
        return self._json("POST", f"/projects/{project_id}/import", json=body)["warnings"]

    def export(self, project_id: int, format: str, to: str | Path) -> Path:
        """Download the project's annotations in ``format`` (any name ``fewclick data
        convert --to`` takes) to the file ``to`` (a .json for coco, else a .zip)."""
        response = self.request("GET", f"/projects/{project_id}/export", params={"format": format})
        path = Path(to)
        path.write_bytes(response.content)
        return path

    # ----------------------------------------------------------------------- images
    def images(self, project_id: int) -> list[Image]:
        return [Image.of(i) for i in self._json("GET", f"/projects/{project_id}/images")]

    def image(self, image_id: int) -> Image:
        """The image with its annotations."""
        return Image.of(self._json("GET", f"/images/{image_id}"))

    def upload(self, project_id: int, path: str | Path) -> Image:
        path = Path(path)
        with open(path, "rb") as f:
            return Image.of(
                self._json("POST", f"/projects/{project_id}/images", files={"file": (path.name, f)})
            )

    def set_status(self, image_id: int, status: str) -> Image:
        """Move the image to ``in_progress``, ``done`` or ``reviewed``, as the user's role may
        (``fewclick.server.store.MOVES``); an annotator's finishing an image may start a
        training job by itself (the answer's ``raw["job"]``)."""
        return Image.of(self._json("PATCH", f"/images/{image_id}", json={"status": status}))

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
        self._json("POST", f"/images/{image_id}/annotations/batch", json=body)
        return self.image(image_id)

    def update_annotation(self, annotation_id: int, revision: int, **fields: Any) -> Annotation:
        """Change an annotation's ``class_id``, ``kind``, ``geometry`` or ``review``."""
        body = {**fields, "revision": revision}
        return Annotation.of(self._json("PATCH", f"/annotations/{annotation_id}", json=body)["annotation"])

    # ----------------------------------------------------------------------- assistance
    def detect(self, image_id: int, clicks: Sequence[tuple[float, float, int]] = ()) -> list[Annotation]:
        """Click-to-detect: the objects the clicks ``(x, y, class id)`` ask for (none: the
        trained detector's pre-annotation), as proposals to save with :meth:`save`."""
        body = {"clicks": [list(c) for c in clicks]}
        found = self._json("POST", f"/images/{image_id}/detect", json=body)
        rboxes = found.get("rboxes") or [None] * len(found["boxes"])
        out = []
        for box, rbox, label, score in zip(
            found["boxes"], rboxes, found["labels"], found["scores"], strict=True
        ):
            kind, geometry = ("box", {"box": box}) if rbox is None else ("rbox", {"rbox": rbox, "box": box})
            out.append(Annotation(None, label, kind, geometry, score, found))
        return out

    def segment(
        self,
        image_id: int,
        box: tuple[float, float, float, float],
        clicks: Sequence[tuple[float, float, bool]] = (),
    ) -> Annotation:
        """Box-to-mask with corrective clicks ``(x, y, positive)``: one mask proposal."""
        body = {"box": list(box), "clicks": [list(c) for c in clicks]}
        found = self._json("POST", f"/images/{image_id}/segment", json=body)
        geometry = {"mask": found["mask"], **({"box": found["box"]} if found.get("box") else {})}
        return Annotation(None, None, "mask", geometry, found.get("score"), found)

    # ----------------------------------------------------------------------- jobs
    def train(self, project_id: int) -> Job:
        return Job.of(self._json("POST", f"/projects/{project_id}/train", json={}))

    def job(self, job_id: int) -> Job:
        return Job.of(self._json("GET", f"/jobs/{job_id}"))

    def jobs(self, project_id: int) -> list[Job]:
        return [Job.of(j) for j in self._json("GET", f"/projects/{project_id}/jobs")]

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
