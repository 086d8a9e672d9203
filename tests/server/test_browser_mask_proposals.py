"""Mask mode's proposals on open (issue 54) in real headless Chromium: as mask mode is
picked the page asks for SAM's proposals like the finished objects (again while they are
being made), draws those at or above their class's score, a right-click rejects one (logged),
a click saves one alone (logged "take"; the smallest of those under it), Enter saves the rest
as masks, each in one undo step, Esc hides them (logged "hide"); a click off them starts a
mask as before; an answer never lands on a mode or image left; a save refused (the image
changed elsewhere) is said, nothing lost.

No model runs: the test answers the page's mask_proposals requests with three small masks
shown and one below its class's score, and its segment requests with a small square; the
saves, undo and events are the app's own."""

import re
import time
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from browser import chromium_page, drag, live_server, log_in, screen
from clients import auth_headers, make_user
from PIL import Image as PILImage

from fewclick.io.rle import mask_to_rle, rle_boxes, rle_to_mask
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"
H, W = 120, 160


def _masks() -> list[np.ndarray]:
    """A square, a disc, a bar (the three shown) and a small square (below its score)."""
    ys, xs = np.mgrid[:H, :W]
    masks = [np.zeros((H, W), bool) for _ in range(4)]
    masks[0][20:40, 20:40] = True
    masks[1][(xs - 100) ** 2 + (ys - 60) ** 2 < 12**2] = True
    masks[2][80:100, 30:60] = True
    masks[3][10:20, 130:150] = True
    return masks


MASKS = _masks()
CENTRES = [(30, 30), (100, 60), (45, 90), (140, 15)]


def _answer(classes: list[int]) -> dict:
    """Best first; class b's own score 0.55 lets the bar (0.6) show; the threshold 0.5 hides
    the small square (0.2)."""
    rles = [mask_to_rle(m) for m in MASKS]
    return {
        "state": "ready", "note": None, "made": 9, "masks": rles,
        "boxes": rle_boxes(rles).tolist(), "scores": [0.9, 0.8, 0.6, 0.2],
        "labels": [classes[0], classes[0], classes[1], classes[0]],
        "min_scores": {str(classes[1]): 0.55}, "threshold": 0.5,
    }  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-mask-proposals")
    (home / "images").mkdir()
    for k in range(7):
        PILImage.fromarray(np.full((H, W, 3), 90 + 20 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        body = {"name": "proposals", "folder": str(home / "images"), "classes": ["nucleus", "debris"]}
        project = api.post("/api/projects", json=body).json()["project"]
        images = [i["id"] for i in api.get(f"/api/projects/{project['id']}/images").json()]
        yield base, api, project, images


class Segments:
    """The page's segment requests: their bodies kept, each answered with a square of
    ``side`` px (10 unless set); with ``ellipse``, a disc offered as the box's ellipse after it;
    with ``proposal``, the square served as the proposal under the click, SAM's disc after it;
    with ``held`` a list, each request and its answer are put there instead, for the test to
    answer (``route.fulfill(json=answer)``) when it has moved the page's clock."""

    def __init__(self) -> None:
        self.bodies, self.zooms = [], []  # zooms: each answer's "zoom", in turn (then None)
        self.side, self.ellipse, self.proposal = 10, False, False
        self.held: list | None = None

    def __call__(self, route) -> None:
        self.bodies.append(route.request.post_data_json)
        zoom = self.zooms.pop(0) if self.zooms else None
        square = np.zeros((H, W), bool)
        square[45 : 45 + self.side, 85 : 85 + self.side] = True
        rle = mask_to_rle(square)
        shown = {"mask": rle, "box": rle_boxes([rle])[0].tolist(), "score": 0.9, "area": self.side**2}
        yy, xx = np.mgrid[:H, :W]
        disc = mask_to_rle((xx - 90) ** 2 + (yy - 50) ** 2 <= 25)
        other = {"mask": disc, "box": rle_boxes([disc])[0].tolist(), "area": 81}
        candidates = []
        if self.ellipse:
            candidates = [shown, {**other, "score": 0.0, "shape": "ellipse"}]
        if self.proposal:
            shown = {**shown, "shape": "proposal"}
            candidates = [shown, {**other, "score": 0.7}]
        answer = {
            "method": "sam", "chosen_by": "default", "note": None, **shown, "quality": None,
            "changed": None, "candidates": candidates, "zoom": zoom,
        }  # fmt: skip
        if self.held is not None:
            self.held.append((route, answer))
        else:
            route.fulfill(json=answer)


class Answers:
    """The page's mask_proposals requests, answered "making" ``making`` times, then ``answer``."""

    def __init__(self) -> None:
        self.answer, self.making, self.asked = None, 0, []

    def __call__(self, route) -> None:
        self.asked.append(route.request.url)
        if len(self.asked) <= self.making:
            route.fulfill(json={"state": "making", "note": "making"})
        else:
            route.fulfill(json=self.answer)


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.route(
            "**/api/images/*/prepare", lambda route: route.fulfill(json={"ready": True, "needs_sam": False})
        )
        page.answers = Answers()
        page.route("**/api/images/*/mask_proposals", page.answers)
        page.segments = Segments()
        page.route("**/api/images/*/segment", page.segments)
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _open(page, base: str, image_id: int, answer: dict, making: int = 0) -> None:
    page.answers.answer, page.answers.making, page.answers.asked = answer, making, []
    page.segments.bodies = []
    url = f"{base}/#/image/{image_id}"
    page.reload() if page.url == url else page.goto(url)
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")


def _paused_page(context):
    """A new page of ``context`` whose clock is paused (only the test moves the page's time),
    its page errors kept in ``page.errors``."""
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.clock.install(time=0)
    page.clock.pause_at(1000)
    return page


def _in_mask_mode_saves_held(page, base: str, image: int, held: list) -> None:
    """``page`` logged in, on ``image`` in mask mode, with SAM's answers mocked and each save's
    request kept in ``held`` (answered when the test continues it)."""
    page.route("**/api/images/*/prepare", lambda r: r.fulfill(json={"ready": True, "needs_sam": False}))
    page.route("**/api/images/*/mask_proposals", lambda r: r.fulfill(json={"state": "none", "note": "-"}))
    page.route("**/api/images/*/segment", Segments())
    page.route("**/api/images/*/annotations/batch", lambda r: held.append(r))
    log_in(page, base, USER, PASSWORD)
    page.goto(f"{base}/#/image/{image}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image}")
    page.keyboard.press("m")


def _shown(page) -> list[int]:
    return page.evaluate("() => fewclickTest.maskProposals.shown")


def _pixel(page, x: float, y: float) -> list[int]:
    """The canvas's colour at image pixel (x, y), after the next frame is drawn."""
    return page.evaluate(
        """async ([x, y]) => {
            await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
            const v = fewclickTest.view, c = fewclickTest.canvas;
            return [...c.getContext("2d").getImageData(v.ox + x * v.scale, v.oy + y * v.scale, 1, 1).data];
        }""",
        [x, y],
    )


def _events(api, project: int, action: str) -> list[dict]:
    return [e for e in api.get(f"/api/projects/{project}/events").json() if e["action"] == action]


def _logged(api, project: int, action: str, image: int) -> list[dict]:
    """The image's events ``action``, once the page has sent one (every 3 s)."""
    deadline = time.monotonic() + 15
    while not (found := [e for e in _events(api, project, action) if e["image_id"] == image]):
        assert time.monotonic() < deadline, f"{action} is logged"
        time.sleep(0.2)
    return found


def test_proposals_show_one_is_rejected_enter_saves_the_rest_in_one_undo_step(server, page):
    base, api, project, images = server
    classes = [c["id"] for c in project["classes"]]
    answer = _answer(classes)
    _open(page, base, images[0], answer, making=2)
    plain = _pixel(page, *CENTRES[0])
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.state === 'ready'", timeout=15000)
    assert len(page.answers.asked) == 3, "asked again while they were being made"
    assert _shown(page) == [0, 1, 2], "the small square is below its score"
    assert "3 proposals like your finished objects" in page.inner_text("#mask-proposals")
    assert _pixel(page, *CENTRES[0]) != plain, "the square is drawn over the image"
    assert _pixel(page, *CENTRES[3]) == _pixel(page, 150, 110), "the one below its score is not"

    page.mouse.click(*screen(page, *CENTRES[1]), button="right")
    page.wait_for_function("() => fewclickTest.maskProposals.shown.length === 2")
    assert _shown(page) == [0, 2] and page.evaluate("() => fewclickTest.seg") is None
    assert "2 proposals" in page.inner_text("#message")

    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    saved = api.get(f"/api/images/{images[0]}").json()["annotations"]
    assert len(saved) == 2 and {a["source"] for a in saved} == {"proposal"}
    assert {a["kind"] for a in saved} == {"mask"}
    by_class = {a["class_id"]: a for a in saved}
    assert set(by_class) == set(classes), "the square (nucleus) and the bar (debris)"
    for k in (0, 2):
        a = by_class[answer["labels"][k]]
        np.testing.assert_array_equal(rle_to_mask(a["geometry"]["mask"]), MASKS[k])
        assert a["score"] == pytest.approx(answer["scores"][k])
    assert _shown(page) == [], "saved: no longer proposed"

    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0")
    assert api.get(f"/api/images/{images[0]}").json()["annotations"] == []
    assert _shown(page) == [0, 2], "undone: proposed again, the rejected one still not"
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    again = api.get(f"/api/images/{images[0]}").json()["annotations"]
    assert sorted(a["geometry"]["mask"]["counts"] for a in again) == sorted(
        a["geometry"]["mask"]["counts"] for a in saved
    )

    page.keyboard.press("v")  # a saved proposal is a saved mask like any: selected, deleted
    page.mouse.click(*screen(page, *CENTRES[0]))
    page.wait_for_function("() => fewclickTest.selected.size === 1")
    page.keyboard.press("Delete")
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    deadline = time.monotonic() + 15  # the page sends its events every 3 s
    while not (_events(api, project["id"], "reject") and _events(api, project["id"], "accept")):
        assert time.monotonic() < deadline, "the reject and the accept are logged"
        time.sleep(0.2)
    [reject] = _events(api, project["id"], "reject")
    assert reject["image_id"] == images[0] and reject["detail"]["mode"] == "mask"
    assert reject["detail"]["box"] == answer["boxes"][1]
    assert any(e["detail"]["created"] == 2 for e in _events(api, project["id"], "accept"))
    assert page.errors == []


def test_esc_hides_them_and_m_shows_them_again(server, page):
    base, _, project, images = server
    _open(page, base, images[1], _answer([c["id"] for c in project["classes"]]))
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.shown.length === 3")
    page.keyboard.press("Escape")
    assert _shown(page) == [] and page.evaluate("() => fewclickTest.maskProposals.hidden")
    assert "hidden" in page.inner_text("#mask-proposals")
    page.keyboard.press("Enter")  # nothing shown: nothing saved
    page.keyboard.press("m")
    assert _shown(page) == [0, 1, 2]
    assert page.evaluate("() => fewclickTest.anns.size") == 0
    assert page.errors == []


def test_no_answer_lands_on_a_mode_or_an_image_left(server, page):
    base, _, project, images = server
    _open(page, base, images[2], _answer([c["id"] for c in project["classes"]]), making=1000)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.state === 'making'")
    assert "being made" in page.inner_text("#mask-proposals")
    page.keyboard.press("d")
    asked = len(page.answers.asked)
    page.wait_for_timeout(3500)
    assert len(page.answers.asked) <= asked + 1, "no more asking once the mode is left"
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.state === 'making'")
    page.answers.making = 0  # the next answer is ready, but the page has gone to another image
    page.goto(f"{base}/#/image/{images[3]}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {images[3]}")
    left = f"/api/images/{images[2]}/"
    asked = sum(left in url for url in page.answers.asked)
    page.wait_for_timeout(3500)
    assert sum(left in url for url in page.answers.asked) <= asked + 1, "the image left is asked no more"
    assert page.evaluate("() => fewclickTest.mode") == "mask", "the next image opens in the mode picked last"
    assert page.errors == []


def test_a_save_refused_because_the_image_changed_elsewhere_is_said_and_nothing_is_lost(server, page):
    base, api, project, images = server
    _open(page, base, images[3], _answer([c["id"] for c in project["classes"]]))
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.shown.length === 3")
    revision = api.get(f"/api/images/{images[3]}").json()["revision"]
    box = {"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [140, 100, 150, 110]}}
    r = api.post(f"/api/images/{images[3]}/annotations/batch", json={"revision": revision, "create": [box]})
    assert r.status_code < 300, r.text  # another tab's change
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('another tab')")
    assert _shown(page) == [0, 1, 2], "still shown, to save once the image is reloaded"
    assert len(api.get(f"/api/images/{images[3]}").json()["annotations"]) == 1
    assert page.errors == []


def test_a_click_on_a_proposal_saves_it_alone_and_undo_shows_it_again(server, page):
    base, api, project, images = server
    answer = _answer([c["id"] for c in project["classes"]])
    _open(page, base, images[4], answer)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.shown.length === 3")
    page.mouse.click(*screen(page, *CENTRES[2]))
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    [saved] = api.get(f"/api/images/{images[4]}").json()["annotations"]
    assert (saved["kind"], saved["source"], saved["class_id"]) == ("mask", "proposal", answer["labels"][2])
    np.testing.assert_array_equal(rle_to_mask(saved["geometry"]["mask"]), MASKS[2])
    assert saved["score"] == pytest.approx(answer["scores"][2])
    assert _shown(page) == [0, 1] and page.evaluate("() => fewclickTest.seg") is None
    assert "2 proposals like your finished objects: click one" in page.inner_text("#message")
    assert page.segments.bodies == [], "no mask started"

    page.keyboard.press("Control+z")
    page.wait_for_function("() => fewclickTest.anns.size === 0")
    assert api.get(f"/api/images/{images[4]}").json()["annotations"] == []
    assert _shown(page) == [0, 1, 2], "undone: proposed again"
    [take] = _logged(api, project["id"], "take", images[4])
    assert take["detail"]["mode"] == "mask" and take["detail"]["created"] == 1
    assert take["detail"]["box"] == answer["boxes"][2]

    page.mouse.click(*screen(page, 90, 50))  # in the disc's box, off its mask: off every proposal
    page.wait_for_function("() => fewclickTest.seg?.result")
    [body] = page.segments.bodies
    assert body["box"] is None and len(body["clicks"]) == 1 and body["clicks"][0][2] is True
    assert body["clicks"][0][:2] == pytest.approx([90, 50], abs=1)
    assert _shown(page) == [0, 1, 2] and page.evaluate("() => fewclickTest.anns.size") == 0
    page.keyboard.press("Escape")  # drops the mask in the making: no proposal hidden
    assert page.evaluate("() => fewclickTest.seg") is None and _shown(page) == [0, 1, 2]
    page.keyboard.press("Escape")  # hides the proposals
    assert _shown(page) == []
    [hide] = _logged(api, project["id"], "hide", images[4])
    assert hide["detail"] == {"mode": "mask", "proposals": 3}
    assert page.errors == []


def test_a_click_where_two_proposals_overlap_takes_the_smallest(server, page):
    base, api, project, images = server
    big, small = np.zeros((H, W), bool), np.zeros((H, W), bool)
    big[50:110, 10:110] = True
    small[70:90, 40:60] = True
    rles = [mask_to_rle(big), mask_to_rle(small)]
    nucleus = project["classes"][0]["id"]
    answer = {
        "state": "ready", "note": None, "made": 2, "masks": rles, "boxes": rle_boxes(rles).tolist(),
        "scores": [0.9, 0.8], "labels": [nucleus, nucleus], "min_scores": {}, "threshold": 0.5,
    }  # fmt: skip
    _open(page, base, images[5], answer)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.maskProposals?.shown.length === 2")
    page.mouse.click(*screen(page, 50, 80))
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    [saved] = api.get(f"/api/images/{images[5]}").json()["annotations"]
    np.testing.assert_array_equal(rle_to_mask(saved["geometry"]["mask"]), small)
    assert _shown(page) == [0], "the large one still shows"
    assert page.errors == []


def test_a_mask_served_while_its_zoom_window_is_encoded_is_asked_for_again(server, page):
    """Issue 54, item 2: an answer saying the zoom window is being encoded is asked for again
    a second later, with the same prompts, until the window's answer comes; not once the
    person has clicked again."""
    base, _, project, images = server
    none = {"state": "none", "note": "no finished image yet"}
    _open(page, base, images[1], none)
    page.keyboard.press("m")
    page.segments.zooms = ["encoding", "encoding", "window"]
    page.mouse.click(*screen(page, 90, 50))
    page.wait_for_function("() => fewclickTest.seg?.result?.zoom === 'encoding'")
    assert "a sharper mask shows in a moment" in page.inner_text("#mask-info")
    page.wait_for_function("() => fewclickTest.seg?.result?.zoom === 'window'", timeout=15000)
    assert page.locator("#mask-zoom").count() == 0, "said no more once the window's mask shows"
    first, *again = page.segments.bodies
    assert len(again) == 2 and all(b == first for b in again), "the same prompts, asked again"
    page.keyboard.press("Escape")

    page.segments.bodies, page.segments.zooms = [], ["encoding"]
    page.mouse.click(*screen(page, 90, 50))
    page.wait_for_function("() => fewclickTest.seg?.result?.zoom === 'encoding'")
    page.mouse.click(*screen(page, 95, 55))  # a second click before the page asks again
    page.wait_for_function("() => fewclickTest.seg?.answered === 2")
    page.wait_for_timeout(1500)
    assert [len(b["clicks"]) for b in page.segments.bodies] == [1, 2], "the first prompts are not asked again"
    assert page.errors == []


@contextmanager
def _ways_page(page, base: str):
    """``(page, segments, outlines)``: a page in a browser context of its own (beside the
    module's page) with a paused clock, logged in, SAM's masks answered by ``segments`` and
    each outline asked for kept in ``outlines`` and answered with a four-vertex ring
    (4 x 1 s + Enter = 5.63 s an outline)."""
    outlines, segments = [], Segments()

    def outline(route):
        outlines.append(route.request.post_data_json)
        square = [[85, 45], [95, 45], [95, 55], [85, 55]]
        route.fulfill(json={"rings": [{"points": square, "hole": False}], "offset": [0, 0]})

    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = _paused_page(context)
        none = {"state": "none", "note": "no finished image yet"}
        page.route("**/api/images/*/prepare", lambda r: r.fulfill(json={"ready": True, "needs_sam": False}))
        page.route("**/api/images/*/mask_proposals", lambda r: r.fulfill(json=none))
        page.route("**/api/images/*/segment", segments)
        page.route("**/api/images/*/outline", outline)
        log_in(page, base, USER, PASSWORD)
        yield page, segments, outlines
    finally:
        context.close()


def _in_mask_mode(page, base: str, image: int) -> None:
    page.goto(f"{base}/#/image/{image}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image}")
    page.keyboard.press("m")


def _sam_mask(page, segments, k: int, waited: float, idle: float = 0.0, side: int = 10) -> None:
    """A mask made with SAM on the open image: a click, SAM's answer after ``waited`` s of
    the page's clock, then ``idle`` s with nothing done, then Enter."""
    segments.side, segments.held = side, []
    saved = page.evaluate("() => fewclickTest.anns.size")
    page.mouse.click(*screen(page, 20 + 40 * k, 100))
    while not segments.held:
        page.wait_for_timeout(20)
    page.clock.fast_forward(int(waited * 1000))
    route, answer = segments.held.pop()
    segments.held = None
    route.fulfill(json=answer)
    page.wait_for_function("() => fewclickTest.seg?.answered === 1")
    if idle:
        page.clock.fast_forward(int(idle * 1000))
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => fewclickTest.anns.size === {saved + 1}")


def test_the_page_says_when_sam_s_masks_of_a_size_have_cost_more_than_outlining_them_by_hand(server, page):
    """Issue 54, item 3: after three masks of a size (small, medium, large, as COCO bins
    them) made with SAM on an image, their outlines are priced (1 s a vertex and Enter); when
    the masks took longer in all, the page says that outlining such objects by hand (O) may be
    quicker, once, and the panel keeps it; a mask of another size does not count, and on
    another image, where the masks were quick, it says nothing. Playwright's clock (paused: the
    page's seconds move only when the test moves them) stands in for the seconds SAM's
    answers took, in a browser context of its own (beside the module's page)."""
    base, _, _, images = server
    with _ways_page(page, base) as (page, segments, outlines):
        _in_mask_mode(page, base, images[4])
        for k in range(3):  # quicker than outlines: nothing said
            _sam_mask(page, segments, k, 2.0)
        page.wait_for_timeout(500)
        assert len(outlines) == 3, "the three masks' outlines are priced"
        assert page.locator("#mask-ways").count() == 0

        _in_mask_mode(page, base, images[5])
        _sam_mask(page, segments, 0, 2.0)
        _sam_mask(page, segments, 1, 2.0)
        _sam_mask(page, segments, 2, 30.0, side=40)  # a medium object: judged apart
        page.wait_for_timeout(500)
        assert page.locator("#mask-ways").count() == 0 and len(outlines) == 3, "not before three"
        _sam_mask(page, segments, 3, 20.0)
        page.wait_for_selector("#mask-ways")
        said = page.inner_text("#mask-ways")
        # (2 + 2 + 20) / 3 = 8 s; with the medium mask it would be 13.5 s. A loaded machine can
        # let the paused clock slip a little between the click and Enter: a bound, not 8.0
        taken = re.search(r"small objects \(under 32 px\) here have taken ([0-9.]+) s each", said)
        assert taken is not None and 8.0 <= float(taken[1]) < 10.0, said
        assert "about 5.6 s" in said and "O outlines by hand" in said and "medium" not in said
        assert "O outlines by hand" in page.inner_text("#message")
        assert len(outlines) == 6
        assert page.errors == []


def test_the_seconds_a_mask_lay_open_before_enter_are_not_priced_as_sam_s(server, page):
    """Issue 67: after a minute idle before Enter the page said "small objects ... have taken
    60.6 s each with SAM; outlining them by hand would take about 11.6 s". Three masks SAM
    answered in 1 s, each left open 60 s before Enter: at most a look at the mask
    (mask_ways.js IDLE_SECONDS, 3 s) counts, 4 s a mask, under the 5.6 s an outline costs,
    and the page advises nothing."""
    base, _, _, images = server
    with _ways_page(page, base) as (page, segments, outlines):
        _in_mask_mode(page, base, images[6])
        for k in range(3):
            _sam_mask(page, segments, k, 1.0, idle=60.0)
        page.wait_for_timeout(500)
        assert len(outlines) == 3, "the three masks' outlines are priced"
        assert page.locator("#mask-ways").count() == 0, page.inner_text("#mask-ways")
        assert page.errors == []


def test_the_box_s_ellipse_is_named_and_saved_as_no_backend_s_mask(server, page):
    """Issue 54: the ellipse offered after SAM's candidates shows as the box's ellipse, with
    no score of SAM's; Enter saves it as the ellipse (source "ellipse", no backend, no score)."""
    base, api, project, images = server
    _open(page, base, images[1], {"state": "none", "note": "no finished image yet"})
    page.keyboard.press("m")
    page.segments.ellipse = True
    try:
        page.mouse.click(*screen(page, 90, 50))
        page.wait_for_function("() => fewclickTest.seg?.answered === 1")
        assert page.inner_text("#mask-candidate") == "1 of 2" and "score 0.90" in page.inner_text(
            "#mask-info"
        )
        page.keyboard.press("Shift+Tab")
        assert page.inner_text("#mask-candidate") == "2 of 2"
        assert page.inner_text("#mask-shape") == "the box's ellipse" and "score" not in page.inner_text(
            "#mask-info"
        )
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.anns.size === 1")
    finally:
        page.segments.ellipse = False
    [saved] = api.get(f"/api/images/{images[1]}").json()["annotations"]
    assert (saved["source"], saved["backend"], saved["score"]) == ("ellipse", None, None)
    assert rle_to_mask(saved["geometry"]["mask"]).sum() == 81
    assert page.errors == []


def test_the_proposal_under_a_click_is_named_and_saved_as_a_proposal_with_its_score(server, page):
    """Issue 54: a click alone is answered first with the image's proposal under it; the panel
    names it with its score, Tab goes to SAM's own mask, and Enter on the proposal saves it as
    a proposal (source "proposal", no backend, the proposal's score)."""
    base, api, project, images = server
    _open(page, base, images[2], {"state": "none", "note": "no finished image yet"})
    page.keyboard.press("m")
    page.segments.proposal = True
    try:
        page.mouse.click(*screen(page, 90, 50))
        page.wait_for_function("() => fewclickTest.seg?.answered === 1")
        info = page.inner_text("#mask-info")
        assert page.inner_text("#mask-shape") == "the object found here before the click"
        assert page.inner_text("#mask-candidate") == "1 of 2" and "score 0.90" in info
        page.keyboard.press("Tab")
        assert page.inner_text("#mask-candidate") == "2 of 2" and page.query_selector("#mask-shape") is None
        assert "score 0.70" in page.inner_text("#mask-info")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.anns.size === 1")
    finally:
        page.segments.proposal = False
    [saved] = api.get(f"/api/images/{images[2]}").json()["annotations"]
    assert (saved["source"], saved["backend"], saved["score"]) == ("proposal", None, 0.9)
    assert rle_to_mask(saved["geometry"]["mask"]).sum() == 100
    assert page.errors == []


def test_a_mask_is_timed_at_enter_not_when_its_save_is_answered(server, page):
    """The outline advice's seconds (mask_ways.js) end at Enter: a save answered late (a loaded
    server) does not add the seconds the person spent on the next object. Playwright's clock
    is paused, so only the test moves the page's time."""
    base, _, _, images = server
    held = []
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = _paused_page(context)
        _in_mask_mode_saves_held(page, base, images[3], held)
        page.mouse.click(*screen(page, 90, 50))
        page.wait_for_function("() => fewclickTest.seg?.answered === 1")
        page.clock.fast_forward(2000)
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.seg == null")
        page.wait_for_timeout(200)  # the save's request on its way
        assert len(held) == 1, "Enter asked for the save"
        page.clock.fast_forward(30000)  # the person works on; the save is answered late
        held.pop().continue_()
        page.wait_for_function("() => fewclickTest.maskWays?.made.length === 1")
        seconds = page.evaluate("() => fewclickTest.maskWays.made[0].seconds")
        assert 2.0 <= seconds < 3.0, f"timed {seconds} s: to the save's answer, not to Enter"
        assert page.errors == []
    finally:
        context.close()


def test_a_mask_saved_before_the_last_save_is_answered_waits_for_it_and_is_saved_too(server, page):
    """Enter on a mask, then on the next before the first save is answered (a loaded server):
    the second save goes after the first, with the revision it made, so the server does not
    refuse it as a change made in another tab; both masks are saved."""
    base, api, _, images = server
    held = []
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        before = len(api.get(f"/api/images/{images[3]}").json()["annotations"])
        _in_mask_mode_saves_held(page, base, images[3], held)
        for x in (30, 130):
            page.mouse.click(*screen(page, x, 100))
            page.wait_for_function("() => fewclickTest.seg?.answered === 1")
            page.keyboard.press("Enter")
            page.wait_for_function("() => fewclickTest.seg == null")
        page.wait_for_timeout(500)
        assert len(held) == 1, "the second save waits for the first's answer"
        held.pop().continue_()
        _until_held(page, held, 1)  # the second save, sent once the first is answered
        held.pop().continue_()
        page.wait_for_function(f"() => fewclickTest.anns.size === {before + 2}")
        assert len(api.get(f"/api/images/{images[3]}").json()["annotations"]) == before + 2
        assert "another tab" not in page.inner_text("#message")
    finally:
        context.close()


def test_ctrl_z_while_a_mask_s_save_is_under_way_undoes_that_mask_once_it_is_saved(server, page):
    """Ctrl+Z pressed before the server has answered the save of the mask just accepted waits
    for it and undoes that mask, not the step before it (the step is only known once saved)."""
    base, api, _, images = server
    held = []
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        before = api.get(f"/api/images/{images[3]}").json()["annotations"]
        _in_mask_mode_saves_held(page, base, images[3], held)
        page.mouse.click(*screen(page, 60, 100))
        page.wait_for_function("() => fewclickTest.seg?.answered === 1")
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.seg == null")
        page.keyboard.press("Control+z")
        _until_held(page, held, 1)
        held.pop().continue_()  # the save, then the undo's delete
        _until_held(page, held, 1)
        held.pop().continue_()
        page.wait_for_function("() => fewclickTest.anns.size === " + str(len(before)))
        after = api.get(f"/api/images/{images[3]}").json()["annotations"]
        assert [a["id"] for a in after] == [a["id"] for a in before], "the mask saved, then undone"
        assert "undone: 1 object accepted" in page.inner_text("#message")
    finally:
        context.close()


def _until_held(page, held: list, n: int) -> None:
    """Until ``n`` save requests are held (15 s at most)."""
    deadline = time.monotonic() + 15
    while len(held) < n:
        assert time.monotonic() < deadline, f"{n} save request(s) held, got {len(held)}"
        page.wait_for_timeout(100)


def test_a_brush_stroke_is_sent_with_the_mask_it_paints(server, page):
    """The brush's strokes go to the server with the candidate they paint, as the page shows
    it (its RLE and score), so they land on it even where the server no longer keeps that
    answer; a click after the strokes sends none (the mask under them is SAM's new one)."""
    base, _, _, images = server
    _open(page, base, images[1], {"state": "none", "note": "no finished image yet"})
    page.keyboard.press("m")
    try:
        page.mouse.click(*screen(page, 40, 100))  # away from the objects earlier tests saved here
        page.wait_for_function("() => fewclickTest.seg?.answered === 1")
        shown = page.evaluate("() => fewclickTest.seg.result.mask")
        page.keyboard.press("a")
        drag(page, 96, 50, 104, 50)
        page.wait_for_function("() => fewclickTest.seg.answeredStrokes === 1")
        first, stroked = page.segments.bodies
        assert "under" not in first and stroked["under"] == {"mask": shown, "score": 0.9}
        page.keyboard.press("a")  # back to clicks
        page.mouse.click(*screen(page, 88, 48))
        page.wait_for_function("() => fewclickTest.seg.answered === 2")
        assert "under" not in page.segments.bodies[-1] and len(page.segments.bodies[-1]["strokes"]) == 1
    finally:
        page.keyboard.press("Escape")
    assert page.errors == []
