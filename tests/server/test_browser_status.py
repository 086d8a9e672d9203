"""Detect mode as a new user meets it (issue 67), in real headless Chromium: the proposals an
image opens with show whatever the mode it opened in (pressing D shows them; the other modes'
panel says they wait), and detect's status line says what the page is doing at every moment,
the windows of the proposals being made included, and what a click made before them gets.

No model runs: the page's prepare and detect requests are answered by the test, which says
how far the proposals are and records what the page asked.
"""

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"
WINDOWS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two projects of the same three images: one with its first image finished, one with none."""
    home = tmp_path_factory.mktemp("browser-status")
    (home / "images").mkdir()
    for k in range(3):
        PILImage.fromarray(np.full((90, 120, 3), 40 + 40 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        projects = []
        for name in ("finished one", "none finished"):
            body = {"name": name, "folder": str(home / "images"), "classes": ["cell", "debris"]}
            projects.append(api.post("/api/projects", json=body).json()["project"])
        first = api.get(f"/api/projects/{projects[0]['id']}/images").json()[0]
        body = {
            "revision": 0,
            "create": [{"class_id": projects[0]["classes"][0]["id"], "geometry": {"box": [5, 5, 25, 25]}}],
        }
        assert api.post(f"/api/images/{first['id']}/annotations/batch", json=body).is_success
        assert api.patch(f"/api/images/{first['id']}", json={"status": "done"}).is_success
        yield base, api, projects


@pytest.fixture
def page(server):
    """A logged-in page whose prepare answers follow ``page.steps`` (one a request, the last
    repeated), and whose detect answers are look-alikes once the last step is "ready"."""
    with chromium_page() as page:
        page.steps, page.asked, page.detect_bodies = [_step("ready")], 0, []
        page.route("**/api/images/*/prepare", lambda route: _prepared(page, route))
        page.route("**/api/images/*/detect", lambda route: _detected(page, route))
        log_in(page, server[0], USER, PASSWORD)
        yield page
        assert page.errors == []


def _step(proposals: str, done: int | None = None, encoded: bool = True, partial: bool = False) -> dict:
    out = {
        "ready": encoded,
        "needs_sam": True,
        "backend": "sam",
        "chosen_by": "measured",
        "proposals": proposals,
    }
    if done is None:
        return out
    return {**out, "proposals_done": done, "proposals_windows": WINDOWS, "proposals_partial": partial}


def _prepared(page, route) -> None:
    page.asked += 1
    route.fulfill(json=page.steps[min(page.asked, len(page.steps)) - 1])


def _detected(page, route) -> None:
    """Three look-alikes of the cell class, one under its threshold; while the proposals are
    made, the clicked object's own SAM box alone (as the server answers then)."""
    body = route.request.post_data_json
    page.detect_bodies.append(body)
    cell = page.cell
    step = page.steps[min(page.asked, len(page.steps)) - 1]
    ready = step["proposals"] == "ready"
    # while they are made, the look-alikes of the windows done (one a window)
    some = 3 if ready else step.get("proposals_done", 0) if step.get("proposals_partial") else 0
    clicked = [[x - 8, y - 8, x + 8, y + 8] for x, y, _ in body["clicks"]]
    boxes = clicked + [[40, 10, 60, 30], [70, 40, 90, 60], [90, 60, 110, 80]][:some]
    scores = [1.0] * len(clicked) + [0.8, 0.6, 0.2][:some]
    proposals = (
        {
            "state": "ready" if ready else "partial",
            "made": 9,
            "shown": 0,
            "unboxed": [],
            "threshold": 0.5,
            "exemplars": 1,
            "exemplar_boxes": [],
            **({} if ready else {"windows_done": some, "windows": WINDOWS}),
        }
        if some
        else {"state": "making"}
    )
    route.fulfill(
        json={
            "method": "look-alikes" if some else "training-free", "boxes": boxes, "scores": scores,
            "labels": [cell] * len(boxes), "rboxes": None, "fitted_classes": [], "tight_classes": [],
            "model_version": None, "min_score": None, "min_scores": {str(cell): 0.5},
            "look_alike_limit": None, "proposals": proposals,
        }
    )  # fmt: skip


def _open(page, base: str, project: dict, image_id: int, mode: str) -> None:
    """Open the image with ``mode`` kept as the project's last way of annotating in this tab."""
    page.cell = project["classes"][0]["id"]
    page.evaluate(f"() => sessionStorage.setItem('fewclick.mode.{project['id']}', '{mode}')")
    page.goto(f"{base}/#/image/{image_id}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")
    assert page.evaluate("() => fewclickTest.mode") == mode


def _images(api, project: dict) -> list[dict]:
    return api.get(f"/api/projects/{project['id']}/images").json()


def test_an_image_opened_in_box_mode_shows_its_proposals_when_d_is_pressed(server, page):
    base, api, (finished, _) = server
    _open(page, base, finished, _images(api, finished)[1]["id"], "box")
    page.wait_for_function("() => fewclickTest.prep?.proposals === 'ready'")
    page.wait_for_timeout(300)  # what the page asks as the proposals are ready has come back
    page.keyboard.press("d")
    page.wait_for_function(
        "() => fewclickTest.mode === 'detect' && fewclickTest.shownProposals().length === 2"
    )
    assert page.detect_bodies == [{"clicks": []}], "asked once, as the image opened"
    assert page.inner_text("#detect-status").startswith("2 proposals shown on open")
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")


def test_proposals_made_while_box_mode_is_shown_show_when_d_is_pressed(server, page):
    base, api, (finished, _) = server
    page.steps = [_step("making", 0), _step("making", 1), _step("ready")]
    _open(page, base, finished, _images(api, finished)[2]["id"], "box")
    page.wait_for_function("() => document.querySelector('#waiting')?.textContent.includes('windows')")
    assert "D shows them when they are ready" in page.inner_text("#waiting")
    page.wait_for_function(
        "() => document.querySelector('#waiting')?.textContent.includes('proposals waiting')"
    )
    assert page.inner_text("#waiting") == "2 proposals waiting: D shows them"
    page.keyboard.press("d")
    page.wait_for_function("() => fewclickTest.shownProposals().length === 2")
    assert page.detect_bodies == [{"clicks": []}]


# the status line's text every 20 ms, from the moment the image is ready ("" when there is none)
WATCH = """() => { window.said = [];
  const line = () => document.querySelector('#detect-status')?.textContent ?? '';
  window.watching = setInterval(() => window.said.push(line()), 20); }"""


def _watched_until(page, done: str) -> list[str]:
    """The status line's texts from now until ``done`` (a JS condition) holds, and a moment
    more, each once: none of them empty."""
    page.evaluate(WATCH)
    page.wait_for_function(f"() => {done}", timeout=20000)
    page.wait_for_timeout(200)
    said = _said(page)
    assert all(said), f"never empty: {said}"
    return said


def _said(page) -> list[str]:
    """The texts the status line went through, each once, in order."""
    out = []
    for text in page.evaluate("() => window.said"):
        if not out or out[-1] != text:
            out.append(text)
    return out


def test_the_status_line_follows_the_preparation_window_by_window_and_is_never_empty(server, page):
    base, api, (_, none) = server
    steps = [_step("making", encoded=False), _step("making"), *[_step("making", k) for k in range(WINDOWS)]]
    page.steps = [*steps, _step("ready")]
    _open(page, base, none, _images(api, none)[0]["id"], "detect")
    said = _watched_until(page, "fewclickTest.prep?.proposals === 'ready'")
    assert said[0].startswith(("preparing image", "finding objects")), said
    for k in range(1, WINDOWS):
        assert f"finding objects: {k} of {WINDOWS} windows; a click meanwhile is boxed by SAM alone" in said
    assert said[-1].startswith("ready: click an object"), said
    assert page.is_visible("#detect-status")


def test_a_click_before_the_proposals_says_it_is_boxed_by_sam_alone_until_they_come(server, page):
    base, api, (_, none) = server
    page.steps = [_step("making", 2)]  # held at 2 of 3 windows until the test lets it go on
    _open(page, base, none, _images(api, none)[1]["id"], "detect")
    page.wait_for_function("() => document.querySelector('#detect-status').textContent.includes('2 of 3')")
    page.evaluate(WATCH)
    page.mouse.click(*screen(page, 30, 30))
    page.wait_for_function("() => fewclickTest.detect.result?.proposals?.state === 'making'")
    expected = (
        "your click is boxed by SAM alone; look-alikes come when the proposals are ready (2 of 3 windows)"
    )
    page.wait_for_function(f"() => document.querySelector('#detect-status').textContent === {expected!r}")
    page.steps.append(_step("ready"))
    page.wait_for_function("() => fewclickTest.detect.result?.method === 'look-alikes'", timeout=20000)
    page.wait_for_timeout(200)
    said = _said(page)
    assert all(said), f"never empty: {said}"
    assert said[-1].startswith("3 proposals shown after your 1 click, 2 look-alikes among them"), said
    assert len(page.detect_bodies) == 2 and page.detect_bodies[0] == page.detect_bodies[1], "asked again"


def test_an_image_opens_with_the_proposals_of_its_windows_searched_and_more_come_as_they_are(server, page):
    base, api, (finished, _) = server
    page.steps = [_step("making", 0), *[_step("making", k, partial=True) for k in (1, 2)], _step("ready")]
    _open(page, base, finished, _images(api, finished)[2]["id"], "detect")
    said = _watched_until(page, "fewclickTest.detect.result?.proposals?.state === 'ready'")
    first = [t for t in said if "1 of 3 windows of the image searched so far" in t]
    assert first and first[0].startswith("1 proposal shown on open"), said
    assert any(t.startswith("2 proposals shown on open") and "2 of 3 windows" in t for t in said), said
    assert said[-1].startswith("2 proposals shown on open") and "windows" not in said[-1], said
    assert [b["clicks"] for b in page.detect_bodies] == [[]] * len(page.detect_bodies), "no click was made"
    assert len(page.detect_bodies) == 3, "asked once a window, and once all were made"


def _partial_open(page, server, image: int) -> None:
    """Open ``image`` of the project with a finished image (one nothing was saved on), its
    search held at 1 of 3 windows: its one look-alike shown."""
    base, api, (finished, _) = server
    page.steps = [_step("making", 0), _step("making", 1, partial=True)]
    _open(page, base, finished, _images(api, finished)[image]["id"], "detect")
    page.wait_for_function("() => fewclickTest.shownProposals().length === 1", timeout=20000)


def test_esc_on_part_of_the_image_keeps_the_rest_from_showing_by_itself(server, page):
    _partial_open(page, server, 2)
    page.keyboard.press("Escape")
    page.steps += [_step("making", 2, partial=True), _step("ready")]
    page.wait_for_function("() => fewclickTest.prep?.proposals === 'ready'", timeout=20000)
    page.wait_for_timeout(1500)  # what the page would ask as the search ends has come back
    assert page.evaluate("() => fewclickTest.detect.result") is None, "dropped, and left so"
    assert len(page.detect_bodies) == 1, "asked once, as the image opened"


def test_a_proposal_rejected_on_part_of_the_image_is_not_asked_over_again(server, page):
    _partial_open(page, server, 2)
    page.mouse.click(*screen(page, 50, 20), button="right")  # the look-alike at [40, 10, 60, 30]
    page.wait_for_function("() => fewclickTest.shownProposals().length === 0")
    page.steps += [_step("making", 2, partial=True), _step("ready")]
    page.wait_for_function("() => fewclickTest.prep?.proposals === 'ready'", timeout=20000)
    page.wait_for_timeout(1500)
    assert len(page.detect_bodies) == 1, "the answer the person acted on stays as they left it"
    assert page.evaluate("() => fewclickTest.shownProposals().length") == 0
