"""Caps on everything a client sends: name lengths, events and creates per request, the
body size of every route, and image pixels before decoding. Each answer over a limit is a
413 or 422 that names the limit, and nothing already saved is lost."""

import json
import struct
import zlib

import numpy as np
import pytest
from clients import client_for
from PIL import Image as PILImage

from fewclick.io import images as io_images
from fewclick.io.images import ImageError, image_size
from fewclick.server import imports, limits
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An app without a model worker, a project of one 40 x 30 image and a class."""
    home = tmp_path_factory.mktemp("limits")
    folder = home / "data" / "photos"
    folder.mkdir(parents=True)
    PILImage.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(folder / "a.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False)
    with client_for(app) as client:
        r = client.post("/api/projects", json={"name": "p", "folder": str(folder), "classes": ["car"]})
        assert r.status_code == 201, r.text[:300]
        project = r.json()["project"]
        image = client.get(f"/api/projects/{project['id']}/images").json()[0]
        yield client, project, image


def _detail(r) -> str:
    return json.dumps(r.json()["detail"])


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header says ``width x height`` (and whose pixels are missing): enough
    for a reader that looks at the header, a failure for one that decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "route, body",
    [
        ("/api/projects", {"name": "x" * (limits.MAX_NAME + 1)}),
        ("/api/projects", {"name": "q", "classes": ["y" * (limits.MAX_NAME + 1)]}),
        ("/api/projects/{project}/classes", {"name": "z" * 1_000_000}),
    ],
)
def test_a_name_over_the_limit_is_a_422_naming_it(site, route, body):
    client, project, _ = site
    r = client.post(route.format(project=project["id"]), json=body)
    assert r.status_code == 422 and str(limits.MAX_NAME) in _detail(r), r.text[:300]
    assert [c["name"] for c in client.get(f"/api/projects/{project['id']}").json()["classes"]] == ["car"]


@pytest.mark.parametrize(
    "route, body",
    [
        ("/api/projects/{project}/classes", {"name": "z" * 1_000_000}),
        ("/api/projects/{project}/events", [{"action": "click"}] * 200_000),
    ],
    ids=["a 1 MB name", "200,000 events"],
)
def test_a_422_does_not_send_a_large_input_back(site, route, body):
    client, project, _ = site
    r = client.post(route.format(project=project["id"]), json=body)
    assert r.status_code == 422 and len(r.content) < 2000, (r.status_code, len(r.content))
    assert "items" in r.text or "characters" in r.text, r.text


def test_a_short_refused_input_is_shown_back(site):
    client, project, _ = site
    r = client.post(f"/api/projects/{project['id']}/classes", json={"name": "a", "key": 12})
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == 12, r.text


def test_a_class_renamed_over_the_limit_is_a_422_naming_it(site):
    client, project, _ = site
    r = client.patch(
        f"/api/classes/{project['classes'][0]['id']}", json={"name": "c" * (limits.MAX_NAME + 1)}
    )
    assert r.status_code == 422 and str(limits.MAX_NAME) in _detail(r), r.text[:300]


def test_more_events_than_the_limit_in_one_post_are_a_422_naming_it_and_none_is_logged(site):
    client, project, _ = site
    url = f"/api/projects/{project['id']}/events"
    before = len(client.get(url).json())
    r = client.post(url, json=[{"action": "click"}] * (limits.MAX_EVENTS_PER_POST + 1))
    assert r.status_code == 422 and str(limits.MAX_EVENTS_PER_POST) in _detail(r), r.text[:300]
    assert len(client.get(url).json()) == before
    assert client.post(url, json=[{"action": "click"}] * limits.MAX_EVENTS_PER_POST).status_code == 201


def test_more_creates_than_the_limit_in_one_batch_are_a_422_naming_it(site):
    client, project, image = site
    revision = client.get(f"/api/images/{image['id']}").json()["revision"]  # other tests save too
    box = {"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [1, 1, 5, 5]}}
    body = {"revision": revision, "create": [box] * (limits.MAX_CREATES + 1)}
    r = client.post(f"/api/images/{image['id']}/annotations/batch", json=body)
    assert r.status_code == 422 and str(limits.MAX_CREATES) in _detail(r), r.text[:300]
    assert client.get(f"/api/images/{image['id']}").json()["revision"] == revision


@pytest.mark.parametrize("declared", [True, False])
def test_a_json_body_over_the_limit_is_a_413_naming_it_on_any_route(site, declared):
    client, project, _ = site
    body = json.dumps([{"action": "x", "detail": {"pad": "p" * 2**20}}] * 9).encode()
    assert len(body) > limits.MAX_JSON_BYTES
    url = f"/api/projects/{project['id']}/events"
    content = body if declared else iter([body[i : i + 2**16] for i in range(0, len(body), 2**16)])
    r = client.post(url, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and f"{limits.MAX_JSON_BYTES / 2**20:g} MB" in r.json()["detail"], r.text[
        :300
    ]


def test_routes_that_carry_masks_take_a_larger_body(site):
    client, project, image = site
    padding = "p" * (limits.MAX_JSON_BYTES + 2**20)  # over the JSON limit, under the masks' one
    body = {"revision": image["revision"], "create": [], "delete": [], "pad": padding}
    r = client.post(f"/api/images/{image['id']}/annotations/batch", json=body)
    assert r.status_code != 413, "refused for its content (an unknown field), not its size"


def test_an_image_over_the_upload_pixel_limit_is_a_413_before_it_is_decoded(site, monkeypatch):
    client, project, _ = site

    def never(*_args, **_kwargs):
        raise AssertionError("decoded an image over the limit")

    monkeypatch.setattr(imports, "load_image", never)
    content = _png_header(20000, 20000)
    r = client.post(
        f"/api/projects/{project['id']}/images", files={"file": ("huge.png", content, "image/png")}
    )
    assert r.status_code == 413, r.text[:300]
    assert f"{imports.MAX_UPLOAD_PIXELS:,}" in r.json()["detail"] and "huge.png" in r.json()["detail"]
    assert [im["file_name"] for im in client.get(f"/api/projects/{project['id']}/images").json()] == ["a.png"]


def test_pillow_refuses_decompression_bombs_itself_and_we_name_the_file(tmp_path):
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS == io_images.DEFAULT_MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(40000, 40000))  # over twice Pillow's limit: its error, not a warning
    with pytest.raises(ImageError, match="bomb.png"):
        image_size(path, max_pixels=10**10)


def test_more_deletes_than_the_limit_in_one_batch_are_a_422_and_an_id_twice_is_deleted_once(site):
    client, project, image = site
    url = f"/api/images/{image['id']}/annotations/batch"
    revision = client.get(f"/api/images/{image['id']}").json()["revision"]
    body = {"revision": revision, "delete": [1] * (limits.MAX_DELETES + 1)}
    r = client.post(url, json=body)
    assert r.status_code == 422 and f"{limits.MAX_DELETES:,}".replace(",", "") in _detail(r), r.text[:300]
    box = {"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [1, 1, 5, 5]}}
    made = client.post(url, json={"revision": revision, "create": [box]}).json()
    ann = made["created"][0]["id"]
    r = client.post(url, json={"revision": made["revision"], "delete": [ann] * 3})
    assert r.status_code == 200 and r.json()["deleted"] == [ann], r.text[:300]


def test_an_event_detail_over_the_limit_is_a_422_naming_it_and_none_is_logged(site):
    client, project, _ = site
    url = f"/api/projects/{project['id']}/events"
    before = len(client.get(url).json())
    events = [{"action": "click"}, {"action": "click", "detail": {"pad": "p" * limits.MAX_EVENT_DETAIL}}]
    r = client.post(url, json=events)
    assert r.status_code == 422 and f"{limits.MAX_EVENT_DETAIL:,} characters" in _detail(r), r.text[:300]
    assert len(client.get(url).json()) == before


@pytest.mark.parametrize("field", ["status", "role", "upload"])
def test_a_long_refused_text_is_not_sent_back_whole(site, field):
    client, project, image = site
    text = "x" * 1_000_000
    if field == "status":
        r = client.patch(f"/api/images/{image['id']}", json={"status": text})
    elif field == "role":
        body = {"name": f"ann-{field}", "role": "annotator", "password": "a long password"}
        user = client.post("/api/users", json=body).json()["id"]
        r = client.put(f"/api/projects/{project['id']}/members/{user}", json={"role": text})
    else:  # folders and a control character: the name as sent is in the message
        text = "d/" * 2000 + "a\x7f.png"
        r = client.post(f"/api/projects/{project['id']}/images", files={"file": (text, b"x", "image/png")})
    said = f"{len(text):,} characters"
    assert r.status_code == 400 and said in r.text and len(r.text) < 1000, r.text[:300]
