"""A project walked through the API as its person leaves it: images finished with their
reference boxes (after being prepared, as the page asks), and the background trainer's
rounds waited for. ``screenshots_trainer.py`` and ``click_latency.py`` share it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np


def prepared(api: httpx.Client, image: dict, timeout: float = 600) -> float:
    """Ask for the image's preparation (SAM's embedding) until it is ready, as the page polls;
    the seconds it took."""
    started = time.monotonic()
    while not api.post(f"/api/images/{image['id']}/prepare").raise_for_status().json()["ready"]:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"image {image['file_name']} was not encoded within {timeout:g} s")
        time.sleep(0.5)
    return time.monotonic() - started


def finish(api: httpx.Client, image: dict, gt, cls: dict) -> None:
    """The image is opened (prepared), its reference boxes become the user's own (ignore-type
    objects left out), and it is marked done."""
    prepared(api, image)
    keep = ~np.asarray(gt.ignore, bool)
    create = [
        {"class_id": cls[int(c)], "geometry": {"box": b.tolist()}}
        for b, c in zip(gt.boxes[keep], gt.labels[keep])
    ]
    revision = api.get(f"/api/images/{image['id']}").json()["revision"]
    body = {"revision": revision, "create": create}
    api.post(f"/api/images/{image['id']}/annotations/batch", json=body).raise_for_status()
    api.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": not create}).raise_for_status()


def wait_for_round(data: Path, pid: int, finished: int, timeout: float) -> dict | None:
    """The trainer's newest round once one has trained (and been scored) on the ``finished``
    images so far (the app's folder ``data``); None (and a line saying so) if none did
    within ``timeout`` seconds."""
    state = data / "models" / str(pid) / "trainer" / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.is_file():
            rounds = json.loads(state.read_text())["rounds"]
            if rounds and rounds[-1]["train_images"] + len(rounds[-1].get("scored", [])) >= finished:
                return {k: v for k, v in rounds[-1].items() if k != "path"}
        time.sleep(10)
    print(f"after {finished} finished images: no round within {timeout:g} s", flush=True)
    return None


def with_server(work: Path, data: Path | None, walk, roots: list[Path] | None = None):
    """``walk(server)`` against ``fewclick serve`` in ``work`` (reading datasets beside
    ``data``, or in ``roots``), stopped afterwards; a SIGTERM or SIGINT stops it too, with its
    trainer, and then this process (:func:`_server.stop_on_signals`)."""
    from _server import ServerProcess, stop_on_signals

    server = ServerProcess(work, data_roots=roots or [data.resolve().parent])
    with stop_on_signals():
        server.start()
        try:
            return walk(server)
        finally:
            server.stop()


def report_walk(seen: dict, path: Path) -> None:
    """What a walk saw, written as JSON at ``path`` and printed."""
    path.write_text(json.dumps(seen, indent=1) + "\n")
    print(json.dumps(seen, indent=1))
    print(f"wrote {path}")


def reference_project(server, data: Path, name: str, user: tuple[str, str]) -> tuple[httpx.Client, dict]:
    """A client of a new admin ``user`` (name, password) and a project of ``data``'s images
    with its annotations as hidden reference, which never trains by itself."""
    api = httpx.Client(base_url=server.base, headers=server.add_user(user[0], "admin", user[1]), timeout=900)
    body = {"name": name, "dataset": str(data.resolve()), "reference": True}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    api.patch(
        f"/api/projects/{project['id']}", json={"auto_train_every": 0, "queue_train_every": 0}
    ).raise_for_status()
    return api, project


def project_truth(api: httpx.Client, project: dict, data: Path) -> tuple[dict, dict, dict]:
    """What a walk of ``project`` (made of ``data``) goes by: the reference objects and the
    project's images, both by file name, and the class ids by position."""
    from fewclick.io import read_dataset

    truth = {r.file_name: r.objects for r in read_dataset(data).images}
    listed = api.get(f"/api/projects/{project['id']}/images").json()
    images = {im["file_name"]: im for im in listed}
    return truth, images, {c["position"]: c["id"] for c in project["classes"]}
