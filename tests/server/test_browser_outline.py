"""Mask mode's outline (L) in real headless Chromium: SAM's mask turned into an outline of
few vertices, a vertex dragged, inserted, deleted and a stretch redrawn, each one undo
step; Enter saves the outline filled (the very mask the simulator fills); a self-crossing
or off-image edit refused with a message and the last good outline kept; undo across mask
-> outline -> mask; a saved mask reopened and edited; a click on a saved mask opens it, not a new mask
on top of it.

No model runs: the page's segment requests are answered by the test with a fixed mask (a
disc with a square hole, and a second part beside it); the outline route is the app's own.
"""

import json

import httpx
import numpy as np
import pytest
from browser import chromium_page, drag, live_server, log_in, screen
from clients import auth_headers, make_user
from PIL import Image as PILImage

from fewclick.io.rle import mask_to_rle, rle_boxes, rle_to_mask
from fewclick.outline import editable_outline, fill_outline
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

USER, PASSWORD = "ann", "a long password"
H, W = 120, 160


def _sam_mask() -> np.ndarray:
    ys, xs = np.mgrid[:H, :W]
    mask = (xs - 60) ** 2 + (ys - 60) ** 2 < 35**2
    mask[52:68, 52:68] = False  # a hole
    mask[20:40, 120:145] = True  # a second part
    return mask


MASK = _sam_mask()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-outline")
    (home / "images").mkdir()
    for k in range(6):
        PILImage.fromarray(np.full((H, W, 3), min(60 + 40 * k, 250), np.uint8)).save(
            home / "images" / f"im{k}.png"
        )
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app))
        body = {"name": "outline", "folder": str(home / "images"), "classes": ["thing"]}
        project = api.post("/api/projects", json=body).json()["project"]
        images = [i["id"] for i in api.get(f"/api/projects/{project['id']}/images").json()]
        # a mask saved on the fourth image, to be reopened
        create = [
            {"class_id": project["classes"][0]["id"], "kind": "mask", "geometry": {"mask": mask_to_rle(MASK)}}
        ]
        for image in (images[3], images[5]):  # and on the sixth, to be clicked
            r = api.post(f"/api/images/{image}/annotations/batch", json={"revision": 0, "create": create})
            assert r.status_code < 300, r.text
        yield base, api, images


def _segmented(route) -> None:
    rle = mask_to_rle(MASK)
    answer = {"mask": rle, "box": rle_boxes([rle])[0].tolist(), "score": 0.9, "area": int(MASK.sum())}
    body = {**answer, "method": "sam", "chosen_by": "default", "note": None, "quality": None, "changed": None}
    route.fulfill(json={**body, "candidates": []})


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.route(
            "**/api/images/*/prepare", lambda route: route.fulfill(json={"ready": True, "needs_sam": False})
        )
        page.route("**/api/images/*/segment", _segmented)
        log_in(page, server[0], USER, PASSWORD)
        yield page


def _open(page, base: str, image_id: int) -> None:
    page.keyboard.press("Escape")
    url = f"{base}/#/image/{image_id}"
    page.reload() if page.url == url else page.goto(url)
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image_id}")


def _masked(page) -> None:
    """A box around the object in mask mode, and its (stubbed) mask."""
    page.keyboard.press("m")
    drag(page, 20, 15, 150, 100)
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.answered === 0")


def _outline(page) -> None:
    """The object's mask (:func:`_masked`), then L: the outline."""
    _masked(page)
    page.keyboard.press("l")
    page.wait_for_function("() => fewclickTest.seg.outline")


def _rings(page) -> list[dict]:
    return page.evaluate("() => fewclickTest.seg.outline.rings")


def _steps(page) -> int:
    return page.evaluate("() => fewclickTest.seg.history.length")


def _drag(page, a, b) -> None:
    page.mouse.move(*screen(page, *a))
    page.mouse.down()
    page.mouse.move(*screen(page, *b), steps=5)
    page.mouse.up()


def _one_step(page, before: list[dict], edit) -> list[dict]:
    """Make the edit; check it is one undo step that Ctrl+Z takes back exactly and
    Ctrl+Shift+Z makes again; the rings after it."""
    steps, drawn = _steps(page), len(page.evaluate("() => fewclickTest.outlineTimes"))
    edit()
    page.wait_for_function(f"() => fewclickTest.seg.history.length === {steps + 1}")
    # its mask drawn (the time the test hook keeps), before it is undone
    page.wait_for_function(f"() => fewclickTest.outlineTimes.length === {drawn + 1}")
    after = _rings(page)
    assert after != before
    page.keyboard.press("Control+z")
    assert _rings(page) == before, "Ctrl+Z takes the edit back, exactly"
    page.keyboard.press("Control+Shift+z")
    assert _rings(page) == after and _steps(page) == steps + 1
    return after


def _as_python(rings: list[dict]) -> list[tuple[np.ndarray, bool]]:
    return [(np.array(r["points"], float), r["hole"]) for r in rings]


def _outer(rings: list[dict]) -> int:
    """The disc's ring: the part that is no hole and holds the most vertices."""
    return max((i for i, r in enumerate(rings) if not r["hole"]), key=lambda i: len(rings[i]["points"]))


def test_edit_the_outline_then_save_the_mask(server, page):
    base, api, images = server
    _open(page, base, images[0])
    _outline(page)
    rings = _rings(page)
    want = editable_outline(MASK)
    assert sorted(r["hole"] for r in rings) == [False, False, True], "two parts and a hole"
    assert sum(len(r["points"]) for r in rings) == sum(len(r) for r, _ in want)
    assert "parts" in page.inner_text("#mode-help")
    k = _outer(rings)
    ring = rings[k]["points"]
    n = len(ring)

    # a vertex dragged 6 px out of the disc
    x, y = ring[0]
    out = np.array([x - 60, y - 60]) / np.hypot(x - 60, y - 60) * 6
    rings = _one_step(page, rings, lambda: _drag(page, (x, y), (x + out[0], y + out[1])))
    assert rings[k]["points"][0] == pytest.approx([x + out[0], y + out[1]], abs=0.5)

    # a vertex inserted at the middle of edge 2
    a, b = rings[k]["points"][2], rings[k]["points"][3]
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    rings = _one_step(page, rings, lambda: page.mouse.click(*screen(page, *mid)))
    assert len(rings[k]["points"]) == n + 1 and rings[k]["points"][3] == pytest.approx(mid, abs=0.5)

    # a vertex deleted by a right click
    gone = rings[k]["points"][5]
    rings = _one_step(page, rings, lambda: page.mouse.click(*screen(page, *gone), button="right"))
    assert len(rings[k]["points"]) == n and gone not in rings[k]["points"]

    # a stretch redrawn: Shift+click vertex 6, two clicks outside, a click on vertex 8
    p6, p7, p8 = rings[k]["points"][6:9]
    clicks = [_outward(p6, 5), _outward(p8, 5)]

    def redraw():
        page.keyboard.down("Shift")
        page.mouse.click(*screen(page, *p6))
        page.keyboard.up("Shift")
        for c in clicks:
            page.mouse.click(*screen(page, *c))
        page.mouse.click(*screen(page, *p8))

    rings = _one_step(page, rings, redraw)
    got = rings[k]["points"]
    assert p7 not in got and len(got) == n + 1, "vertex 7 replaced by the two clicks"
    assert all(any(np.hypot(q[0] - c[0], q[1] - c[1]) < 0.5 for q in got) for c in clicks)

    times = page.evaluate("() => fewclickTest.outlineTimes")
    assert len(times) == 4 and all(0 <= t < 5000 for t in times), "one time an edit, none an undo or redo"

    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    [ann] = api.get(f"/api/images/{images[0]}").json()["annotations"]
    assert ann["kind"] == "mask" and ann["source"] == "outline" and ann["backend"] == "sam"
    saved = rle_to_mask(ann["geometry"]["mask"])
    np.testing.assert_array_equal(saved, fill_outline(_as_python(rings), H, W))
    assert saved.sum() > fill_outline(want, H, W).sum(), "the drag and the redraw moved the boundary out"
    assert not saved[60, 60], "the hole stays a hole"
    assert page.evaluate("() => fewclickTest.seg") is None
    assert page.errors == []


def _dragged_out(page, rings: list[dict], index: int, by: float) -> list[dict]:
    """Vertex ``index`` of the disc's ring dragged ``by`` px out of the disc, one undo step;
    the rings after it."""
    x, y = rings[_outer(rings)]["points"][index]
    steps = _steps(page)
    _drag(page, (x, y), _outward((x, y), by))
    page.wait_for_function(f"() => fewclickTest.seg.history.length === {steps + 1}")
    return _rings(page)


def _outward(p, by: float) -> tuple[float, float]:
    v = np.array([p[0] - 60, p[1] - 60])
    return tuple(np.array(p) + v / np.hypot(*v) * by)


def test_a_crossing_or_off_image_edit_is_refused_and_the_last_good_outline_kept(server, page):
    base, api, images = server
    _open(page, base, images[1])
    _outline(page)
    rings, steps = _rings(page), _steps(page)
    k = _outer(rings)
    ring = rings[k]["points"]
    far = ring[len(ring) // 2]  # across the disc from vertex 0: dragged there, past the ring
    _drag(page, ring[0], _outward(far, 5))
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('cross itself')")
    assert "kept as it was" in page.inner_text("#message")
    assert _rings(page) == rings and _steps(page) == steps, "nothing changed, no undo step"
    top = min(ring, key=lambda p: p[1])
    _drag(page, top, (top[0], -2))
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('leave the')")
    assert _rings(page) == rings and _steps(page) == steps
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    [ann] = api.get(f"/api/images/{images[1]}").json()["annotations"]
    np.testing.assert_array_equal(rle_to_mask(ann["geometry"]["mask"]), fill_outline(_as_python(rings), H, W))
    assert page.errors == []


def test_undo_across_mask_outline_mask_restores_exactly(server, page):
    base, _, images = server
    _open(page, base, images[2])
    _masked(page)
    before = page.evaluate("() => JSON.stringify(fewclickTest.seg.result)")
    page.keyboard.press("l")
    page.wait_for_function("() => fewclickTest.seg.outline")
    first = _rings(page)
    edited = _dragged_out(page, first, 0, 4)
    page.keyboard.press("l")  # back to the mask
    page.wait_for_function("() => fewclickTest.seg.outline === null")
    assert page.evaluate("() => JSON.stringify(fewclickTest.seg.result)") == before
    page.keyboard.press("Control+z")
    assert _rings(page) == edited, "the outline comes back with its edit"
    page.keyboard.press("Control+z")
    assert _rings(page) == first
    page.keyboard.press("Control+z")
    assert page.evaluate("() => fewclickTest.seg.outline") is None
    assert page.evaluate("() => JSON.stringify(fewclickTest.seg.result)") == before, "the mask, exactly"
    for want in (first, edited):
        page.keyboard.press("Control+Shift+z")
        assert _rings(page) == want
    page.keyboard.press("Escape")
    assert page.errors == []


def test_a_saved_mask_is_reopened_as_an_outline_and_edited(server, page):
    base, api, images = server
    _open(page, base, images[3])
    [old] = api.get(f"/api/images/{images[3]}").json()["annotations"]
    page.keyboard.press("v")
    page.mouse.click(*screen(page, 60, 30))  # on the disc: selected
    page.wait_for_function(f"() => fewclickTest.selected.has({old['id']})")
    page.keyboard.press("m")
    page.keyboard.press("l")
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.outline")
    rings = _rings(page)
    assert sorted(r["hole"] for r in rings) == [False, False, True]
    edited = _dragged_out(page, rings, 1, 5)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => !fewclickTest.anns.has({old['id']}) && fewclickTest.anns.size === 1")
    [new] = api.get(f"/api/images/{images[3]}").json()["annotations"]
    mask = rle_to_mask(new["geometry"]["mask"])
    np.testing.assert_array_equal(mask, fill_outline(_as_python(edited), H, W))
    assert mask.sum() > rle_to_mask(old["geometry"]["mask"]).sum(), "the vertex dragged out grew it"
    assert new["class_id"] == old["class_id"]
    page.keyboard.press("Control+z")  # the save undone: the old mask is back
    # the edited mask gone (size 1 alone holds before the undo reaches the server too)
    page.wait_for_function(f"() => !fewclickTest.anns.has({new['id']}) && fewclickTest.anns.size === 1")
    [back] = api.get(f"/api/images/{images[3]}").json()["annotations"]
    assert json.dumps(back["geometry"]["mask"]) == json.dumps(old["geometry"]["mask"])
    assert page.errors == []


def test_a_part_or_hole_removed_whole_and_a_missed_part_added(server, page):
    """What the simulated annotator also does (simulate/outline.py): Shift+right click on a
    vertex removes its ring; Shift+click off the outline, corners, and the first corner again
    add a new part. Each one undo step; the saved mask is the filled outline."""
    base, api, images = server
    _open(page, base, images[4])
    _outline(page)
    rings = _rings(page)
    hole = next(i for i, r in enumerate(rings) if r["hole"])
    corner = rings[hole]["points"][0]

    def remove():
        page.keyboard.down("Shift")
        page.mouse.click(*screen(page, *corner), button="right")
        page.keyboard.up("Shift")

    rings = _one_step(page, rings, remove)
    assert sorted(r["hole"] for r in rings) == [False, False], "the hole is gone"
    square = [(10, 95), (30, 95), (30, 112), (10, 112)]  # below the disc, off the outline

    def part():
        page.keyboard.down("Shift")
        page.mouse.click(*screen(page, *square[0]))
        page.keyboard.up("Shift")
        for c in [*square[1:], square[0]]:
            page.mouse.click(*screen(page, *c))

    rings = _one_step(page, rings, part)
    assert len(rings) == 3 and not rings[-1]["hole"]
    assert np.array(rings[-1]["points"]) == pytest.approx(np.array(square, float), abs=0.5)
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 1")
    [ann] = api.get(f"/api/images/{images[4]}").json()["annotations"]
    saved = rle_to_mask(ann["geometry"]["mask"])
    np.testing.assert_array_equal(saved, fill_outline(_as_python(rings), H, W))
    assert saved[60, 60] and saved[100, 20], "the hole filled, the new part in"
    assert page.errors == []


def test_a_click_on_a_saved_mask_opens_it_and_enter_saves_it_in_its_place_never_twice(server, page):
    """A new user clicked a saved mask in mask mode: the page made a new mask on top of it, and
    Enter saved a second object in the same place."""
    base, api, images = server
    [old] = api.get(f"/api/images/{images[5]}").json()["annotations"]
    _open(page, base, images[5])
    page.keyboard.press("m")
    page.mouse.click(*screen(page, 60, 30))  # on the saved disc
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.opened")
    page.keyboard.press("Enter")  # nothing changed: nothing saved
    page.wait_for_function("() => !fewclickTest.seg")
    assert [a["id"] for a in api.get(f"/api/images/{images[5]}").json()["annotations"]] == [old["id"]]
    page.mouse.click(*screen(page, 60, 30))
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.opened")
    page.mouse.click(*screen(page, 130, 30))  # a corrective click: the (stubbed) answer
    page.wait_for_function("() => fewclickTest.seg.answered === 1")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => !fewclickTest.anns.has({old['id']}) && fewclickTest.anns.size === 1")
    [new] = api.get(f"/api/images/{images[5]}").json()["annotations"]
    assert new["id"] != old["id"] and new["class_id"] == old["class_id"]
    np.testing.assert_array_equal(rle_to_mask(new["geometry"]["mask"]), MASK)
    assert page.errors == []
