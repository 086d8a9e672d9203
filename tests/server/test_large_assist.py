"""The model in the loop on a large image (served as tiles, read by regions): box-to-mask
and click-to-detect read windows around the box or the click at full resolution, never
the whole image."""

import numpy as np
import pytest
import tifffile
from clients import client_for

from fewclick.io.rle import rle_boxes, rle_window
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

WIDTH, HEIGHT = 5000, 3000
# bright disks: a row of 6 near (1500, 1000), and 3 far away near (4300, 2500)
NEAR = [(1300 + 70 * k, 1000, 16) for k in range(6)]
FAR = [(4200 + 80 * k, 2500, 16) for k in range(3)]
DISK = (3710, 2230, 20)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("large")
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    for cx, cy, r in [*NEAR, *FAR, DISK]:
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = (230, 200, 60)
    (root / "scene").mkdir()
    tifffile.imwrite(
        root / "scene" / "scene.tif", pixels, tile=(512, 512), photometric="rgb", compression="deflate"
    )
    return root


@pytest.fixture(scope="module")
def client(home):
    app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home])
    with client_for(app) as c:
        yield c


@pytest.fixture(scope="module")
def project(client, home):
    r = client.post(
        "/api/projects", json={"name": "scene", "folder": str(home / "scene"), "classes": ["disk"]}
    )
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    return project, client.get(f"/api/projects/{project['id']}/images").json()[0]


def _embeddings(home, project) -> list:
    return list((home / "data" / "embeddings").glob(f"{project['id']}-*.npz"))


def test_a_click_detects_the_look_alikes_in_windows_around_it(client, home, project, sam_files):
    project, image = project
    disk = project["classes"][0]["id"]
    cx, cy, r = NEAR[2]
    out = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[cx, cy, disk]]})
    assert out.status_code == 200, out.text
    boxes = np.asarray(out.json()["boxes"]).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    found = [min(np.hypot(*(centres - [x, y]).T), default=1e9) <= 6 for x, y, _ in NEAR]
    assert sum(found) >= 5, f"the look-alikes around the click: {boxes.tolist()}"
    assert not any(np.hypot(*(centres - [x, y]).T).min() <= 6 for x, y, _ in FAR), (
        "far away: not in the window"
    )
    assert len(_embeddings(home, project)) == 1, "one 1024 px window encoded, not the image"
    # a second click far away adds its window; the first window's boxes stay
    fx, fy, _ = FAR[1]
    both = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[cx, cy, disk], [fx, fy, disk]]})
    assert both.status_code == 200, both.text
    boxes = np.asarray(both.json()["boxes"]).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for x, y, _ in [*NEAR, *FAR, DISK]:  # the larger disk lies in the far click's window too
        assert np.hypot(*(centres - [x, y]).T).min() <= 6, f"the disk at ({x}, {y}) is boxed"
    assert len(_embeddings(home, project)) == 2
    assert len(boxes) == len(NEAR) + len(FAR) + 1, "each disk boxed once"


def test_box_to_mask_on_a_large_tiff_reads_a_window_at_full_resolution(client, home, project, sam_files):
    """The mask of a 40 px disk comes from a window around its box (never the whole image
    shrunk to 1024 px, where the disk would be 8 px), numbered in the image, and the
    window's embedding is kept on disk under the window's key."""
    project, image = project
    width, height, (cx, cy, r) = WIDTH, HEIGHT, DISK
    yy, xx = np.mgrid[cy - 60 : cy + 60, cx - 60 : cx + 60]
    before = len(_embeddings(home, project))
    assert client.post(f"/api/images/{image['id']}/prepare").json()["ready"] is True, (
        "a large image is never encoded whole: nothing to wait for"
    )
    box = [cx - r - 4, cy - r - 4, cx + r + 4, cy + r + 4]
    out = client.post(f"/api/images/{image['id']}/segment", json={"box": box})
    assert out.status_code == 200, out.text
    mask = out.json()["mask"]
    assert mask["size"] == [height, width], "the RLE is the image's"
    around = (box[0] - 10, box[1] - 10, box[2] + 10, box[3] + 10)
    disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2  # the window (cx - 60, cy - 60) .. (cx + 60, cy + 60)
    got = rle_window(mask, around)
    want = disk[around[1] - cy + 60 : around[3] - cy + 60, around[0] - cx + 60 : around[2] - cx + 60]
    assert (got & want).sum() / (got | want).sum() > 0.85
    assert np.abs(rle_boxes([mask])[0] - [cx - r, cy - r, cx + r + 1, cy + r + 1]).max() <= 3
    windows = _embeddings(home, project)
    assert len(windows) == before + 1, "one window's embedding, kept on disk"
    clicked = client.post(f"/api/images/{image['id']}/segment", json={"box": box, "clicks": [[cx, cy, True]]})
    assert clicked.status_code == 200 and clicked.json()["mask"]["size"] == [height, width]
    assert len(_embeddings(home, project)) == before + 1, "a click on the same box: the same window"
    far = client.post(f"/api/images/{image['id']}/segment", json={"box": box, "clicks": [[100, 100, True]]})
    assert far.status_code == 400 and "outside the window" in far.json()["detail"]


def test_a_point_snaps_to_its_object_on_the_window_around_it(client, project, sam_files):
    project, image = project
    cx, cy, r = DISK
    click = {"x": cx + 9, "y": cy - 7, "class_id": project["classes"][0]["id"]}
    out = client.post(f"/api/images/{image['id']}/snap", json=click)
    assert out.status_code == 200, out.text
    assert out.json()["method"] == "sam-centre"
    x, y = out.json()["point"]
    assert np.hypot(x - cx, y - cy) <= 3 < np.hypot(9, 7), "moved to the disk's centre, in image pixels"


def test_full_image_mode_segments_the_window_its_regions_span(client, project, sam_files, monkeypatch):
    """Two regions on the larger disk and the background around it: the masks come from the
    window the points span, numbered in the image (the pixel limit of a whole image does not
    apply); a spread too wide for a window is refused."""
    from fewclick.server import fullimage

    monkeypatch.setattr(fullimage, "MAX_PIXELS", WIDTH * HEIGHT // 2)  # as a slide is over it
    project, image = project
    cx, cy, r = DISK
    disk = {"extreme": [[cx - r, cy], [cx + r, cy], [cx, cy - r], [cx, cy + r]]}
    ground = {"extreme": [[cx - 150, cy], [cx + 150, cy], [cx, cy - 150], [cx, cy + 150]], "background": True}
    out = client.post(f"/api/images/{image['id']}/fullimage", json={"regions": [disk, ground]})
    assert out.status_code == 200, out.text
    body = out.json()
    x0, y0, x1, y1 = body["window"]
    assert x0 <= cx - 150 and x1 >= cx + 150 and max(x1 - x0, y1 - y0) <= 2048
    mask = body["regions"][0]["rle"]
    assert mask["size"] == [HEIGHT, WIDTH]
    got = rle_window(mask, (cx - 40, cy - 40, cx + 40, cy + 40))
    yy, xx = np.mgrid[cy - 40 : cy + 40, cx - 40 : cx + 40]
    want = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    assert (got & want).sum() / (got | want).sum() > 0.7
    far = {"extreme": [[100, 100], [4900, 100], [2500, 50], [2500, 2900]]}
    refused = client.post(f"/api/images/{image['id']}/fullimage", json={"regions": [far]})
    assert refused.status_code == 422 and "at most 2048 px a side" in refused.json()["detail"]


def test_a_100_to_1_strip_is_served_and_assisted(client, home, sam_files):
    """20000 x 200 px, at the aspect limit: its tiles, a mask and a click far along it."""
    width, height, (cx, cy, r) = 20000, 200, (18700, 100, 18)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.full((height, width, 3), 40, np.uint8)
    pixels[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = (230, 200, 60)
    (home / "strip").mkdir()
    tifffile.imwrite(home / "strip" / "strip.tif", pixels, tile=(256, 256), photometric="rgb")
    body = {"name": "strip", "folder": str(home / "strip"), "classes": ["disk"]}
    r_project = client.post("/api/projects", json=body)
    assert r_project.status_code == 201, r_project.text
    project = r_project.json()["project"]
    image = client.get(f"/api/projects/{project['id']}/images").json()[0]
    assert (image["width"], image["height"]) == (width, height)
    assert client.get(f"/api/images/{image['id']}/tiles/0/{cx // 512}/0").status_code == 200
    box = [cx - r - 4, cy - r - 4, cx + r + 4, cy + r + 4]
    out = client.post(f"/api/images/{image['id']}/segment", json={"box": box})
    assert out.status_code == 200, out.text
    assert np.abs(rle_boxes([out.json()["mask"]])[0] - [cx - r, cy - r, cx + r + 1, cy + r + 1]).max() <= 3
    clicked = client.post(
        f"/api/images/{image['id']}/detect", json={"clicks": [[cx, cy, project["classes"][0]["id"]]]}
    )
    assert clicked.status_code == 200, clicked.text
    boxes = np.asarray(clicked.json()["boxes"]).reshape(-1, 4)
    assert len(boxes) and np.abs(boxes - box).max(1).min() <= 10, "the clicked disk is boxed"


def _sweep_done(client, image_id: int, seconds: float = 180.0) -> dict:
    import time

    end = time.monotonic() + seconds
    while True:
        out = client.get(f"/api/images/{image_id}/lookalikes")
        assert out.status_code == 200, out.text
        if out.json()["status"] != "running" or time.monotonic() > end:
            return out.json()
        time.sleep(0.5)


def test_the_sweep_finds_the_clicked_objects_look_alikes_across_the_image(client, home, sam_files):
    """A 2600 x 1000 scene: the click's window holds the disks near it; the sweep over the
    rest (3 windows, the one in view first) finds those 1500 px away too, each once, none on
    the clicked disk, and says how far it went."""
    width, height = 2600, 1000
    near = [(200 + 90 * k, 500, 16) for k in range(4)]
    far = [(2200 + 90 * k, 400, 16) for k in range(3)]
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.full((height, width, 3), 40, np.uint8)
    for cx, cy, r in [*near, *far]:
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = (230, 200, 60)
    (home / "wide").mkdir()
    tifffile.imwrite(home / "wide" / "wide.tif", pixels, tile=(256, 256), photometric="rgb")
    body = {"name": "wide", "folder": str(home / "wide"), "classes": ["disk"]}
    project = client.post("/api/projects", json=body).json()["project"]
    image = client.get(f"/api/projects/{project['id']}/images").json()[0]
    disk = project["classes"][0]["id"]
    assert client.get(f"/api/images/{image['id']}/lookalikes").status_code == 404, "none started yet"
    click = [near[0][0], near[0][1], disk]
    detected = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [click]})
    assert detected.status_code == 200, detected.text
    assert len(detected.json()["boxes"]) == len(near), "the click's window holds the near disks only"

    off = client.post(
        f"/api/images/{image['id']}/lookalikes", json={"clicks": [click], "view": [5000, 0, 6000, 10]}
    )
    assert off.status_code == 400 and "does not meet" in off.json()["detail"]
    view = [1800, 0, 2600, 1000]
    started = client.post(f"/api/images/{image['id']}/lookalikes", json={"clicks": [click], "view": view})
    assert started.status_code == 202, started.text
    assert started.json()["windows"] == 3
    swept = _sweep_done(client, image["id"])
    assert swept["status"] == "done", swept
    assert swept["windows_done"] == swept["windows"] == 3
    assert swept["method"] == "training-free"
    boxes = np.asarray(swept["boxes"]).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for x, y, _ in [*near[1:], *far]:
        assert np.hypot(*(centres - [x, y]).T).min() <= 6, f"the disk at ({x}, {y}) is found"
    assert len(boxes) == len(near) - 1 + len(far), "each look-alike once, the clicked disk not again"
    again = client.post(f"/api/images/{image['id']}/lookalikes", json={"clicks": [click], "view": view})
    assert again.json()["status"] == "done" and len(again.json()["boxes"]) == len(boxes), "the same sweep"


def test_the_sweep_refuses_a_small_image(client, home, sam_files):
    (home / "small").mkdir()
    tifffile.imwrite(home / "small" / "small.tif", np.full((300, 400, 3), 40, np.uint8), photometric="rgb")
    body = {"name": "small", "folder": str(home / "small"), "classes": ["disk"]}
    project = client.post("/api/projects", json=body).json()["project"]
    image = client.get(f"/api/projects/{project['id']}/images").json()[0]
    out = client.post(
        f"/api/images/{image['id']}/lookalikes", json={"clicks": [[10, 10, project["classes"][0]["id"]]]}
    )
    assert out.status_code == 400 and "large images" in out.json()["detail"]
