"""The sweep of a large image in the page, in real headless Chromium: after a click in Detect
mode the page starts the sweep of the rest of the image with its view, follows it, and adds
the boxes it finds (but those the click's answer already has) to the proposals; Enter accepts
them all; Esc stops the sweep.

No model runs: the page's detect and sweep requests are answered by the test, which records
what the page asked.
"""

import json

import httpx
import numpy as np
import pytest
import tifffile
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user, serve_a_detector

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"
WIDTH, HEIGHT = 2600, 1000
CLICKED = [100, 100, 130, 130]
FOUND = [[100.5, 100.5, 130.5, 130.5], [2200, 400, 2230, 430], [1500, 800, 1530, 830], [900, 50, 930, 80]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-sweep")
    (home / "scene").mkdir()
    pixels = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    tifffile.imwrite(home / "scene" / "scene.tif", pixels, tile=(256, 256), photometric="rgb")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        body = {"name": "scene", "folder": str(home / "scene"), "classes": ["car"]}
        project = api.post("/api/projects", json=body).json()["project"]
        image = api.get(f"/api/projects/{project['id']}/images").json()[0]
        # a second project of the image whose trained detector serves (its row points nowhere)
        served = api.post("/api/projects", json={**body, "name": "served"}).json()["project"]
        serve_a_detector(app, served["id"], home / "none")
        served["image"] = api.get(f"/api/projects/{served['id']}/images").json()[0]
        page_state = {"served": served, "folder": home / "scene"}
        yield base, api, project, image, page_state


@pytest.fixture()
def page(server):
    with chromium_page() as page:
        page.asked = []
        page.route(
            "**/api/images/*/prepare", lambda route: route.fulfill(json={"ready": True, "needs_sam": False})
        )
        page.route("**/api/images/*/detect", lambda route: _detected(page, route))
        page.route("**/api/images/*/lookalikes", lambda route: _swept(page, route))
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _detected(page, route) -> None:
    body = json.loads(route.request.post_data)
    if not body["clicks"]:  # on open: a large image's answer is empty, its proposals come from the sweep
        empty = {
            "boxes": [],
            "scores": [],
            "labels": [],
            "rboxes": None,
            "method": "none",
            "model_version": 1,
        }
        route.fulfill(
            json={**empty, "min_score": 0.3, "min_scores": None, "fitted_classes": [], "tight_classes": []}
        )
        return
    label = body["clicks"][0][2]
    route.fulfill(
        json={
            "boxes": [CLICKED], "scores": [1.0], "labels": [label], "rboxes": None, "method": "training-free",
            "model_version": None, "min_score": None, "min_scores": None, "fitted_classes": [],
            "tight_classes": [], "look_alike_limit": None,
        }
    )  # fmt: skip


def _swept(page, route) -> None:
    """The sweep: started with 2 of its boxes, then 3, then done with all 4 (the first a
    duplicate of the clicked object's box); with ``page.keep_running`` it never ends."""
    method = route.request.method
    page.asked.append((method, json.loads(route.request.post_data) if method == "POST" else None))
    polls = sum(1 for m, _ in page.asked if m == "GET")
    n = {0: 2, 1: 3}.get(polls, 4)
    many = getattr(page, "many", 0)  # that many boxes in a row along the image's top, besides
    if many:
        boxes = [[20.0 + k, 20.0 + 30 * (k % 20), 40.0 + k, 40.0 + 30 * (k % 20)] for k in range(many)]
        answer = {"status": "done", "windows_done": 3, "windows": 3, "seconds": 1.0, "message": ""}
        route.fulfill(
            json={
                **answer, "method": "training-free", "boxes": boxes, "rboxes": None, "scores": [0.95] * many,
                "labels": [page.label] * many,
            }
        )  # fmt: skip
        return
    running = n < 4 or getattr(page, "keep_running", False)
    status = "stopped" if method == "DELETE" else ("running" if running else "done")
    if getattr(page, "oriented", False):  # a trained oriented detector's proposals on open
        rboxes = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 30, 30, 0.3] for b in FOUND[:n]]
        answer = {"status": status, "windows_done": n - 1, "windows": 3, "seconds": 1.0, "message": ""}
        route.fulfill(
            json={
                **answer, "method": "scratch", "boxes": FOUND[:n], "rboxes": rboxes, "scores": [0.9] * n,
                "labels": [page.label] * n,
            }
        )  # fmt: skip
        return
    route.fulfill(
        json={
            "status": status, "windows_done": n - 1, "windows": 3, "seconds": 1.0 * n, "message": "",
            "method": "training-free", "boxes": FOUND[:n], "rboxes": None, "scores": [0.95] * n,
            "labels": [page.label] * n,
        }
    )  # fmt: skip


def test_a_click_starts_the_sweep_and_its_boxes_join_the_proposals(server, page):
    base, api, project, image, _ = server
    page.label = project["classes"][0]["id"]
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.mouse.click(*screen(page, 115, 115))
    page.wait_for_function("() => fewclickTest.detect.sweep && fewclickTest.detect.sweep.status === 'done'")
    post = next(body for m, body in page.asked if m == "POST")
    ((x, y, label),) = post["clicks"]
    assert abs(x - 115) <= 3 and abs(y - 115) <= 3 and label == page.label, "the click, in image pixels"
    x0, y0, x1, y1 = post["view"]
    assert x0 <= 0 and y0 <= 0 and x1 >= WIDTH and y1 >= HEIGHT, "the whole image is on screen, fitted"
    boxes = page.evaluate("() => fewclickTest.detect.result.boxes")
    assert boxes == [CLICKED, *FOUND[1:]], "the sweep's boxes after the answer's, its duplicate left out"
    text = page.inner_text("#sweep")
    assert "whole image was looked over" in text and "4 boxes found" in text, text
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 4")
    saved = api.get(f"/api/images/{image['id']}").json()["annotations"]
    assert sorted(a["geometry"]["box"] for a in saved) == sorted([CLICKED, *FOUND[1:]])
    assert not page.errors


def test_esc_while_the_sweep_runs_stops_it(server, page):
    base, api, project, image, _ = server
    page.label = project["classes"][0]["id"]
    page.keep_running = True
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.mouse.click(*screen(page, 300, 300))
    page.wait_for_function("() => fewclickTest.detect.sweep != null")
    page.keyboard.press("Escape")
    page.wait_for_function("() => fewclickTest.detect.sweep == null")
    page.wait_for_timeout(300)
    assert any(m == "DELETE" for m, _ in page.asked), "the page asked the server to stop the sweep"
    assert not page.errors


def test_an_image_opens_with_the_trained_detectors_sweep_oriented_boxes_and_all(server, page):
    base, api, _, _, state = server
    served = state["served"]
    page.label, page.oriented = served["classes"][0]["id"], True
    page.goto(f"{base}/#/image/{served['image']['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.wait_for_function("() => fewclickTest.detect.sweep && fewclickTest.detect.sweep.status === 'done'")
    post = next(body for m, body in page.asked if m == "POST")
    assert post["clicks"] == [], "no click: the detector's proposals"
    result = page.evaluate("() => fewclickTest.detect.result")
    assert result["boxes"] == FOUND and len(result["rboxes"]) == len(FOUND), "the sweep's oriented boxes, all"
    assert result["method"] == "scratch", "named by the sweep's detector, not the empty answer's"
    assert "detector v1" in page.inner_text("#boxes-from")
    assert not page.errors


def test_accepting_more_proposals_than_one_save_takes_saves_them_all_and_undo_takes_them_back(server, page):
    """2500 proposals over a large image: more than the server's cap on one request's creates
    (limits.MAX_CREATES), so the page saves them in several requests, as one undoable step."""
    from fewclick.server.limits import MAX_CREATES

    base, api, _, _, state = server
    page.many = 2500
    assert page.many > 2 * MAX_CREATES
    body = {"name": "many", "folder": str(state["folder"]), "classes": ["car"]}
    many = api.post("/api/projects", json=body).json()["project"]
    image = api.get(f"/api/projects/{many['id']}/images").json()[0]
    page.label = many["classes"][0]["id"]
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.mouse.click(*screen(page, 115, 115))
    page.wait_for_function("() => fewclickTest.detect.sweep && fewclickTest.detect.sweep.status === 'done'")
    shown = page.evaluate("() => fewclickTest.detect.result.boxes.length")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => fewclickTest.anns.size === {shown}", timeout=60000)
    assert len(api.get(f"/api/images/{image['id']}").json()["annotations"]) == shown > page.many
    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0", timeout=60000)
    assert api.get(f"/api/images/{image['id']}").json()["annotations"] == []
    assert not page.errors
