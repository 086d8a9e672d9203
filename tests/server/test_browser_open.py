"""Proposals from the moment an image opens (issue 32, part 3), in real headless Chromium:
once a trained detector serves, an image nobody has started opens with its proposals and no
click; a click then asks again with that click; an image someone started, or a project with
no trained detector, opens without asking.

No model runs: the detector's version row points nowhere and the page's detect and prepare
requests are answered by the test, which records what the page asked.
"""

import json

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user, serve_a_detector
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Three projects of the same three images: two with a trained detector serving, one without."""
    home = tmp_path_factory.mktemp("browser-open")
    (home / "images").mkdir()
    for k in range(3):
        PILImage.fromarray(np.full((90, 120, 3), 40 + 40 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        api.app = app  # for a test that writes a version's metrics as the trainer would
        projects = []
        for name in ("served", "untrained", "submitted"):
            body = {"name": name, "folder": str(home / "images"), "classes": ["car"]}
            projects.append(api.post("/api/projects", json=body).json()["project"])
        for project in (projects[0], projects[2]):
            serve_a_detector(app, project["id"], home / "none")
        yield base, api, projects


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.detect_bodies = []
        prepared = {"ready": True, "needs_sam": False}
        page.route("**/api/images/*/prepare", lambda route: route.fulfill(json=prepared))
        page.route("**/api/images/*/detect", lambda route: _detected(page, route))
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _detected(page, route) -> None:
    """Two proposals without clicks, a third once a click came: the detector's answers."""
    body = json.loads(route.request.post_data)
    page.detect_bodies.append(body)
    boxes = [[10, 10, 30, 30], [50, 20, 70, 40]] + ([[80, 50, 100, 70]] if body["clicks"] else [])
    answer = {"boxes": boxes, "scores": [0.9, 0.8, 0.7][: len(boxes)], "rboxes": None, "method": "scratch"}
    labels = [body["clicks"][0][2] if body["clicks"] else page.class_id] * len(boxes)
    min_scores = getattr(page, "min_scores", None)
    fitted = labels[:1] if body["clicks"] else []  # the clicked class's SAM boxes take the person's edges
    route.fulfill(
        json={
            **answer, "labels": labels, "model_version": 1, "min_score": 0.5, "min_scores": min_scores,
            "fitted_classes": fitted,
        }
    )  # fmt: skip


def _open(page, base: str, image_id: int) -> None:
    url = f"{base}/#/image/{image_id}"
    page.reload() if page.url == url else page.goto(url)
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")


def _images(api, project) -> list[dict]:
    return api.get(f"/api/projects/{project['id']}/images").json()


def test_an_image_nobody_started_opens_with_the_served_detectors_proposals(server, page):
    base, api, (served, *_) = server
    page.class_id = served["classes"][0]["id"]
    page.detect_bodies.clear()
    image = _images(api, served)[0]
    _open(page, base, image["id"])
    page.wait_for_function("() => fewclickTest.detect.result && fewclickTest.detect.answered === 0")
    assert page.detect_bodies == [{"clicks": []}], "asked once, without a click"
    assert page.evaluate("() => fewclickTest.shownProposals().length") == 2
    assert "2 proposals on open: Enter accepts, a click adds what is missing" in page.inner_text("#message")
    assert page.inner_text("#boxes-from") == "boxes from: detector v1 (trained from scratch)"
    page.mouse.click(*screen(page, 90, 60))
    page.wait_for_function("() => fewclickTest.detect.answered === 1")
    assert len(page.detect_bodies) == 2 and len(page.detect_bodies[1]["clicks"]) == 1, "the click is sent"
    assert page.evaluate("() => fewclickTest.shownProposals().length") == 3
    name = served["classes"][0]["name"]
    assert f"SAM's boxes of {name} are fitted to the edges of your finished boxes" in page.inner_text(
        "#boxes-from"
    )
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 3")
    assert page.errors == []


def test_an_image_someone_started_or_a_project_without_a_detector_opens_without_asking(server, page):
    base, api, (served, untrained, _) = server
    started = _images(api, served)[1]
    body = {"create": [{"class_id": served["classes"][0]["id"], "geometry": {"box": [5, 5, 25, 25]}}]}
    assert api.post(f"/api/images/{started['id']}/annotations/batch", json={**body, "revision": 0}).is_success
    page.detect_bodies.clear()
    _open(page, base, started["id"])
    _open(page, base, _images(api, untrained)[0]["id"])
    page.wait_for_timeout(500)  # a request would have left with the page's opening
    assert page.detect_bodies == []
    assert page.evaluate("() => fewclickTest.detect.result") is None
    assert page.errors == []


def test_pinning_the_training_free_start_on_the_project_page_stops_proposals_on_open(server, page):
    base, api, (served, *_) = server
    page.goto(f"{base}/#/project/{served['id']}")
    page.wait_for_selector("#pin")
    assert "detector v1" in page.inner_text("#detector")
    page.select_option("#pin", "0")
    page.wait_for_function("() => document.querySelector('#detector').textContent.includes('pinned')")
    assert api.get(f"/api/projects/{served['id']}").json()["pinned_detector"] == 0
    page.detect_bodies.clear()
    _open(page, base, _images(api, served)[0]["id"])
    page.wait_for_timeout(500)
    assert page.detect_bodies == [], "the training-free start serves: nothing to propose without a click"
    page.goto(f"{base}/#/project/{served['id']}")
    page.wait_for_selector("#pin")
    page.select_option("#pin", "")
    page.wait_for_function("() => !document.querySelector('#detector').textContent.includes('pinned')")
    assert api.get(f"/api/projects/{served['id']}").json()["pinned_detector"] is None
    assert page.errors == []


def test_a_drag_draws_beside_the_proposals_and_a_submit_keeps_them_without_an_enter(server, page):
    base, api, (*_, submitted) = server
    page.class_id = submitted["classes"][0]["id"]
    image = _images(api, submitted)[0]
    _open(page, base, image["id"])
    page.wait_for_function("() => fewclickTest.detect.result && fewclickTest.detect.answered === 0")
    page.mouse.move(*screen(page, 80, 50))  # what the proposals missed: a drag draws it, they stay
    page.mouse.down()
    page.mouse.move(*screen(page, 100, 70), steps=5)
    page.mouse.up()
    page.wait_for_function("() => fewclickTest.anns.size === 1 && fewclickTest.shownProposals().length === 2")
    page.keyboard.press("s")
    page.wait_for_function(f"() => location.hash === '#/image/{image['id'] + 1}'")
    saved = api.get(f"/api/images/{image['id']}").json()
    assert saved["status"] == "done"
    boxes = sorted([round(v) for v in a["geometry"]["box"]] for a in saved["annotations"])
    assert boxes == [[10, 10, 30, 30], [50, 20, 70, 40], [80, 50, 100, 70]]
    assert page.errors == []


def test_a_class_nobody_clicked_starts_at_its_own_score_until_the_slider_moves(server, page):
    base, api, (served, *_) = server
    a = served["classes"][0]["id"]
    b = a + 1000  # a second class, as the answer names it
    _open(page, base, _images(api, served)[0]["id"])
    shown = """([clicks, byHand, a, b]) => fewclickTest.shownProposals({
        minScore: 0.5, minScoreByHand: byHand, clicks, result: {boxes: [[1, 1, 9, 9], [11, 1, 19, 9],
            [21, 1, 29, 9], [31, 1, 39, 9]], scores: [0.9, 0.6, 0.9, 0.8], labels: [a, a, b, b],
            min_scores: {[a]: 0.95, [b]: 0.85}}}).length"""
    assert page.evaluate(shown, [[], False, a, b]) == 1, "no click: a from 0.95 (none), b from 0.85 (one)"
    assert page.evaluate(shown, [[[5, 5, a]], False, a, b]) == 3, "a clicked: a from the slider's 0.5 (both)"
    assert page.evaluate(shown, [[], True, a, b]) == 4, "the slider moved: its 0.5 for all"
    assert page.errors == []


def test_a_box_drawn_over_a_proposal_takes_its_place_without_enter(server, page):
    base, api, (served, *_) = server
    page.class_id = served["classes"][0]["id"]
    image = _images(api, served)[2]
    _open(page, base, image["id"])
    page.wait_for_function("() => fewclickTest.detect.result && fewclickTest.detect.answered === 0")
    assert (
        page.evaluate("() => fewclickTest.shownProposals().length") == 2
    )  # [10, 10, 30, 30] and [50, 20, 70, 40]
    for x0, y0, x1, y1 in ((52, 22, 74, 44), (5, 60, 25, 80)):  # over the second; over none
        page.mouse.move(*screen(page, x0, y0))
        page.mouse.down()
        page.mouse.move(*screen(page, x1, y1), steps=5)
        page.mouse.up()
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    assert page.evaluate(
        "() => fewclickTest.shownProposals().map((i) => fewclickTest.detect.result.boxes[i])"
    ) == [[10, 10, 30, 30]]
    page.click("#submit")  # keeps the proposal still shown, and goes on to the next image
    page.wait_for_function(f"() => !fewclickTest.image || fewclickTest.image.id !== {image['id']}")
    saved = sorted(a["geometry"]["box"] for a in api.get(f"/api/images/{image['id']}").json()["annotations"])
    assert len(saved) == 3 and [10, 10, 30, 30] in saved
    assert not any(b == [50, 20, 70, 40] for b in saved), "the replaced proposal is not saved"
    assert page.errors == []


def test_e_moves_the_other_proposals_of_the_class_by_the_edges_of_a_box_drawn_over_one(server, page):
    base, api, (_, _, submitted) = server
    page.class_id = submitted["classes"][0]["id"]
    image = _images(api, submitted)[1]
    _open(page, base, image["id"])
    page.wait_for_function("() => fewclickTest.detect.result && fewclickTest.detect.answered === 0")
    page.mouse.move(*screen(page, 48, 18))  # over [50, 20, 70, 40], 2 px looser on every edge
    page.mouse.down()
    page.mouse.move(*screen(page, 72, 42), steps=5)
    page.mouse.up()
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    assert "E moves every" in page.inner_text("#fit-edges")
    page.keyboard.press("e")
    page.wait_for_function("() => fewclickTest.detect.fitted.size === 1")
    assert "proposals moved by the edges of the box you drew" in page.inner_text("#fit-edges")
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    saved = api.get(f"/api/images/{image['id']}").json()["annotations"]
    drawn = next(a["geometry"]["box"] for a in saved if a["source"] == "manual")
    moved = next(a["geometry"]["box"] for a in saved if a["source"] == "detect")
    move = np.subtract(drawn, [50, 20, 70, 40])
    assert np.abs(move - [-2, -2, 2, 2]).max() < 1.0  # the drag, to the screen's pixel
    np.testing.assert_allclose(moved, np.add([10, 10, 30, 30], move), atol=1e-3)
    for _ in range(50):  # the page posts its events every 3 s
        events = api.get(f"/api/projects/{submitted['id']}/events").json()
        if any(e["action"] == "fit" and e["image_id"] == image["id"] for e in events):
            break
        page.wait_for_timeout(200)
    else:
        raise AssertionError("no fit event logged")
    assert page.errors == []


def test_a_click_does_not_propose_again_an_object_already_boxed(server, page):
    base, api, (_, _, submitted) = server
    page.class_id = submitted["classes"][0]["id"]
    image = _images(api, submitted)[2]
    body = {"revision": 0, "create": [{"class_id": page.class_id, "geometry": {"box": [11, 9, 31, 29]}}]}
    assert api.post(f"/api/images/{image['id']}/annotations/batch", json=body).is_success
    _open(page, base, image["id"])
    page.mouse.click(*screen(page, 90, 60))
    page.wait_for_function("() => fewclickTest.detect.answered === 1")
    shown = page.evaluate(
        "() => fewclickTest.shownProposals().map((i) => fewclickTest.detect.result.boxes[i])"
    )
    assert shown == [[50, 20, 70, 40], [80, 50, 100, 70]], "[10, 10, 30, 30] is the box already saved"
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 3")
    saved = sorted(a["geometry"]["box"] for a in api.get(f"/api/images/{image['id']}").json()["annotations"])
    assert saved == [[11, 9, 31, 29], [50, 20, 70, 40], [80, 50, 100, 70]]
    assert page.errors == []


def test_the_project_page_says_what_each_source_saved_on_images_it_never_saw_and_what_serves(server, page):
    """Issue 68: the page tells why the trained version serves, from its test, then train record."""
    from fewclick.server.db import ModelVersion

    base, api, (served, *_) = server
    record = {
        "scored_images": 3,
        "saved_s": {"trainer": 21.4, "look-alikes": 3.25},
        "serves": [0],
        "sources": {"0": "trainer"},
        "why": {
            "0": "saved 21.4 s an image on the last 5 images it had not seen, 18.2 s more than look-alikes"
        },
    }
    with api.app.state.sessions() as session:  # as the trainer registers a promoted round
        v1 = session.query(ModelVersion).filter_by(project_id=served["id"], task="detect", version=1).one()
        v1.metrics = {"prequential": record, "trainer_round": 4, "trainer_steps": 800}
        session.commit()
    page.goto(f"{base}/#/project/{served['id']}")
    page.wait_for_selector("#serving-why li")
    said = page.inner_text("#serving-why")
    assert (
        "tested on 3 images it had not seen before training on them; work saved an image: trainer 21.4 s, "
        "look-alikes 3.3 s" in said
    ), said
    assert "car: its boxes are shown on open: it saved 21.4 s an image on the last 5 images" in said, said
    assert "not shown on open" not in said, "its one class is served"
    assert "round 4 (800 steps)" in page.inner_text("#detector")
    learnt = {**record, "serves": [], "sources": {"0": "learner"}, "why": {"0": "saved 6.0 s an image"}}
    changed = {"wide": 1.0, "tall": 1.02, "objects": 40, "recent_wide": 1.2, "recent_tall": 1.1}
    learnt["learner_convention"] = {"0": changed}  # the person's newest boxes are larger
    with api.app.state.sessions() as session:  # the fast learner now serves the class
        v1 = session.query(ModelVersion).filter_by(project_id=served["id"], task="detect", version=1).one()
        v1.metrics = {"prequential": learnt, "trainer_round": 5, "trainer_steps": 1000}
        session.commit()
    page.reload()
    page.wait_for_selector("#serving-why li")
    said = page.inner_text("#serving-why")
    assert "car: shown on open by the fast learner over SAM's proposals" in said, said
    assert "it saved 6.0 s an image" in said, said
    assert "your boxes: 0% wider and 2% taller than SAM's outlines (40 objects)" in said, said
    newest = "in your newest images 20% wider and 10% taller: the learner follows your newest images"
    assert newest in said, said
    assert page.errors == []
