"""Box-to-mask in the app: SAM served from embeddings made ahead of the click, the backend
that made a mask kept with it, and the per-project backend comparison and pick."""

import shutil
import threading
import time

import numpy as np
import pytest
from clients import client_for

from fewclick.data.synthetic import make_dataset
from fewclick.io.rle import rle_to_mask
from fewclick.server import embeddings
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    make_dataset("cells", 1, seed=4, width=160, height=160, out_dir=root / "one")  # 10 cells
    make_dataset("cells", 3, seed=6, width=160, height=160, out_dir=root / "three")
    return root


@pytest.fixture(scope="module")
def client(home, tmp_path_factory):
    app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[tmp_path_factory.getbasetemp()])
    with client_for(app) as c:
        yield c


def _project(client, name, **body):
    r = client.post("/api/projects", json={"name": name, **body})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    return project, client.get(f"/api/projects/{project['id']}/images").json()


def _until(fn, what: str, tries: int = 600):
    """``fn()`` once it is truthy, polling every 0.2 s (no timing is asserted)."""
    for _ in range(tries):
        out = fn()
        if out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _job_done(client, job):
    job = _until(
        lambda: (j := client.get(f"/api/jobs/{job['id']}").json())["status"] in ("done", "failed") and j,
        "the job",
        tries=3000,
    )
    assert job["status"] == "done", job["message"]
    return job


def _cell_box(client, image_id):
    """The box of the image's first imported (reference or not) object, 3 px larger."""
    anns = client.get(f"/api/images/{image_id}").json()["annotations"]
    x0, y0, x1, y1 = anns[0]["geometry"]["box"]
    return [x0 - 3, y0 - 3, x1 + 3, y1 + 3]


def test_sam_encodes_ahead_serves_the_box_and_feeds_a_click_back(client, home, sam_files):
    project, images = _project(client, "sam", folder=str(home / "three" / "images"))
    first, second = images[0], images[1]
    r = client.post(f"/api/images/{first['id']}/prepare")
    assert r.status_code == 200 and r.json()["needs_sam"] and r.json()["backend"] == "sam"
    assert r.json()["ready"] is False, "a new image is not encoded yet"
    _until(lambda: client.post(f"/api/images/{first['id']}/prepare").json()["ready"], "the embedding")
    folder = home / "data" / "embeddings"
    _until(lambda: len(list(folder.glob(f"{project['id']}-*.npz"))) == 2, "the next image's embedding")
    names = sorted(p.name for p in folder.glob(f"{project['id']}-*.npz"))
    assert [n.split("-")[1] for n in names] == sorted(str(i) for i in (first["id"], second["id"]))

    box = [50, 50, 110, 110]
    out = client.post(f"/api/images/{first['id']}/segment", json={"box": box}).json()
    assert out["method"] == "sam" and out["chosen_by"] == "default" and out["area"] > 0
    assert out["quality"] is None, "no quality ranker before a comparison"
    # SAM's candidates for the box alone, the one served first, for the page's Tab; the box's
    # ellipse last, named as a shape
    assert len(out["candidates"]) == 4 and out["candidates"][0]["mask"] == out["mask"]
    assert all(c["area"] > 0 and len(c["box"]) == 4 for c in out["candidates"])
    assert [c.get("shape") for c in out["candidates"]] == [None, None, None, "ellipse"]
    assert out["candidates"][3]["box"] == [50, 50, 110, 110]
    body = {"box": box, "clicks": [[80, 80, False]]}
    clicked = client.post(f"/api/images/{first['id']}/segment", json=body).json()
    assert clicked["method"] == "sam" and clicked["mask"] != out["mask"]
    assert clicked["candidates"] == [], "a box and a click: SAM's single mask, nothing to switch to"
    # how much the click changed the mask (1 - IoU with the answer before it), for the brush hint
    assert out["changed"] is None and 0 < clicked["changed"] <= 1
    # the click refines the candidate the person switched to: another previous, another mask
    client.post(f"/api/images/{first['id']}/segment", json={"box": box})
    one = client.post(f"/api/images/{first['id']}/segment", json={**body, "candidate": 0}).json()
    assert one["mask"] == clicked["mask"], "candidate 0: the mask served, as before"
    client.post(f"/api/images/{first['id']}/segment", json={"box": box})
    three = client.post(f"/api/images/{first['id']}/segment", json={**body, "candidate": 2}).json()
    assert one["mask"] != three["mask"]
    client.post(f"/api/images/{first['id']}/segment", json={"box": box})
    shape = client.post(f"/api/images/{first['id']}/segment", json={**body, "candidate": 3})
    assert shape.status_code == 200 and shape.json()["area"] > 0, "a click after the ellipse: SAM again"
    # a stroke on the ellipse of a box the server has no answer for (made anew): the ellipse painted
    fresh, dot = [52, 52, 108, 108], {"points": [[80, 80]], "radius": 3}  # the dot inside it
    painted = client.post(
        f"/api/images/{first['id']}/segment", json={"box": fresh, "strokes": [dot], "candidate": 3}
    ).json()
    plain = client.post(f"/api/images/{first['id']}/segment", json={"box": fresh}).json()
    assert painted["mask"] == plain["candidates"][3]["mask"] != plain["mask"]
    client.post(f"/api/images/{first['id']}/segment", json={"box": box})
    r = client.post(f"/api/images/{first['id']}/segment", json={**body, "candidate": 7})
    assert r.status_code == 400 and "candidate 7 is not one of the 4 masks offered" in r.json()["detail"]

    # a restart finds the embeddings on disk: ready at once, nothing encoded again
    with client_for(
        create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    ) as again:
        assert again.post(f"/api/images/{first['id']}/prepare").json()["ready"] is True


def test_points_snap_to_the_centre_of_sams_mask_without_a_point_model(client, home, sam_files):
    project, images = _project(client, "points", dataset=str(home / "one" / "annotations.json"))
    image = client.get(f"/api/images/{images[0]['id']}").json()
    x0, y0, x1, y1 = max(
        (a["geometry"]["box"] for a in image["annotations"]), key=lambda b: (b[2] - b[0]) * (b[3] - b[1])
    )
    click = {"x": x0 + 0.35 * (x1 - x0), "y": y0 + 0.4 * (y1 - y0), "class_id": project["classes"][0]["id"]}
    out = client.post(f"/api/images/{image['id']}/snap", json=click).json()
    assert out["method"] == "sam-centre"
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    assert np.linalg.norm(np.array(out["point"]) - centre) < np.linalg.norm([click["x"], click["y"]] - centre)
    assert x0 <= out["point"][0] <= x1 and y0 <= out["point"][1] <= y1


def test_a_segment_request_during_an_encoding_waits_for_it_and_encodes_once(home, tmp_path):
    class SlowEncoder:
        has_features = True  # the maps click-to-detect reads come with the same run

        def __init__(self):
            self.release, self.calls, self.store = threading.Event(), [], {}

        def cached(self, key):
            return self.store.get(key)

        def encode(self, image, key, features=False):
            assert features, "the prepared encoding carries the feature maps"
            self.calls.append(key)
            self.release.wait(60)
            self.store[key] = ("embedding of", key)
            return self.store[key]

    folder, path = str(tmp_path), str(next((home / "one" / "images").iterdir()))
    encoder = embeddings._ENCODERS[folder] = SlowEncoder()
    assert embeddings.prepare(folder, [("k", path)]) == ["encoding"]
    got = []
    waiter = threading.Thread(target=lambda: got.append(embeddings.embedding(folder, "k", path)))
    waiter.start()
    assert embeddings.prepare(folder, [("k", path)]) == ["encoding"]
    encoder.release.set()
    waiter.join(60)
    assert got == [("embedding of", "k")] and encoder.calls == ["k"], "one encoding, waited for"
    assert embeddings.prepare(folder, [("k", path)]) == [None]


def test_without_sam_files_grabcut_serves_and_nothing_is_prepared(client, home, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path))
    project, images = _project(client, "no-sam", folder=str(home / "one" / "images"))
    r = client.post(f"/api/images/{images[0]['id']}/prepare").json()
    assert r == {
        "needs_sam": False,
        "backend": "grabcut",
        "chosen_by": "default",
        "ready": True,
        "proposals": None,
        "proposals_done": None,  # nothing is being made: no windows to count
        "proposals_windows": None,
        "proposals_partial": None,
    }
    out = client.post(f"/api/images/{images[0]['id']}/segment", json={"box": [40, 40, 100, 100]}).json()
    assert out["method"] == "grabcut" and out["quality"] is None and out["candidates"] == []
    # the brush adds a disc, the eraser takes one away, in order, over the same answer
    base = rle_to_mask(out["mask"])
    brush = {"points": [[20, 20], [30, 20]], "radius": 4}
    eraser = {"points": [[70, 70]], "radius": 6, "add": False}
    body = {"box": [40, 40, 100, 100], "strokes": [brush, eraser]}
    painted = rle_to_mask(client.post(f"/api/images/{images[0]['id']}/segment", json=body).json()["mask"])
    assert painted[20, 20] and painted[20, 30] and not base[20, 20] and not painted[70, 70]
    assert (painted[90:, 90:] == base[90:, 90:]).all(), "nothing else changes"
    r = client.put(f"/api/projects/{project['id']}/backend", json={"backend": "sam"})
    assert r.status_code == 409 and "models fetch" in r.json()["detail"]


def test_bad_mask_requests_say_what_is_wrong(client, home, tmp_path):
    folder = tmp_path / "gone"
    shutil.copytree(home / "one" / "images", folder)
    project, images = _project(client, "bad", folder=str(folder))
    image = images[0]
    r = client.post(f"/api/images/{image['id']}/segment", json={"box": [200, 200, 300, 300]})
    assert r.status_code == 400 and "outside the 160 x 160 image" in r.json()["detail"]
    beside = {"box": [40, 40, 100, 100], "strokes": [{"points": [[300, 300]], "radius": 3}]}
    r = client.post(f"/api/images/{image['id']}/segment", json=beside)
    assert r.status_code == 400 and "stroke 0 lies outside the 160 x 160 image" in r.json()["detail"]
    far = {"box": [40, 40, 100, 100], "strokes": [{"points": [[0, 0], [5e9, 5e9]], "radius": 3}]}
    r = client.post(f"/api/images/{image['id']}/segment", json=far)
    assert r.status_code == 400 and "stroke 0 reaches far outside" in r.json()["detail"]
    huge = {"box": [40, 40, 100, 100], "strokes": [{"points": [[50, 50]], "radius": 1e6}]}
    r = client.post(f"/api/images/{image['id']}/segment", json=huge)
    assert r.status_code == 400 and "radius 1e+06 px is outside" in r.json()["detail"]
    stroke = [{"points": [[50, 50]], "radius": 3}]
    small = {
        "box": [40, 40, 100, 100],
        "strokes": stroke,
        "under": {"mask": {"size": [10, 10], "counts": "Q1"}},
    }
    r = client.post(f"/api/images/{image['id']}/segment", json=small)
    assert r.status_code == 400 and "the mask under the strokes: mask size [10, 10]" in r.json()["detail"]
    torn = {**small, "under": {"mask": {"size": [160, 160], "counts": [5, 5]}}}
    r = client.post(f"/api/images/{image['id']}/segment", json=torn)
    assert r.status_code == 400 and "add up to 160 x 160" in r.json()["detail"]
    r = client.put(f"/api/projects/{project['id']}/backend", json={"backend": "magic"})
    assert r.status_code == 400 and "sam, sam_tuned, model, grabcut, box" in r.json()["detail"]
    r = client.put(f"/api/projects/{project['id']}/backend", json={"backend": "model"})
    assert r.status_code == 409 and "no trained mask model" in r.json()["detail"]
    r = client.post(f"/api/projects/{project['id']}/compare")
    assert r.status_code == 409 and "has 0: 10 more needed" in r.json()["detail"]
    backends = client.get(f"/api/projects/{project['id']}/backends").json()
    assert backends["masks_needed"] == 10 and backends["comparison"] is None
    for p in folder.iterdir():
        p.unlink()
    for url in ("segment", "prepare"):
        r = client.post(f"/api/images/{image['id']}/{url}", json={"box": [10, 10, 50, 50]})
        assert r.status_code == 404 and "is gone" in r.json()["detail"], url


def test_a_comparison_picks_the_serving_backend_with_its_ranker_and_the_user_can_override(client, home):
    project, images = _project(client, "compare", dataset=str(home / "one" / "annotations.json"))
    image = images[0]
    assert client.get(f"/api/projects/{project['id']}/backends").json()["finished_masks"] == 0
    client.patch(f"/api/images/{image['id']}", json={"status": "done"})
    r = client.post(f"/api/projects/{project['id']}/compare")
    assert r.status_code == 202, r.text
    assert "scored best" in _job_done(client, r.json())["message"]
    b = client.get(f"/api/projects/{project['id']}/backends").json()
    table = b["comparison"]["table"]
    assert {"grabcut", "box"} <= set(table) and "model" not in table
    assert all(len(row["mIoU"]) == 4 and row["instances"] == 10 for row in table.values())
    assert (
        b["serving"] == b["comparison"]["chosen"] and b["chosen_by"] == "comparison" and b["quality_ranker"]
    )
    assert table[b["serving"]]["final"] == max(row["final"] for row in table.values())

    box = _cell_box(client, image["id"])
    out = client.post(f"/api/images/{image['id']}/segment", json={"box": box}).json()
    assert out["method"] == b["serving"] and 0 <= out["quality"] <= 1, "the serving backend's own ranker"
    # the user's pick serves, and is said to be theirs
    b = client.put(f"/api/projects/{project['id']}/backend", json={"backend": "box"}).json()
    assert (b["serving"], b["chosen_by"], b["override"]) == ("box", "you", "box")
    out = client.post(f"/api/images/{image['id']}/segment", json={"box": box}).json()
    assert out["method"] == "box" and out["chosen_by"] == "you"
    # the mask keeps the backend that made it
    made = {
        "class_id": project["classes"][0]["id"],
        "kind": "mask",
        "geometry": {"mask": out["mask"]},
        "backend": out["method"],
    }
    revision = {"revision": client.get(f"/api/images/{image['id']}").json()["revision"]}
    r = client.post(f"/api/images/{image['id']}/annotations", json=made, params=revision)
    assert r.status_code == 201 and r.json()["annotation"]["backend"] == "box"
    got = client.get(f"/api/images/{image['id']}").json()["annotations"]
    assert [a["backend"] for a in got if a["id"] == r.json()["annotation"]["id"]] == ["box"]
    r = client.post(
        f"/api/images/{image['id']}/annotations", json={**made, "backend": "magic"}, params=revision
    )
    assert r.status_code == 422 and "sam, sam_tuned, model, grabcut, box" in r.text
    b = client.put(f"/api/projects/{project['id']}/backend", json={"backend": None}).json()
    assert b["chosen_by"] == "comparison" and b["override"] is None


def test_one_click_starts_a_mask_with_candidates_and_more_clicks_refine_it(client, home, sam_files):
    """Issue 54: a click inside an object, cheaper than a box dragged, starts its mask: the
    image's proposal under the click first, once the proposals are made, then SAM's candidates
    for the click, for Tab; the clicks that follow refine the candidate shown."""
    from fewclick.io import read_dataset
    from fewclick.predict.lookalike import clicked_proposal
    from fewclick.predict.proposals import Proposals

    project, images = _project(client, "click-start", folder=str(home / "one" / "images"))
    image = images[0]
    prepared = _until(
        lambda: (r := client.post(f"/api/images/{image['id']}/prepare").json())["proposals"] == "ready" and r,
        "the embedding and the proposals",
    )
    assert prepared["ready"]
    x0, y0, x1, y1 = (float(v) for v in read_dataset(home / "one").images[0].objects.boxes[0])
    centre = [(x0 + x1) / 2, (y0 + y1) / 2, True]
    out = client.post(f"/api/images/{image['id']}/segment", json={"clicks": [centre]}).json()
    assert out["method"] == "sam" and out["area"] > 0
    made = Proposals.load(next((home / "data" / "embeddings").glob(f"{project['id']}-*.proposals.npz")))
    under = clicked_proposal(made, centre[0], centre[1])
    assert under is not None, "a synthetic cell's middle is in one of its proposals"
    px, py, crop = made.masks[under]
    assert [c.get("shape") for c in out["candidates"]] == ["proposal", None, None, None]
    assert out["candidates"][0]["mask"] == out["mask"], "the proposal under the click is served"
    served = rle_to_mask(out["mask"])
    assert served.sum() == crop.sum() and served[py : py + crop.shape[0], px : px + crop.shape[1]][crop].all()
    bx0, by0, bx1, by1 = out["box"]
    assert bx0 <= centre[0] <= bx1 and by0 <= centre[1] <= by1, "the mask is around the click"
    for candidate in (0, 1):  # after the proposal (no state of SAM's) or one of SAM's own
        more = {"clicks": [centre, [x0 + 1, y0 + 1, False]], "candidate": candidate}
        client.post(f"/api/images/{image['id']}/segment", json={"clicks": [centre]})
        clicked = client.post(f"/api/images/{image['id']}/segment", json=more).json()
        assert clicked["changed"] is not None, "the same mask in the making, refined"
        assert clicked["area"] > 0 and "proposal" not in [c.get("shape") for c in clicked["candidates"]]
    # bad starts say what is wrong
    r = client.post(f"/api/images/{image['id']}/segment", json={"clicks": []})
    assert r.status_code == 400 and "starts from a box or from a positive click" in r.json()["detail"]
    r = client.post(f"/api/images/{image['id']}/segment", json={"clicks": [[50, 50, False]]})
    assert r.status_code == 400 and "positive click" in r.json()["detail"]


def test_a_small_box_in_a_larger_image_is_segmented_on_a_zoom_window(client, home, sam_files):
    """Issue 54, item 2: SAM is prompted on a window around a small box (encoded once, kept
    beside the image's embedding under the window's key); the mask comes back numbered in
    the image; a click outside the window, and a brush stroke beyond it, use the image."""
    from fewclick.io import read_dataset

    make_dataset("cells", 1, seed=9, width=640, height=480, out_dir=home / "wide")
    project, images = _project(client, "zoom", folder=str(home / "wide" / "images"))
    image = images[0]
    _until(lambda: client.post(f"/api/images/{image['id']}/prepare").json()["ready"], "the embedding")
    folder = home / "data" / "embeddings"
    before = {p.name for p in folder.glob("*_*_*_*.npz")}
    boxes = read_dataset(home / "wide").images[0].objects.boxes
    small = next(b for b in boxes if (b[2] - b[0]) * (b[3] - b[1]) < 60**2)
    x0, y0, x1, y1 = (float(v) for v in small)
    box = [x0 - 2, y0 - 2, x1 + 2, y1 + 2]
    first = client.post(f"/api/images/{image['id']}/segment", json={"box": box}).json()
    assert first["zoom"] in ("window", "encoding") and first["area"] > 0, "never held up for long"
    # asked again, as the page does, until the window's encoding is done
    out = _until(
        lambda: (
            (a := client.post(f"/api/images/{image['id']}/segment", json={"box": box}).json())["zoom"]
            == "window"
            and a
        ),
        "the zoom window",
    )
    assert out["method"] == "sam" and out["area"] > 0
    bx0, by0, bx1, by1 = out["box"]
    assert box[0] - 4 <= bx0 and bx1 <= box[2] + 4 and box[1] - 4 <= by0 and by1 <= box[3] + 4
    assert rle_to_mask(out["mask"]).shape == (480, 640), "numbered in the image, not the window"
    made = {p.name for p in folder.glob("*_*_*_*.npz")} - before
    assert len(made) == 1, f"the window's embedding is kept under its own key, got {made}"
    assert len(out["candidates"]) == 4, "Tab works in the window too"
    ellipse = out["candidates"][3]
    assert ellipse["shape"] == "ellipse" and rle_to_mask(ellipse["mask"]).shape == (480, 640)
    assert np.allclose(ellipse["box"], box, atol=1), "the ellipse fills the box"
    inside = {"box": box, "clicks": [[(x0 + x1) / 2, (y0 + y1) / 2, True]]}
    clicked = client.post(f"/api/images/{image['id']}/segment", json=inside).json()
    assert clicked["changed"] is not None, "the click refines the window's mask"
    far = {"box": box, "clicks": [*inside["clicks"], [630, 470, False]]}
    r = client.post(f"/api/images/{image['id']}/segment", json=far)
    assert r.status_code == 200 and r.json()["area"] > 0 and r.json()["zoom"] is None, r.text
    large = {"box": [100, 100, 400, 400]}
    assert client.post(f"/api/images/{image['id']}/segment", json=large).json()["zoom"] is None
    stroke = {"points": [[5, 5], [20, 5]], "radius": 3, "add": True}
    r = client.post(f"/api/images/{image['id']}/segment", json={"box": box, "strokes": [stroke]})
    assert r.status_code == 200, r.text
    painted = rle_to_mask(r.json()["mask"])
    assert painted[5, 10] and painted.sum() > out["area"], "a stroke beyond the window paints the image"
    assert {p.name for p in folder.glob("*_*_*_*.npz")} - before == made, "the window was encoded once"


def test_a_corrective_click_after_a_click_start_on_a_small_cell_is_answered_on_its_zoom_window(
    client, home, sam_files
):
    """A click start has no box, so no zoom window; the corrective click after it frames the
    mask it corrects as a dragged box would, and a small cell's mask then comes from its zoom
    window (asked again, as the page does, while the window is encoded), numbered in the
    image and around the cell."""
    from fewclick.io import read_dataset

    make_dataset("cells", 1, seed=9, width=640, height=480, out_dir=home / "framed")
    _, images = _project(client, "framed", folder=str(home / "framed" / "images"))
    image = images[0]
    _until(lambda: client.post(f"/api/images/{image['id']}/prepare").json()["ready"], "the embedding")
    boxes = read_dataset(home / "framed").images[0].objects.boxes
    x0, y0, x1, y1 = (float(v) for v in next(b for b in boxes if (b[2] - b[0]) * (b[3] - b[1]) < 60**2))
    centre = [(x0 + x1) / 2, (y0 + y1) / 2, True]
    start = client.post(f"/api/images/{image['id']}/segment", json={"clicks": [centre]}).json()
    assert start["zoom"] is None, "a click alone prompts SAM on the whole image"
    more = {"clicks": [centre, [x0 - 3, y0 - 3, False]], "candidate": 0}
    first = client.post(f"/api/images/{image['id']}/segment", json=more).json()
    assert first["zoom"] in ("window", "encoding") and first["area"] > 0
    url = f"/api/images/{image['id']}/segment"
    out = _until(lambda: (a := client.post(url, json=more).json())["zoom"] == "window" and a, "the window")
    assert rle_to_mask(out["mask"]).shape == (480, 640), "numbered in the image, not the window"
    bx0, by0, bx1, by1 = out["box"]
    assert x0 - 8 <= bx0 <= centre[0] <= bx1 <= x1 + 8 and y0 - 8 <= by0 <= centre[1] <= by1 <= y1 + 8
