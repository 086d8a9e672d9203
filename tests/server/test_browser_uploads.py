"""Annotation files dropped on the project page or picked there, in real headless Chromium
(issue 53, item 5): a COCO file whose objects are of a class the project lacks names it and
asks; "Add them and import" adds the class and imports; "Skip" imports nothing; a malformed
file dropped beside an image is refused alone, naming the problem, and the image is added;
an upload whose connection breaks off imports nothing."""

import io
import json
import socket
import time
import uuid

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in
from clients import auth_headers, make_user
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"
W, H = 120, 90


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-uploads")
    (home / "images").mkdir()
    for k, name in enumerate(("a.png", "b.png")):
        PILImage.fromarray(np.full((H, W, 3), 50 + 60 * k, np.uint8)).save(home / "images" / name)
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        yield base, httpx.Client(base_url=base, headers=auth_headers(app)), home


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _project(server) -> dict:
    _, api, home = server
    body = {"name": f"p-{uuid.uuid4().hex[:8]}", "folder": str(home / "images"), "classes": ["cell"]}
    return api.post("/api/projects", json=body).json()["project"]


def _coco(boxes: list[tuple[str, str, list[float]]], categories: list[str]) -> bytes:
    """A COCO file of a.png and b.png: ``[(image name, class name, [x, y, w, h]), ...]``."""
    ids = {"a.png": 1, "b.png": 2}
    images = [{"id": k, "file_name": name, "width": W, "height": H} for name, k in ids.items()]
    anns = [
        {"id": k, "image_id": ids[name], "category_id": categories.index(cls) + 1, "bbox": box, "iscrowd": 0}
        for k, (name, cls, box) in enumerate(boxes, 1)
    ]
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(categories)]
    return json.dumps({"images": images, "annotations": anns, "categories": cats}).encode()


def _state(server, project) -> tuple[list[str], dict[str, list]]:
    """The project's class names and ``{image name: [(class name, box), ...]}``."""
    _, api, _ = server
    classes = {c["id"]: c["name"] for c in api.get(f"/api/projects/{project['id']}").json()["classes"]}
    boxes = {}
    for im in api.get(f"/api/projects/{project['id']}/images").json():
        anns = api.get(f"/api/images/{im['id']}").json()["annotations"]
        boxes[im["file_name"]] = sorted((classes[a["class_id"]], a["geometry"]["box"]) for a in anns)
    return list(classes.values()), boxes


def _open(page, base: str, project: dict) -> None:
    page.goto(f"{base}/#/project/{project['id']}")
    page.wait_for_selector(f".page[data-project='{project['id']}'] #upload-files", state="attached")


def _rows(page) -> list[tuple[str, str]]:
    """``(class, text)`` of every row of the upload list."""
    rows = page.eval_on_selector_all("#uploads li", "(li) => li.map((x) => [x.className, x.innerText])")
    return [tuple(r) for r in rows]


def test_a_coco_file_with_a_class_the_project_lacks_asks_then_adds_it_and_imports(server, page, tmp_path):
    base = server[0]
    project = _project(server)
    coco = tmp_path / "instances.json"
    boxes = [("a.png", "cell", [10, 10, 20, 20]), ("b.png", "tumour", [30, 20, 40, 30])]
    coco.write_bytes(_coco(boxes, ["cell", "tumour"]))
    _open(page, base, project)
    page.set_input_files("#upload-files", [str(coco)])
    page.wait_for_selector("#uploads li.asking")
    ((status, text),) = _rows(page)
    assert "classes not in the project: tumour" in text and "Add them and import" in text
    assert _state(server, project) == (["cell"], {"a.png": [], "b.png": []}), "nothing imported while it asks"
    page.click("#uploads li.asking .add-classes")
    page.wait_for_selector("#uploads li.imported")
    ((status, text),) = _rows(page)
    assert "2 annotations on 2 images imported; classes added: tumour" in text, text
    assert "Add them" not in text, "the question goes once answered"
    assert _state(server, project) == (
        ["cell", "tumour"],
        {"a.png": [("cell", [10, 10, 30, 30])], "b.png": [("tumour", [30, 20, 70, 50])]},
    )
    annotations = "() => [...document.querySelectorAll('#images tr')].map((r) => r.innerText)"
    page.wait_for_function(f"() => ({annotations})().filter((t) => /\\b1$/.test(t.trim())).length === 2")
    assert "instances.json: 2 annotations on 2 images imported" in page.inner_text("#message")
    assert page.errors == []


def test_skip_imports_nothing_and_a_malformed_file_is_refused_beside_an_image_added(server, page):
    base = server[0]
    project = _project(server)
    _open(page, base, project)
    files = {
        "c.png": ("image/png", list(_png_bytes(np.full((H, W, 3), 200, np.uint8)))),
        "cut.json": ("application/json", list(_coco([("a.png", "cell", [1, 1, 5, 5])], ["cell"])[:-30])),
        "more.json": ("application/json", list(_coco([("a.png", "mitosis", [1, 1, 5, 5])], ["mitosis"]))),
    }
    dropped = page.evaluate_handle(
        """(files) => { const t = new DataTransfer();
           for (const [name, [type, bytes]] of Object.entries(files))
             t.items.add(new File([new Uint8Array(bytes)], name, {type}));
           return t; }""",
        files,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    page.wait_for_function("() => document.querySelectorAll('#uploads li[class]').length === 3")
    rows = _rows(page)
    assert [c for c, _ in rows] == ["added", "refused", "asking"], rows
    assert "cut.json: expected valid JSON, got an error at line 1" in rows[1][1]
    assert "classes not in the project: mitosis" in rows[2][1]
    page.click("#uploads li.asking .skip-classes")
    page.wait_for_selector("#uploads li.skipped")
    assert "skipped: nothing imported" in _rows(page)[2][1]
    assert _state(server, project) == (["cell"], {"a.png": [], "b.png": [], "c.png": []})
    assert page.errors == []


def _png_bytes(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_an_annotation_upload_whose_connection_breaks_off_imports_nothing(server):
    base, api, home = server
    project = _project(server)
    content = _coco([("a.png", "cell", [10, 10, 20, 20])] * 2000, ["cell"])
    part = (
        b'--cut\r\nContent-Disposition: form-data; name="file"; filename="big.json"\r\n'
        b"Content-Type: application/json\r\n\r\n" + content[: len(content) // 2]
    )
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /api/projects/{project['id']}/import/upload HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {api.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: {len(part) + 50_000}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + part)  # then the connection closes, 50 kB short
    time.sleep(1)
    assert _state(server, project) == (["cell"], {"a.png": [], "b.png": []}), "nothing half imported"
    assert not list((home / "data").rglob(".annotations-*")), "no scratch file left"
    url = f"/api/projects/{project['id']}/import/upload"
    whole = api.post(url, files={"file": ("big.json", content, "application/json")})
    assert whole.status_code == 200 and whole.json()["annotations"] == 2000, "the server goes on"
