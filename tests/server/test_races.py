"""Writes that race on one image revision, against a real server (uvicorn in a thread, its
sync routes on a thread pool, one database session each): of two writes made on the same
revision exactly one is saved and the other gets 409, never a 500 and never both."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from benchmarks._browser import live_server
from clients import auth_headers

from fewclick.data.synthetic import make_dataset
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

PAIRS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app served on a free loopback port: (base URL, app)."""
    home = tmp_path_factory.mktemp("races")
    make_dataset("aerial", 2, seed=7, width=96, height=64, out_dir=home / "aerial")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    with live_server(app) as base:
        yield base, app


@pytest.fixture
def image(server, request):
    """A new project's first image: (clients, image id, class id), two clients of the
    server, connected, each to be driven from a thread of its own."""
    base, app = server
    clients = [httpx.Client(base_url=base, headers=auth_headers(app), timeout=60) for _ in range(2)]
    body = {
        "name": request.node.name,
        "folder": str(app.state.settings.data_dir.parent / "aerial" / "images"),
    }
    project = clients[0].post("/api/projects", json=body).json()["project"]
    for c in clients:  # the connections are open before the writes race
        c.get("/api/projects").raise_for_status()
    image = clients[0].get(f"/api/projects/{project['id']}/images").json()[0]["id"]
    yield clients, image, project["classes"][0]["id"]
    for c in clients:
        c.close()


def _together(clients, requests) -> list[httpx.Response]:
    """Send ``requests[k]`` (method, url, keyword arguments) with ``clients[k]``, all at once."""
    barrier = threading.Barrier(len(requests))

    def send(client, req):
        method, url, kwargs = req
        barrier.wait()
        return client.request(method, url, **kwargs)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, clients, requests))


def test_of_two_batches_on_one_revision_one_is_saved_and_the_other_is_409(image):
    clients, image_id, cls = image
    url = f"/api/images/{image_id}/annotations/batch"
    for revision in range(PAIRS):
        bodies = [
            {"revision": revision, "create": [{"class_id": cls, "geometry": {"box": [k, k, k + 20, k + 20]}}]}
            for k in (1, 2)
        ]
        answers = _together(clients, [("POST", url, {"json": b}) for b in bodies])
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200, 409], [r.text for r in answers]
        winner = next(r for r in answers if r.status_code == 200)
        assert winner.json()["revision"] == revision + 1
    saved = clients[0].get(f"/api/images/{image_id}").json()
    assert saved["revision"] == PAIRS, "the revision went up by exactly one a pair"
    assert len(saved["annotations"]) == PAIRS, "one box a pair: the refused write left nothing"


def test_a_delete_and_a_change_of_one_annotation_at_once_are_never_a_500(image):
    clients, image_id, cls = image
    for revision in range(0, 2 * PAIRS // 3, 2):
        box = {"class_id": cls, "geometry": {"box": [5, 5, 30, 30]}}
        r = clients[0].post(f"/api/images/{image_id}/annotations", json=box, params={"revision": revision})
        ann = r.json()["annotation"]["id"]
        url = f"/api/annotations/{ann}"
        delete = ("DELETE", url, {"params": {"revision": revision + 1}})
        patch = ("PATCH", url, {"json": {"revision": revision + 1, "review": "accepted"}})
        deleted, patched = _together(clients, [delete, patch])
        statuses = {deleted.status_code, patched.status_code}
        assert statuses in ({200, 409}, {200, 404}), (deleted.text, patched.text)
        left = [a for a in clients[0].get(f"/api/images/{image_id}").json()["annotations"] if a["id"] == ann]
        if deleted.status_code == 200:
            assert left == []
        else:
            assert [a["review"] for a in left] == ["accepted"]
