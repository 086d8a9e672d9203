"""SAM's proposals in the page (issue 52), in real headless Chromium: once an image of the
project is finished, an image nobody started opens with the proposals like its objects, as
soon as the worker has made them (the page follows its preparation until then); a project
with no finished image opens without asking; the panel says what the boxes were matched to.

No model runs: the page's prepare and detect requests are answered by the test, which
records what the page asked.
"""

import json

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two projects of the same three images: one with its first image finished, one with none."""
    home = tmp_path_factory.mktemp("browser-proposals")
    (home / "images").mkdir()
    for k in range(3):
        PILImage.fromarray(np.full((90, 120, 3), 40 + 40 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    PILImage.fromarray(np.full((500, 1000, 3), 90, np.uint8)).save(home / "images" / "im3_dense.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        projects = []
        for name in ("finished one", "none finished"):
            body = {"name": name, "folder": str(home / "images"), "classes": ["cell", "debris"]}
            projects.append(api.post("/api/projects", json=body).json()["project"])
        first = api.get(f"/api/projects/{projects[0]['id']}/images").json()[0]
        cell = projects[0]["classes"][0]["id"]
        body = {"revision": 0, "create": [{"class_id": cell, "geometry": {"box": [5, 5, 25, 25]}}]}
        assert api.post(f"/api/images/{first['id']}/annotations/batch", json=body).is_success
        assert api.patch(f"/api/images/{first['id']}", json={"status": "done"}).is_success
        yield base, api, projects


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.detect_bodies, page.prepares = [], 0
        page.route("**/api/images/*/prepare", lambda route: _prepared(page, route))
        page.route("**/api/images/*/detect", lambda route: _detected(page, route))
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _prepared(page, route) -> None:
    """The embedding at once; the proposals "making" for the first two asks, then "ready"."""
    page.prepares += 1
    state = "making" if page.prepares <= 2 else "ready"
    route.fulfill(
        json={"ready": True, "needs_sam": True, "backend": "sam", "chosen_by": "measured", "proposals": state}
    )


def _detected(page, route) -> None:
    """Three look-alikes of the finished image's cells, one under the cell class's threshold
    (feature similarity's answer, the same boxes, while the proposals are being made)."""
    body = json.loads(route.request.post_data)
    page.detect_bodies.append(body)
    cell = page.classes[0]
    if getattr(page, "dense", False):
        return route.fulfill(json=_dense(cell))
    thumbnails = [] if getattr(page, "removed", False) else page.exemplars
    route.fulfill(
        json={
            "method": "look-alikes" if page.prepares > 2 else "training-free",
            "boxes": [[10, 10, 30, 30], [50, 20, 70, 40], [80, 50, 100, 70]],
            "scores": [0.8, 0.6, 0.2], "labels": [cell] * 3, "rboxes": None, "fitted_classes": [],
            "tight_classes": [], "model_version": None, "min_score": None, "min_scores": {str(cell): 0.5},
            "look_alike_limit": 3, "proposals": {
                "state": "ready", "made": 7, "shown": 2, "unboxed": [], "threshold": 0.5,
                "exemplars": len(thumbnails), "exemplar_boxes": thumbnails,
            },
        }
    )  # fmt: skip


DENSE = [
    [10 * (k % 100) + 1, 10 * (k // 100) + 1, 10 * (k % 100) + 9, 10 * (k // 100) + 9] for k in range(5000)
]


def _dense(cell: int) -> dict:
    """5,000 look-alikes, 8 px cells 10 px apart, as on an image of a dense crowd of cells."""
    return {
        "method": "look-alikes", "boxes": DENSE, "scores": [0.9] * len(DENSE), "labels": [cell] * len(DENSE),
        "rboxes": None, "fitted_classes": [], "tight_classes": [], "model_version": None, "min_score": None,
        "min_scores": {str(cell): 0.5}, "look_alike_limit": None, "proposals": {
            "state": "ready", "made": len(DENSE), "shown": len(DENSE), "unboxed": [], "threshold": 0.5,
            "exemplars": 1, "exemplar_boxes": [],
        },
    }  # fmt: skip


def _open(page, base: str, image_id: int) -> None:
    page.keyboard.press("Escape")  # the proposals an earlier test left: leaving would ask first
    page.goto(f"{base}/#/image/{image_id}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")


def test_once_an_image_is_finished_the_next_opens_with_the_proposals_like_its_objects(server, page):
    base, api, (finished, _) = server
    page.classes = [c["id"] for c in finished["classes"]]
    page.detect_bodies.clear()
    page.prepares = 0
    first, second = api.get(f"/api/projects/{finished['id']}/images").json()[:2]
    cell = api.get(f"/api/images/{first['id']}").json()["annotations"][0]
    thumbnail = {"annotation_id": cell["id"], "image_id": first["id"], "class_id": cell["class_id"]}
    page.exemplars = [{**thumbnail, "box": [5, 5, 25, 25]}]
    _open(page, base, second["id"])
    page.wait_for_function("() => fewclickTest.detect.result", timeout=15000)
    assert page.prepares >= 3, "the page followed the proposals until they were made"
    assert page.detect_bodies == [{"clicks": []}], "asked once they were ready, without a click"
    assert page.evaluate("() => fewclickTest.shownProposals().length") == 2, "from the class's own score"
    said = page.inner_text("#boxes-from")
    assert "SAM's proposals of this image (7 made), matched to 1 object of your finished images" in said
    status = page.inner_text("#detect-status")
    assert status.startswith("2 proposals shown on open, like 1 object of your 1 finished image:"), status
    assert page.locator("#exemplars canvas").count() == 1, "the finished cell, as a thumbnail"
    page.removed = True  # the answers after the removal: matched to nothing
    page.click("#exemplars button")
    page.wait_for_function("() => !document.querySelector('#exemplars canvas')")
    assert page.detect_bodies == [{"clicks": []}, {"clicks": []}], "asked again without it"
    assert api.get(f"/api/images/{first['id']}").json()["annotations"][0]["exemplar"] is False
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    assert page.errors == []


def test_a_project_with_no_finished_image_opens_without_asking(server, page):
    base, api, (_, none) = server
    page.detect_bodies.clear()
    page.prepares = 0
    image = api.get(f"/api/projects/{none['id']}/images").json()[0]
    _open(page, base, image["id"])
    page.wait_for_function(
        "() => fewclickTest.prep && fewclickTest.prep.proposals === 'ready'", timeout=15000
    )
    page.wait_for_timeout(500)  # a request would have left with the proposals made
    assert page.detect_bodies == [] and page.evaluate("() => fewclickTest.detect.result") is None
    assert page.errors == []


def test_a_click_answered_before_the_proposals_were_made_is_asked_again_once_they_are(server, page):
    base, api, (_, none) = server
    page.classes = [c["id"] for c in none["classes"]]
    page.detect_bodies.clear()
    page.prepares = 0
    image = api.get(f"/api/projects/{none['id']}/images").json()[1]
    _open(page, base, image["id"])
    page.mouse.click(*screen(page, 20, 20))
    page.wait_for_function("() => fewclickTest.detect.result?.method === 'look-alikes'", timeout=15000)
    assert len(page.detect_bodies) == 2 and page.detect_bodies[0] == page.detect_bodies[1], (
        "the same click again"
    )
    assert "now made" in page.inner_text("#message")
    assert page.errors == []


def test_five_thousand_look_alikes_are_accepted_under_the_request_caps_and_undone_at_once(server, page):
    base, api, (finished, _) = server
    page.classes = [c["id"] for c in finished["classes"]]
    dense = next(
        im for im in api.get(f"/api/projects/{finished['id']}/images").json() if "dense" in im["file_name"]
    )
    saves = []
    page.on("request", lambda r: saves.append(r) if r.url.endswith("/annotations/batch") else None)
    page.dense = True
    try:
        _open(page, base, dense["id"])
        page.wait_for_function("() => fewclickTest.detect.result", timeout=90000)
        assert page.evaluate("() => fewclickTest.shownProposals().length") == 5000
        assert page.inner_text("#detect-status").startswith("5000 proposals shown on open")
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.anns.size === 5000", timeout=120000)
        sizes = [len(json.loads(r.post_data)["create"]) for r in saves]
        assert sum(sizes) == 5000 and max(sizes) <= 1000, "split under the server's 1,000 creates a request"
        assert len(api.get(f"/api/images/{dense['id']}").json()["annotations"]) == 5000
        page.keyboard.press("Control+z")  # one step takes all 5,000 back
        page.wait_for_function("() => fewclickTest.anns.size === 0", timeout=120000)
        assert api.get(f"/api/images/{dense['id']}").json()["annotations"] == []
    finally:
        page.dense = False
    assert page.errors == []
