"""Full-image mode in real headless Chromium (Debian's ``chromium``, driven by Playwright):
log in, open an image, switch to full-image mode (G), give two regions their 4 extreme
clicks, see the regions fill the image, scribble, see the areas change, undo, delete and
undo, have a bad region refused with the server's message in the page, accept, reload and
find the regions saved as mask annotations of their classes.

Served by SamCompete when the SAM files are set up, else by BoxFill (the answer's method
says which); the path is the same.
"""

import io
import json
import re
import zipfile

import cv2
import numpy as np
import PIL.Image
import pytest
from browser import chromium_page, live_server, screen
from clients import auth_headers, make_user

from fewclick.io.coco_panoptic import segment_ids
from fewclick.io.rle import rle_to_mask
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.simulate.extreme import extreme_points

USER, PASSWORD = "ann", "a long password"
H, W = 240, 320


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Grey texture (0), a red disc (1) and a blue bar (2): (RGB image, label map)."""
    rng = np.random.default_rng(1)
    image = rng.normal(120, 10, (H, W, 3)).clip(0, 255).astype(np.uint8)
    gt = np.zeros((H, W), np.int32)
    ys, xs = np.mgrid[:H, :W]
    gt[(xs - 100) ** 2 + (ys - 120) ** 2 < 50**2] = 1
    gt[40:100, 200:300] = 2
    image[gt == 1] = (210, 40, 40)
    image[gt == 2] = (40, 60, 200)
    return image, gt


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-fullimage")
    (home / "images").mkdir()
    image, gt = _scene()
    cv2.imwrite(str(home / "images" / "scene.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home])
    make_user(app, USER, "annotator", PASSWORD)
    with live_server(app) as base:
        yield base, home, app, gt


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        yield page


def _answers(page, n: int) -> None:
    """Wait for the page's n-th full-image answer (a cold worker encodes the image first)."""
    page.wait_for_function(
        f"() => fewclickTest.full.answered >= {n} && !fewclickTest.full.busy", timeout=300000
    )


def _areas(page) -> list[int]:
    """The areas the region list shows, in pixels."""
    texts = page.locator("#regions .area").all_inner_texts()
    return [int(re.match(r"(\d+) px", t).group(1)) for t in texts]


def _region(page, gt, k: int, class_name: str, answers: int) -> None:
    """Pick ``class_name`` and click region ``k``'s 4 extreme points (in a scrambled order)."""
    page.locator(".classes button", has_text=class_name).click()
    points = extreme_points(gt == k).points.tolist()
    for x, y in [points[2], points[0], points[3], points[1]]:
        page.mouse.click(*screen(page, x, y))
    _answers(page, answers)


def _log_in(page, base: str) -> None:
    """Log in through the page (a test run alone starts logged out)."""
    page.goto(f"{base}/#/")
    page.wait_for_selector("#login, #projects")
    if page.locator("#login").count():
        page.fill("#login [name=name]", USER)
        page.fill("#login [name=password]", PASSWORD)
        page.click("#login button")
        page.wait_for_selector("#projects")


def _drag(page, points) -> None:
    page.mouse.move(*screen(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*screen(page, *p), steps=4)
    page.mouse.up()


def test_full_image_regions_scribble_undo_accept_and_reload(server, page):
    import httpx

    base, home, app, gt = server
    api = httpx.Client(base_url=base, headers=auth_headers(app), timeout=60)
    body = {"name": "full", "folder": str(home / "images"), "classes": ["disc", "bar"]}
    project = api.post("/api/projects", json=body).json()["project"]

    _log_in(page, base)
    page.goto(f"{base}/#/project/{project['id']}")
    page.locator("#images a").first.click()
    page.wait_for_function("() => fewclickTest.ready")
    page.keyboard.press("g")
    assert page.locator('[data-mode="fullimage"]').get_attribute("class") == "active"

    # two regions, 4 extreme clicks each: after each 4th click the image fills
    _region(page, gt, 1, "disc", 1)
    assert page.locator("#regions [data-region]").count() == 1 and _areas(page) == [W * H]
    _region(page, gt, 2, "bar", 2)
    assert page.evaluate("() => fewclickTest.full.error") is None
    assert page.locator("#regions [data-region]").count() == 2
    two = _areas(page)
    assert sum(two) == W * H and min(two) > 0, "every pixel in one of the two regions"
    method = page.inner_text("#full-method")
    assert method.startswith("regions from sam_compete") or method.startswith("regions from box_fill")
    # the regions are drawn over the image in their classes' colours (to the canvas's
    # rounding of colours kept with their alpha)
    drawn = page.evaluate(
        """() => [[100, 120], [250, 70]].map(([x, y]) =>
            [...fewclickTest.full.overlay.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3)])"""
    )
    classes = api.get(f"/api/projects/{project['id']}").json()["classes"]
    for rgb, name in zip(drawn, ("disc", "bar"), strict=True):
        color = next(c["color"] for c in classes if c["name"] == name)
        want = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
        assert np.abs(np.subtract(rgb, want)).max() <= 2, (name, rgb, color)

    # a scribble from inside the disc across the bar: its pixels go to the disc
    _drag(page, [(100, 120), (180, 90), (250, 70)])
    _answers(page, 3)
    scribbled = _areas(page)
    assert scribbled[0] > two[0] and scribbled[1] < two[1]
    assert page.evaluate("() => fewclickTest.full.regions[0].scribbles.length") == 1

    # undo takes the scribble back
    page.keyboard.press("Control+z")
    _answers(page, 4)
    assert _areas(page) == two and page.evaluate("() => fewclickTest.full.regions[0].scribbles.length") == 0

    # delete the bar from the list, undo brings it back
    page.locator('#regions [data-region="1"]').click()
    page.keyboard.press("Delete")
    _answers(page, 5)
    assert _areas(page) == [W * H]
    page.keyboard.press("Control+z")
    _answers(page, 6)
    assert _areas(page) == two

    # 4 clicks on one row are no box: the server's message shows, the regions stay
    for x in (20, 40, 60, 80):
        page.mouse.click(*screen(page, x, 200))
    _answers(page, 7)
    assert "do not form a box" in page.inner_text("#message")
    assert page.locator("#regions [data-region]").count() == 2 and _areas(page) == two

    # accept: both regions saved as masks of their classes; reloading shows them
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size === 2")
    assert page.evaluate("() => fewclickTest.full.regions.length") == 0
    image_id = page.evaluate("() => fewclickTest.image.id")
    page.reload()
    page.wait_for_function("() => fewclickTest.ready && fewclickTest.anns.size === 2")
    classes = {c["id"]: c["name"] for c in api.get(f"/api/projects/{project['id']}").json()["classes"]}
    saved = api.get(f"/api/images/{image_id}").json()["annotations"]
    assert sorted((classes[a["class_id"]], a["kind"], a["source"]) for a in saved) == [
        ("bar", "mask", "fullimage"),
        ("disc", "mask", "fullimage"),
    ]
    masks = {classes[a["class_id"]]: rle_to_mask(a["geometry"]["mask"]) for a in saved}
    assert [int(masks["disc"].sum()), int(masks["bar"].sum())] == two
    assert not (masks["disc"] & masks["bar"]).any()

    # export from the project page as COCO panoptic: one PNG whose segments are the regions
    page.goto(f"{base}/#/project/{project['id']}")
    page.select_option("#export-format", "coco-panoptic")
    with page.expect_download() as download:
        page.locator("#export button").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        names = archive.namelist()
        panoptic = json.loads(archive.read(next(n for n in names if n.endswith(".json"))))
        png = next(n for n in names if n.endswith(".png") and not n.startswith("images/"))
        ids = segment_ids(np.asarray(PIL.Image.open(io.BytesIO(archive.read(png))).convert("RGB")))
    segments = {s["id"]: s for s in panoptic["annotations"][0]["segments_info"]}
    categories = {c["id"]: c["name"] for c in panoptic["categories"]}
    areas = {categories[s["category_id"]]: int((ids == i).sum()) for i, s in segments.items()}
    assert areas == {"disc": two[0], "bar": two[1]}
    assert page.errors == []


def test_a_long_class_list_can_be_filtered_by_name(server, page):
    """COCO panoptic projects have 133 classes: over 12, the class list has a filter."""
    import httpx

    base, home, app, _ = server
    api = httpx.Client(base_url=base, headers=auth_headers(app), timeout=60)
    names = [f"thing {i}" for i in range(12)] + ["sky-other-merged", "grass-merged"]
    body = {"name": "many classes", "folder": str(home / "images"), "classes": names}
    project = api.post("/api/projects", json=body).json()["project"]
    image_id = api.get(f"/api/projects/{project['id']}/images").json()[0]["id"]
    _log_in(page, base)
    page.goto(f"{base}/#/image/{image_id}")
    page.wait_for_function("() => fewclickTest.ready && fewclickTest.project.classes.length === 14")
    assert page.locator(".classes button:visible").count() == 14
    page.fill("#class-filter", "MERGED")
    shown = [t.strip() for t in page.locator(".classes button:visible").all_inner_texts()]
    assert shown == ["sky-other-merged", "grass-merged"]
    page.keyboard.press("g")  # typed into the filter: not a shortcut
    assert (
        page.evaluate("() => fewclickTest.mode") == "detect"
        and page.input_value("#class-filter") == "MERGEDg"
    )
    page.fill("#class-filter", "grass")
    page.locator(".classes button", has_text="grass-merged").click()
    assert page.evaluate("() => fewclickTest.classes.get(fewclickTest.cls).name") == "grass-merged"
    page.fill("#class-filter", "")
    assert page.locator(".classes button:visible").count() == 14
    assert page.errors == []


def test_enter_refuses_while_a_region_covers_no_pixel(server, page):
    """A region the others cover entirely comes back with area 0 (the route's defined
    answer); the list says so and Enter saves nothing, naming it. The server's answers are
    stubbed in the page: the last region takes every pixel."""
    import httpx

    base, home, app, _ = server
    api = httpx.Client(base_url=base, headers=auth_headers(app), timeout=60)
    body = {"name": "covered", "folder": str(home / "images"), "classes": ["disc", "bar"]}
    project = api.post("/api/projects", json=body).json()["project"]
    image_id = api.get(f"/api/projects/{project['id']}/images").json()[0]["id"]
    _log_in(page, base)
    page.goto(f"{base}/#/image/{image_id}")
    page.wait_for_function("() => fewclickTest.ready")
    page.evaluate(
        """([h, w]) => { const f = window.fetch; window.fetch = (url, init) => {
            if (!String(url).endsWith("/fullimage")) return f(url, init);
            const n = JSON.parse(init.body).regions.length;
            const regions = [...Array(n).keys()].map((i) => i === n - 1
              ? {index: i, rle: {size: [h, w], counts: [0, h * w]}, area: h * w}
              : {index: i, rle: {size: [h, w], counts: [h * w]}, area: 0});
            return Promise.resolve(new Response(JSON.stringify({regions, method: "stub", ms: 0}),
              {headers: {"content-type": "application/json"}})); }; }""",
        [H, W],
    )
    page.keyboard.press("g")
    for k, (x0, y0) in enumerate([(20, 20), (60, 60)]):
        for x, y in [(x0, y0 + 20), (x0 + 20, y0), (x0 + 40, y0 + 20), (x0 + 20, y0 + 40)]:
            page.mouse.click(*screen(page, x, y))
        _answers(page, k + 1)
    shown = page.locator("#regions .area").all_inner_texts()
    assert shown == ["0 px: covered by the others", f"{W * H} px (100.0%)"]
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('no pixel')")
    assert page.inner_text("#message").startswith("region 1 covers no pixel")
    assert (
        page.evaluate("() => fewclickTest.anns.size") == 0
        and page.evaluate("() => fewclickTest.full.regions.length") == 2
    )
    assert api.get(f"/api/images/{image_id}").json()["annotations"] == []
    page.reload()  # the page's own fetch again
    assert page.errors == []
