"""What a new user tripped on (issue 53), in real headless Chromium: one proposal rejected
or accepted at a time, a box drawn over several proposals, no silent empty submit, no work
lost by leaving the page, Reset view, and messages that go when their step is undone.

No model runs: a trained detector's version row points nowhere, and the page's detect and
prepare requests are answered by the test with fixed proposals.
"""

import json
import socket
import time

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user, serve_a_detector
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"

# the detector's proposals on open (120 x 90 images): a duplicate pair (B, B2) and an
# oversized box (F) around a 16 px object at (12, 62)-(28, 78)
A, B, B2, C, F = [10, 10, 30, 30], [50, 20, 70, 40], [51, 21, 71, 41], [80, 50, 100, 70], [2, 50, 38, 88]
D = [100, 72, 118, 88]  # what a click adds
OPEN = [A, B, B2, C, F]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A project with a trained detector serving (the version row points nowhere) and one
    without, each of the same four images."""
    home = tmp_path_factory.mktemp("browser-trips")
    (home / "images").mkdir()
    for k in range(4):
        PILImage.fromarray(np.full((90, 120, 3), 40 + 40 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        projects = []
        for name in ("served", "untrained"):
            body = {"name": name, "folder": str(home / "images"), "classes": ["cell"]}
            projects.append(api.post("/api/projects", json=body).json()["project"])
        serve_a_detector(app, projects[0]["id"], home / "none")
        yield base, api, projects


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.detect_bodies = []
        prepared = {"ready": True, "needs_sam": False}
        page.route("**/api/images/*/prepare", lambda route: route.fulfill(json=prepared))
        page.route("**/api/images/*/detect", lambda route: _detected(page, route, server[2][0]))
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _detected(page, route, project) -> None:
    body = json.loads(route.request.post_data)
    page.detect_bodies.append(body)
    boxes = OPEN + ([D] if body["clicks"] else [])
    label = project["classes"][0]["id"]
    answer = {"boxes": boxes, "scores": [0.9] * len(boxes), "labels": [label] * len(boxes), "rboxes": None}
    route.fulfill(json={**answer, "method": "scratch", "model_version": 1, "min_score": 0.5})


def _open(page, base: str, image_id: int, proposals: bool = True) -> None:
    url = f"{base}/#/image/{image_id}"
    page.keyboard.press("Escape")  # the last test's proposals dropped: leaving would ask first
    page.reload() if page.url == url else page.goto(url)
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")
    if proposals:
        page.wait_for_function("() => fewclickTest.detect.result && fewclickTest.detect.answered === 0")


def _images(api, project) -> list[dict]:
    return api.get(f"/api/projects/{project['id']}/images").json()


def _shown(page) -> list[list[float]]:
    boxes = "fewclickTest.detect.result.boxes"
    return page.evaluate(f"() => fewclickTest.shownProposals().map((i) => {boxes}[i])")


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _drag(page, box) -> None:
    """A box drawn from corner to corner, in image pixels."""
    page.mouse.move(*screen(page, box[0], box[1]))
    page.mouse.down()
    page.mouse.move(*screen(page, *_centre(box)), steps=3)
    page.mouse.move(*screen(page, box[2], box[3]), steps=3)
    page.mouse.up()


def _saved(page) -> list[list[float]]:
    return page.evaluate("() => [...fewclickTest.anns.values()].map((a) => a.geometry.box)")


def test_one_proposal_is_rejected_or_accepted_alone_and_undo_brings_it_back(server, page):
    base, api, (served, _) = server
    _open(page, base, _images(api, served)[0]["id"])
    assert _shown(page) == OPEN
    page.mouse.click(*screen(page, *_centre(A)), button="right")
    assert _shown(page) == [B, B2, C, F], "a right-click rejects the proposal under it"
    assert "proposal rejected" in page.inner_text("#message")
    page.mouse.move(*screen(page, *_centre(C)))
    page.keyboard.press("x")
    assert _shown(page) == [B, B2, F], "X rejects the proposal under the pointer"
    page.mouse.click(*screen(page, *_centre(B)))
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    assert _saved(page) == [B] and _shown(page) == [F], "a click accepts it alone (and hides its duplicate)"
    assert len(page.detect_bodies[-1]["clicks"]) == 0, "a click on a proposal is not a click-to-detect"
    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0")
    assert _shown(page) == [B, B2, F], "undone: shown again"
    # a click-to-detect elsewhere: the new answer holds A and C again, and they stay rejected
    page.mouse.click(*screen(page, 110, 10))
    page.wait_for_function("() => fewclickTest.detect.answered === 1")
    assert page.detect_bodies[-1]["clicks"][0][:2] == pytest.approx([110, 10], abs=1)
    cell = served["classes"][0]["id"]
    assert page.detect_bodies[-1]["rejected"] == [[*A, cell], [*C, cell]], "sent as negative exemplars"
    assert _shown(page) == [B, B2, F, D]
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 4")
    assert "4 proposals accepted" in page.inner_text("#message")
    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0")
    said = page.inner_text("#message")
    assert "undone: 4 objects accepted" in said and "Ctrl+Z takes them back" not in said, said
    assert page.errors == []


def test_a_box_drawn_over_proposals_of_its_class_replaces_them_all(server, page):
    base, api, (served, _) = server
    _open(page, base, _images(api, served)[1]["id"])
    _drag(page, [50, 20, 70, 40])
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    assert _shown(page) == [A, C, F], "both of the duplicate pair are replaced"
    assert "the 2 proposals under the box you drew are replaced by it" in page.inner_text("#message")
    _drag(page, [12, 62, 28, 78])
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    assert _shown(page) == [A, C], "a tight box inside an oversized proposal replaces it"
    assert page.errors == []


def test_an_image_with_no_objects_is_submitted_only_after_asking(server, page):
    base, api, (served, untrained) = server
    first, second = _images(api, untrained)[:2]
    _open(page, base, first["id"], proposals=False)
    asked = []

    def answer(dialog, accept):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.keyboard.press("s")
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('not submitted')")
    assert len(asked) == 1 and "Nothing to annotate here?" in asked[0]
    assert api.get(f"/api/images/{first['id']}").json()["status"] == "new", "nothing saved as finished"
    page.once("dialog", lambda d: answer(d, True))
    page.keyboard.press("s")
    page.wait_for_function(f"() => fewclickTest.image && fewclickTest.image.id === {second['id']}")
    assert len(asked) == 2 and api.get(f"/api/images/{first['id']}").json()["status"] == "done"
    # a project of images that may really be empty: no question
    assert api.patch(f"/api/projects/{untrained['id']}", json={"ask_empty": False}).is_success
    refuse = lambda d: answer(d, False)  # noqa: E731
    page.on("dialog", refuse)
    try:
        _open(page, base, second["id"], proposals=False)
        page.keyboard.press("s")
        page.wait_for_function(f"() => !fewclickTest.image || fewclickTest.image.id !== {second['id']}")
    finally:
        page.remove_listener("dialog", refuse)
    assert len(asked) == 2 and api.get(f"/api/images/{second['id']}").json()["status"] == "done"
    assert page.errors == []


def test_leaving_an_image_with_proposals_not_accepted_asks_first(server, page):
    base, api, (served, _) = server
    image = _images(api, served)[2]
    page.goto(f"{base}/#/project/{served['id']}")
    page.wait_for_selector("#images")
    _open(page, base, image["id"])
    asked = []

    def answer(dialog):
        asked.append((dialog.type, dialog.message))
        dialog.accept() if dialog.type == "beforeunload" else dialog.dismiss()

    page.on("dialog", answer)
    try:
        page.click("#crumbs a")  # the app's own link to the project
        page.wait_for_timeout(300)
        assert asked and asked[-1][0] == "confirm" and "5 proposals not accepted will be lost" in asked[-1][1]
        assert page.url.endswith(f"#/image/{image['id']}"), "kept: the address goes back to the image"
        page.go_back()  # the browser's back button
        page.wait_for_timeout(300)
        assert len(asked) == 2 and page.evaluate("() => fewclickTest.image.id") == image["id"]
        assert len(_shown(page)) == 5, "the proposals are still there"
        page.reload()  # a reload (or a closed tab) asks the browser's own question
        page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image['id']}")
        assert [t for t, _ in asked] == ["confirm", "confirm", "beforeunload"]
    finally:
        page.remove_listener("dialog", answer)
    assert page.errors == []


def test_reset_view_fits_the_image_again(server, page):
    base, api, (served, _) = server
    _open(page, base, _images(api, served)[3]["id"])
    fitted = page.evaluate("() => fewclickTest.view")
    page.evaluate("(v) => fewclickTest.setView({scale: v.scale * 3, ox: 0, oy: 0})", fitted)
    assert page.evaluate("() => fewclickTest.view")["scale"] == pytest.approx(3 * fitted["scale"])
    page.click("#look-reset")
    assert page.evaluate("() => fewclickTest.view") == pytest.approx(fitted)
    assert page.errors == []


def test_images_are_uploaded_in_the_page_each_file_with_its_own_answer(server, page, tmp_path):
    base, api, (_, untrained) = server
    good, other = tmp_path / "new.png", tmp_path / "cut.png"
    PILImage.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(good)
    PILImage.fromarray(np.full((30, 40, 3), 99, np.uint8)).save(other)
    other.write_bytes(other.read_bytes()[:60])  # cut off mid-file
    (tmp_path / "notes.txt").write_text("not an image")
    before = {im["file_name"] for im in _images(api, untrained)}
    page.keyboard.press("Escape")  # the proposals an earlier test left: leaving would ask first
    page.goto(f"{base}/#/project/{untrained['id']}")
    page.wait_for_selector("#upload-files", state="attached")
    page.set_input_files("#upload-files", [str(good), str(other), str(tmp_path / "notes.txt")])
    page.wait_for_function("() => document.querySelectorAll('#uploads li[class]').length === 3")
    rows = page.eval_on_selector_all("#uploads li", "(li) => li.map((x) => [x.className, x.innerText])")
    assert [c for c, _ in rows] == ["added", "refused", "refused"], rows
    assert "cut.png" in rows[1][1] and "not an image file" in rows[2][1]
    page.wait_for_function("() => document.querySelector('#images').innerText.includes('new.png')")
    counted = f"{len(before) + 1} images;"
    counts = "document.querySelector('#image-counts').textContent"
    page.wait_for_function(f"() => {counts}.startsWith('{counted}')")
    # the same file again, dropped this time: said once, not added twice
    data = list(good.read_bytes())
    dropped = page.evaluate_handle(
        """(bytes) => { const t = new DataTransfer();
           t.items.add(new File([new Uint8Array(bytes)], 'new.png', {type: 'image/png'})); return t; }""",
        data,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    page.wait_for_function("() => document.querySelectorAll('#uploads li[class]').length === 4")
    last = page.eval_on_selector_all("#uploads li", "(li) => [li.at(-1).className, li.at(-1).innerText]")
    assert last[0] == "skipped" and "the same file" in last[1]
    after = [im["file_name"] for im in _images(api, untrained)]
    assert set(after) == before | {"new.png"} and len(after) == len(before) + 1, "nothing else touched"
    assert page.errors == []


def test_an_empty_project_is_made_in_the_page_to_upload_into(server, page):
    base, api, _ = server
    page.keyboard.press("Escape")
    page.goto(f"{base}/#/")
    page.wait_for_selector("#new-project")
    page.fill("#new-project [name=name]", "uploads only")
    page.select_option("#new-project [name=from]", "empty")
    page.fill("#new-project [name=classes]", "person, car")
    page.click("#new-project button[type=submit]")
    page.wait_for_selector("#upload-files", state="attached")
    made = next(p for p in api.get("/api/projects").json() if p["name"] == "uploads only")
    assert made["images"] == 0 and made["source"] is None
    assert [c["name"] for c in api.get(f"/api/projects/{made['id']}").json()["classes"]] == ["person", "car"]
    assert page.errors == []


def test_an_upload_whose_connection_breaks_off_adds_nothing(server, tmp_path):
    base, api, (_, untrained) = server
    before = _images(api, untrained)
    png = tmp_path / "half.png"
    PILImage.fromarray(np.full((300, 400, 3), 50, np.uint8)).save(png)
    part = (
        b'--cut\r\nContent-Disposition: form-data; name="files"; filename="half.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png.read_bytes()[:2000]
    )
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /api/projects/{untrained['id']}/images HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {api.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: {len(part) + 50_000}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + part)  # then the connection closes, 50 kB short
    time.sleep(1)
    assert _images(api, untrained) == before, "no half image"
    assert api.get(f"/api/projects/{untrained['id']}").is_success, "the server goes on"
