"""What a new user tripped on (issue 31), in real headless Chromium (Debian's ``chromium``,
driven by Playwright): the score slider drags in one go, the header and the status line say
what the current mode holds, the learning curve plots finished images only, ``?`` opens
the shortcuts on every page, brightness and contrast, and full-image mode's background
region and its draft of regions not saved yet.

No model runs: the worker is not started, and the page's detect, prepare and full-image
requests are answered by the test (full image by BoxFill, the app's floor predictor), so
each test takes seconds on any machine.
"""

import json
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from browser import chromium_page, drag, live_server, log_in, screen
from clients import auth_headers, make_user

from fewclick.io.rle import mask_to_rle
from fewclick.predict.fullimage import BoxFill
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.server.fullimage import region_prompts
from fewclick.wire.codec import region_answers

USER, PASSWORD = "ann", "a long password"
H, W = 120, 160
NUCLEI = [(20, 20, 40, 40), (70, 60, 90, 80), (120, 20, 140, 40)]  # XYXY, one class


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A project of three dim grey images (nuclei a little brighter) and one class."""
    home = tmp_path_factory.mktemp("browser-newuser")
    (home / "images").mkdir()
    for k in range(3):
        image = np.full((H, W), 30, np.uint8)
        for x0, y0, x1, y1 in NUCLEI:
            cv2.circle(image, ((x0 + x1) // 2, (y0 + y1) // 2), 9, 60, -1)
        cv2.imwrite(str(home / "images" / f"dim{k}.png"), image)
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        body = {"name": "dim", "folder": str(home / "images"), "classes": ["nucleus"]}
        project = api.post("/api/projects", json=body).json()["project"]
        images = api.get(f"/api/projects/{project['id']}/images").json()
        yield base, api, project, images


@pytest.fixture(scope="module")
def page(server):
    base = server[0]
    with chromium_page() as page:
        page.route("**/api/images/*/prepare", _prepared)
        page.route("**/api/images/*/detect", _detected)
        page.route("**/api/images/*/segment", _segmented)
        page.fullimage_bodies = []
        page.route("**/api/images/*/fullimage", lambda route: _fullimage(page, route))
        log_in(page, base, USER, PASSWORD)
        yield page


def _prepared(route) -> None:
    route.fulfill(json={"ready": True, "needs_sam": False})


SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


def _detected(route) -> None:
    """Ten proposals of scores 0.1 to 0.95, whatever was clicked."""
    boxes = [[10 + 12 * k, 10, 20 + 12 * k, 20] for k in range(len(SCORES))]
    labels = [json.loads(route.request.post_data)["clicks"][0][2]] * len(SCORES)
    answer = {
        "boxes": boxes,
        "scores": SCORES,
        "labels": labels,
        "model_version": None,
        "method": "similarity",
    }
    route.fulfill(json={**answer, "min_score": None})


def _segmented(route) -> None:
    """The dragged box filled, as the app's answer (the box backend's) would be."""
    x0, y0, x1, y1 = (round(v) for v in json.loads(route.request.post_data)["box"])
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    answer = {"method": "box", "chosen_by": "default", "mask": mask_to_rle(mask), "score": 1.0}
    route.fulfill(json={**answer, "box": [x0, y0, x1, y1], "quality": None, "area": int(mask.sum())})


def _fullimage(page, route) -> None:
    """The app's answer, computed here by BoxFill from the page's request."""
    body = json.loads(route.request.post_data)
    page.fullimage_bodies.append(body)
    predictor = BoxFill()
    predictor.set_image(np.zeros((H, W, 3), np.uint8))
    labels = predictor.predict(region_prompts(body["regions"]))
    route.fulfill(
        json={"regions": region_answers(labels, len(body["regions"])), "method": "box_fill", "ms": 1}
    )


def _open(page, base: str, image_id: int) -> None:
    """Open the image's page afresh (the same address again reloads it)."""
    url = f"{base}/#/image/{image_id}"
    page.reload() if page.url == url else page.goto(url)
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")


def _detect_answer(page) -> None:
    """In detect mode, click an image pixel and wait for the ten proposals."""
    page.keyboard.press("d")
    page.mouse.click(*screen(page, 30, 30))
    page.wait_for_function("() => fewclickTest.detect.answered === 1")


def test_the_score_slider_drags_in_one_go(server, page):
    base, _, _, images = server
    _open(page, base, images[0]["id"])
    _detect_answer(page)
    assert page.evaluate("() => fewclickTest.minScore") == 0.3
    box = page.locator("#min-score").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * (0.3 - 0.05) / 0.9, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 1, y, steps=12)
    page.mouse.up()
    assert page.evaluate("() => fewclickTest.minScore") == 0.95
    assert page.evaluate("() => fewclickTest.shownProposals().length") == 1
    assert page.inner_text("#detect-status").startswith("1 proposal shown after your 1 click")
    assert "Proposals show at score >= 0.95." in page.inner_text("#mode-help")
    assert page.errors == []


def test_the_header_forgets_the_proposals_when_the_mode_changes(server, page):
    base, _, _, images = server
    _open(page, base, images[0]["id"])
    _detect_answer(page)
    assert "8 proposals in" in page.inner_text("#message")
    page.keyboard.press("b")  # box mode: the proposals are dropped, and so is what was said of them
    assert page.inner_text("#message") == ""
    assert page.errors == []


def test_the_status_line_counts_the_proposals_beside_the_saved_objects(server, page):
    base, api, _, images = server
    # the module's other tests save on this image too
    saved = len(api.get(f"/api/images/{images[0]['id']}").json()["annotations"])
    _open(page, base, images[0]["id"])
    _detect_answer(page)
    page.mouse.move(*screen(page, 60, 60))
    assert f"{saved} objects saved, 8 proposals not accepted" in page.inner_text("#hud")
    assert f"{saved} objects saved, 8 proposals not accepted" in page.inner_text("#counts")
    page.keyboard.press("b")  # the line follows without a mouse move
    assert page.inner_text("#hud").endswith(f"{saved} objects saved")
    assert page.errors == []


def test_the_status_line_follows_the_zoom_without_a_mouse_move(server, page):
    base, _, _, images = server
    _open(page, base, images[0]["id"])
    page.mouse.move(*screen(page, 60, 60))
    before = page.inner_text("#hud")
    page.mouse.wheel(0, -300)  # zoom in about the mouse, which stays where it is
    page.wait_for_function("(before) => document.querySelector('#hud').textContent !== before", arg=before)
    zoom = round(100 * page.evaluate("() => fewclickTest.view.scale"))
    assert f"zoom {zoom}%" in page.inner_text("#hud") and f"zoom {zoom}%" not in before
    assert page.inner_text("#hud").split()[:2] == before.split()[:2], "the wheel zooms about the pixel"
    view = page.evaluate("() => fewclickTest.view")
    page.evaluate("(v) => fewclickTest.setView({...v, ox: v.ox + 200})", view)  # panned under a still pointer
    x = float(before.split(",")[0]) - 200 / view["scale"]
    page.wait_for_function(
        "(x) => document.querySelector('#hud').textContent.startsWith(x + ',')", arg=f"{x:.0f}"
    )
    assert page.errors == []


def test_accepting_says_how_many_proposals_were_saved(server, page):
    base, api, _, images = server
    _open(page, base, images[2]["id"])
    _detect_answer(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 8")
    assert page.inner_text("#message") == "8 proposals accepted: Ctrl+Z takes them back"
    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0")
    assert api.get(f"/api/images/{images[2]['id']}").json()["annotations"] == []
    assert page.errors == []


def test_the_status_line_counts_a_mask_and_an_outline_not_accepted(server, page):
    base, _, _, images = server
    _open(page, base, images[2]["id"])
    page.keyboard.press("m")
    drag(page, 20, 20, 40, 40)
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.result")
    assert page.inner_text("#counts").startswith("0 objects saved, 1 mask not accepted")
    page.keyboard.press("o")
    for x, y in [(70, 60), (90, 60), (90, 80)]:
        page.mouse.click(*screen(page, x, y))
    assert page.inner_text("#counts").startswith("0 objects saved, an outline of 3 vertices not closed")
    page.keyboard.press("Escape")
    assert page.inner_text("#counts").startswith("0 objects saved;")
    assert page.errors == []


def test_a_long_image_name_leaves_the_header_buttons_on_screen(server, page):
    base, api, project, _ = server
    home = Path(project["source"]).parent
    folder = home / "long-names"
    folder.mkdir()
    cv2.imwrite(str(folder / ("nucleus-" + "y" * 230 + ".png")), np.full((H, W), 30, np.uint8))
    body = {"name": "long names", "folder": str(folder), "classes": ["nucleus"]}
    made = api.post("/api/projects", json=body).json()["project"]
    image = api.get(f"/api/projects/{made['id']}/images").json()[0]
    assert len(image["file_name"]) > 200
    _open(page, base, image["id"])
    width = page.viewport_size["width"]
    for selector in ("#who", "#help-button"):
        box = page.locator(selector).bounding_box()
        assert box["x"] + box["width"] <= width, selector
    assert page.locator("#crumbs span").get_attribute("title") == image["file_name"]
    assert page.errors == []


def test_question_mark_opens_the_shortcuts_on_every_page(server, page):
    base, _, project, images = server
    pages = {
        "projects": ("/", "#projects"),
        "project": (f"/project/{project['id']}", "#images"),
        "annotate": (f"/image/{images[0]['id']}", "#canvas"),
        "queue": (f"/project/{project['id']}/queue", "#queue-canvas"),
    }
    for name, (hash_, selector) in pages.items():
        page.goto(f"{base}/#{hash_}")
        page.wait_for_selector(selector)
        assert page.locator("#help").is_hidden(), name
        page.keyboard.press("?")
        assert page.locator("#help").is_visible(), name
        page.keyboard.press("Escape")
        assert page.locator("#help").is_hidden(), name
    assert page.errors == []


def _pixel(page, x: int, y: int) -> int:
    """The red value the canvas shows at image pixel (x, y), after the next frame."""
    return page.evaluate(
        """([x, y]) => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => {
            const px = Math.round(fewclickTest.view.ox + (x + 0.5) * fewclickTest.view.scale);
            const py = Math.round(fewclickTest.view.oy + (y + 0.5) * fewclickTest.view.scale);
            done(fewclickTest.canvas.getContext('2d').getImageData(px, py, 1, 1).data[0]); })))""",
        [x, y],
    )


def test_brightness_and_contrast_show_a_dim_image_brighter_and_stay_per_project(server, page):
    base, _, project, images = server
    _open(page, base, images[1]["id"])
    page.keyboard.press("b")
    page.locator("#look-reset").click()
    before = _pixel(page, 5, 5)
    page.locator("#look-brightness").fill("3")
    assert page.evaluate("() => fewclickTest.look") == {"brightness": 3, "contrast": 1}
    assert _pixel(page, 5, 5) >= 2.5 * before
    page.locator("#look-contrast").fill("2")
    page.keyboard.press("?")  # a moved slider keeps the page's keys
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    _open(page, base, images[2]["id"])  # another image of the project: the same look
    assert page.locator("#look-brightness").input_value() == "3"
    assert page.evaluate("() => fewclickTest.look") == {"brightness": 3, "contrast": 2}
    page.goto(f"{base}/#/project/{project['id']}/queue")  # the review queue shows images too
    page.wait_for_selector("#queue-canvas")
    assert page.locator("#look-contrast").input_value() == "2"
    _open(page, base, images[2]["id"])
    page.locator("#look-reset").click()
    assert page.evaluate("() => fewclickTest.look") == {"brightness": 1, "contrast": 1}
    assert page.errors == []


def _extreme(page, box) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for x, y in [(x0, cy), (cx, y0), (x1 - 1, cy), (cx, y1 - 1)]:
        page.mouse.click(*screen(page, x, y))


def test_full_image_offers_a_background_and_keeps_regions_not_saved(server, page):
    base, api, _, images = server
    image_id = images[0]["id"]
    _open(page, base, image_id)
    page.keyboard.press("g")
    offer = page.inner_text("#full-background")
    assert "strips" in offer and "Add background (X)" in offer
    for k, box in enumerate(NUCLEI[:2]):
        _extreme(page, box)
        page.wait_for_function(f"() => fewclickTest.full.answered === {k + 1} && !fewclickTest.full.busy")
    page.keyboard.press("x")
    page.wait_for_function("() => fewclickTest.full.answered === 3 && !fewclickTest.full.busy")
    assert page.fullimage_bodies[-1]["regions"][-1]["background"] is True
    assert "background" in page.inner_text("#regions")
    assert "not saved" in page.inner_text("#full-background")
    between = page.evaluate(f"() => fewclickTest.full.labels[{100 * W + 10}]")  # far from both nuclei
    assert between == 2
    # leave the image with the regions not saved, and come back: they are still there
    page.goto(f"{base}/#/project/{images[0]['project_id']}")
    page.wait_for_selector("#images")
    _open(page, base, image_id)
    page.wait_for_function(
        "() => { const t = fewclickTest; return t.mode === 'fullimage' && t.full.answered && !t.full.busy; }"
    )
    assert page.evaluate("() => fewclickTest.full.regions.map((r) => !!r.background)") == [False, False, True]
    assert "restored" in page.inner_text("#message")
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    saved = api.get(f"/api/images/{image_id}").json()["annotations"]
    assert sorted(a["kind"] for a in saved) == ["mask", "mask"]  # the background is not saved
    _open(page, base, image_id)
    assert page.evaluate("() => fewclickTest.mode") == "fullimage", "the mode picked last on the project"
    assert "restored" not in page.inner_text("#message"), "nothing left to restore"
    assert page.errors == []


def test_the_learning_curve_plots_finished_images_only(server, page):
    base, api, first, _ = server
    project = api.post("/api/projects", json={"name": "curve", "folder": first["source"]}).json()["project"]
    images = api.get(f"/api/projects/{project['id']}/images").json()
    at = "2026-11-24T00:00:00+00:00"
    events = []
    for image, clicks, submitted in zip(images, (5, 2, 7), (True, True, False), strict=True):
        events += [{"action": "click", "image_id": image["id"], "at": at, "duration_ms": 1000}] * clicks
        if submitted:
            events.append({"action": "submit", "image_id": image["id"], "at": at, "duration_ms": 10})
    assert api.post(f"/api/projects/{project['id']}/events", json=events).status_code == 201
    page.goto(f"{base}/#/project/{project['id']}")
    page.wait_for_selector("#interactions-curve")
    titles = page.evaluate(
        "() => [...document.querySelectorAll('#interactions-curve circle title')].map((t) => t.textContent)"
    )
    assert [t.split()[-1] for t in titles] == ["5", "2"]
