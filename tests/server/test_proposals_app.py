"""SAM's proposals in the app (issue 52): made when an image is prepared, then a click's
look-alikes come from them; a torn file is made again, and an image with nothing on it
still boxes the clicked object (skipped without the pretrained SAM pair)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from clients import client_for
from PIL import Image as PILImage
from tests.detect.test_proposals import DISCS, SQUARES
from tests.detect.test_proposals import _scene as _discs_and_squares

from fewclick.metrics.detection import box_iou
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def _scene(seed: int) -> np.ndarray:
    return _discs_and_squares(seed)[0]


@pytest.fixture(scope="module")
def client(tmp_path_factory, sam_files):
    """One app on SQLite: what is tested here is the worker's, the same on any database."""
    folder = tmp_path_factory.mktemp("scenes")
    PILImage.fromarray(_scene(0)).save(folder / "a_scene.png")
    PILImage.fromarray(_scene(1)).save(folder / "b_scene.png")
    PILImage.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(folder / "c_blank.png")
    home = tmp_path_factory.mktemp("server")
    db_url = sqlite_url(home / "fewclick.db")
    app = create_app(db_url, home / "data", data_roots=[tmp_path_factory.getbasetemp()])
    with client_for(app) as c:
        c.home = home
        r = c.post(
            "/api/projects", json={"name": "discs", "folder": str(folder), "classes": ["disc", "square"]}
        )
        assert r.status_code == 201, r.text
        c.project = r.json()["project"]
        c.images = c.get(f"/api/projects/{c.project['id']}/images").json()
        yield c


def _prepared(client, image_id: int, seconds: float = 240) -> dict:
    """Prepare the image until its proposals are made."""
    end = time.monotonic() + seconds
    while True:
        r = client.post(f"/api/images/{image_id}/prepare")
        assert r.status_code == 200, r.text
        out = r.json()
        if out["proposals"] == "ready" and out["ready"]:
            return out
        assert out["proposals"] in ("making", "ready"), out
        assert time.monotonic() < end, f"proposals not made in {seconds} s: {out}"
        time.sleep(0.5)


def _click(client, image_id: int, x: float, y: float, class_id: int) -> dict:
    r = client.post(f"/api/images/{image_id}/detect", json={"clicks": [[x, y, class_id]]})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_click_on_a_disc_finds_the_other_discs_among_the_prepared_proposals(client):
    disc = client.project["classes"][0]["id"]
    image = client.images[0]
    out = _prepared(client, image["id"])
    assert out["proposals"] == "ready"
    got = _click(client, image["id"], *DISCS[0], disc)
    assert got["method"] == "look-alikes" and got["model_version"] is None
    said = got["proposals"]
    assert said["state"] == "ready" and said["made"] >= len(DISCS) + len(SQUARES) and said["unboxed"] == []
    boxes, scores = np.asarray(got["boxes"]), np.asarray(got["scores"])
    discs = np.array([[cx - 14, cy - 14, cx + 14, cy + 14] for cx, cy in DISCS], np.float32)
    squares = np.array([[cx - 10, cy - 10, cx + 10, cy + 10] for cx, cy in SQUARES], np.float32)
    assert scores[0] == 1 and box_iou(boxes[:1], discs[:1])[0, 0] >= 0.7, "the clicked disc first"
    on_disc = box_iou(boxes, discs).max(1) >= 0.7
    assert set(box_iou(boxes[on_disc], discs).argmax(1)) == set(range(len(DISCS))), "every disc is boxed"
    on_square = box_iou(boxes, squares).max(1) >= 0.5
    assert scores[on_disc].min() > scores[on_square].max(initial=-1.0), "discs score above any square"
    assert said["shown"] == len(boxes) - 1 and got["labels"] == [disc] * len(boxes)
    assert 0 <= said["threshold"] < 1 and (scores >= said["threshold"]).all()


def test_a_torn_proposals_file_is_made_again_and_feature_similarity_answers_meanwhile(client):
    disc = client.project["classes"][0]["id"]
    image = client.images[1]
    _prepared(client, image["id"])
    made = [p for p in client.home.rglob("*.proposals.npz") if p.stat().st_mtime > 0]
    assert len(made) >= 2, "the open image's and the next's proposals"
    newest = max(made, key=lambda p: p.stat().st_mtime_ns)
    torn = newest.read_bytes()[: newest.stat().st_size // 2]
    for p in made:
        p.write_bytes(torn)  # cut off mid-write, as by a full disk
    got = _click(client, image["id"], *DISCS[1], disc)
    assert got["method"] == "training-free", "a torn file is never served"
    assert got["proposals"] is None, "and nothing is being made until the page prepares again"
    assert _prepared(client, image["id"])["proposals"] == "ready"
    again = _click(client, image["id"], *DISCS[1], disc)
    assert again["method"] == "look-alikes" and again["proposals"]["shown"] >= 1


def test_a_click_on_a_blank_image_still_boxes_the_click_and_finds_nothing_like_it(client):
    disc = client.project["classes"][0]["id"]
    image = client.images[2]
    _prepared(client, image["id"])
    got = _click(client, image["id"], 150, 120, disc)
    assert got["method"] == "look-alikes" and got["proposals"]["shown"] == 0
    assert len(got["boxes"]) == 1 and got["scores"] == [1.0], "the clicked object's own box alone"
    x0, y0, x1, y1 = got["boxes"][0]
    assert x0 <= 150 <= x1 and y0 <= 120 <= y1


def test_once_an_image_is_finished_the_next_opens_with_the_proposals_like_its_objects(client):
    disc, square = (c["id"] for c in client.project["classes"])
    first, second = client.images[:2]
    boxes = [(disc, [cx - 14, cy - 14, cx + 14, cy + 14]) for cx, cy in DISCS]
    boxes += [(square, [cx - 10, cy - 10, cx + 10, cy + 10]) for cx, cy in SQUARES]
    revision = client.get(f"/api/images/{first['id']}").json()["revision"]
    create = [{"class_id": c, "geometry": {"box": b}} for c, b in boxes]
    body = {"revision": revision, "create": create}
    assert client.post(f"/api/images/{first['id']}/annotations/batch", json=body).status_code == 200
    assert client.patch(f"/api/images/{first['id']}", json={"status": "done"}).status_code == 200
    _prepared(client, second["id"])
    r = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == "look-alikes" and got["proposals"]["exemplars"] == len(DISCS) + len(SQUARES)
    found, labels = np.asarray(got["boxes"]), np.asarray(got["labels"])
    for cls, centres, half in ((disc, DISCS, 14), (square, SQUARES, 10)):
        theirs = np.array([[cx - half, cy - half, cx + half, cy + half] for cx, cy in centres], np.float32)
        mine = found[labels == cls]
        assert len(mine) and (box_iou(theirs, mine).max(1) >= 0.7).all(), (
            f"every {cls} opens boxed in its class"
        )
    assert (np.asarray(got["scores"]) < 1).all(), "no clicked object: every box is a look-alike"
    # an image with nothing on it opens with nothing
    blank = client.post(f"/api/images/{client.images[2]['id']}/detect", json={"clicks": []})
    assert blank.status_code == 200 and blank.json()["boxes"] == []


def test_a_renamed_class_keeps_its_exemplars(client):
    disc = client.project["classes"][0]["id"]
    second = client.images[1]
    assert client.patch(f"/api/classes/{disc}", json={"name": "round thing"}).status_code == 200
    got = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []}).json()
    assert got["method"] == "look-alikes" and disc in got["labels"], (
        "the renamed class's look-alikes, by its id"
    )


def test_an_exemplar_removed_from_the_panel_serves_no_more_until_put_back(client):
    disc = client.project["classes"][0]["id"]
    first, second = client.images[:2]

    def opened() -> dict:
        r = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []})
        assert r.status_code == 200, r.text
        return r.json()["proposals"]

    said = opened()
    thumbnails = said["exemplar_boxes"]
    assert len(thumbnails) == said["exemplars"] == len(DISCS) + len(SQUARES)
    saved = {a["id"]: a for a in client.get(f"/api/images/{first['id']}").json()["annotations"]}
    for t in thumbnails:  # each names the finished box it is, on its image, in its class
        mine = saved[t["annotation_id"]]
        assert t["image_id"] == first["id"] and t["class_id"] == mine["class_id"]
        np.testing.assert_allclose(t["box"], mine["geometry"]["box"], atol=0.01)
    gone = next(t["annotation_id"] for t in thumbnails if t["class_id"] == disc)
    r = client.put(f"/api/annotations/{gone}/exemplar", json={"exemplar": False})
    assert r.status_code == 200 and r.json() == {"id": gone, "exemplar": False}
    after = opened()
    assert after["exemplars"] == said["exemplars"] - 1
    assert gone not in [t["annotation_id"] for t in after["exemplar_boxes"]]
    assert client.put(f"/api/annotations/{gone}/exemplar", json={"exemplar": True}).status_code == 200
    assert opened()["exemplars"] == said["exemplars"], "put back, it serves again"
    # bad input: a word for a yes or no, an annotation that is not there
    assert client.put(f"/api/annotations/{gone}/exemplar", json={"exemplar": "maybe"}).status_code == 422
    assert client.put("/api/annotations/999999/exemplar", json={"exemplar": False}).status_code == 404


def _sure_detector(folder, classes: list[str]):
    """A tiny detector of ``classes`` from scratch made sure of objects everywhere (its
    heatmap's weights zero, its prior raised, no size range): boxes of its first class all
    over any image."""
    import torch

    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
    from fewclick.types import Objects

    path = folder / "scene.png"
    PILImage.fromarray(_scene(0)).save(path)
    boxes = [[cx - 14, cy - 14, cx + 14, cy + 14] for cx, cy in DISCS]
    boxes += [[cx - 10, cy - 10, cx + 10, cy + 10] for cx, cy in SQUARES]
    labels = [0] * len(DISCS) + [1] * len(SQUARES)
    objects = Objects(labels=np.asarray(labels, np.int64), boxes=np.asarray(boxes, np.float32))
    data = Dataset(classes, [ImageRecord("scene.png", 320, 240, objects, path, 1)])
    trained = train_detector(data, folder, detector_config_for(data, "c3det"), TrainConfig(steps=1, crop=64))
    ckpt = torch.load(trained, weights_only=False)
    bias = next(k for k in ckpt["model"] if k.endswith("heatmap.bias"))
    ckpt["model"][bias] = torch.linspace(3.0, 2.0, len(ckpt["model"][bias]))  # the first class wins ties
    weight = bias.replace(".bias", ".weight")
    ckpt["model"][weight] = torch.zeros_like(ckpt["model"][weight])
    ckpt["sizes"] = {}  # no size range of a class: every box is kept
    sure = folder / "sure.pt"
    torch.save(ckpt, sure)
    return sure


def _first_finished(client) -> None:
    """The first scene finished: its discs and squares boxed by the person."""
    disc, square = (c["id"] for c in client.project["classes"])
    first = client.images[0]
    if client.get(f"/api/images/{first['id']}").json()["status"] != "done":
        revision = client.get(f"/api/images/{first['id']}").json()["revision"]
        create = [{"class_id": disc, "geometry": {"box": [x - 14, y - 14, x + 14, y + 14]}} for x, y in DISCS]
        create += [
            {"class_id": square, "geometry": {"box": [x - 10, y - 10, x + 10, y + 10]}} for x, y in SQUARES
        ]
        body = {"revision": revision, "create": create}
        assert client.post(f"/api/images/{first['id']}/annotations/batch", json=body).status_code == 200
        assert client.patch(f"/api/images/{first['id']}", json={"status": "done"}).status_code == 200


def _version_serving(client, tmp_path, record: dict, thresholds=(0.0, 1.01)) -> None:
    """Version 1: a detector sure of discs everywhere, with the test, then train ``record``
    and per class the scores its boxes show from (squares hidden from its boxes by
    default: another source serves them)."""
    from fewclick.server.db import ModelVersion

    names = [c["name"] for c in client.get(f"/api/projects/{client.project['id']}").json()["classes"]]
    with client.app.state.sessions() as session:
        session.add(
            ModelVersion(
                project_id=client.project["id"], task="detect", version=1, images=1, method="scratch",
                path=str(_sure_detector(tmp_path, names)), created_by=1,
                metrics={"prequential": record, "score_thresholds": list(thresholds)},
            )
        )  # fmt: skip
        session.commit()


def _no_version(client) -> None:
    from fewclick.server.db import ModelVersion

    with client.app.state.sessions() as session:
        session.query(ModelVersion).filter_by(project_id=client.project["id"]).delete()
        session.commit()


def _squares_opened(got: dict, square: int) -> np.ndarray:
    """The square boxes the answer shows at the squares' floor (which must be a score)."""
    boxes, labels, scores = np.asarray(got["boxes"]), np.asarray(got["labels"]), np.asarray(got["scores"])
    floor = got["min_scores"][str(square)]
    assert floor < 1, "the squares are shown from a score"
    return boxes[(labels == square) & (scores >= floor)].reshape(-1, 4)


SQUARE_BOXES = np.array([[cx - 10, cy - 10, cx + 10, cy + 10] for cx, cy in SQUARES], np.float32)


def test_a_class_the_look_alikes_save_more_on_keeps_them_beside_the_trained_version(client, tmp_path):
    """Issue 68: one source per class. The version's record found the look-alikes save more
    on squares: the image opens with the detector's discs and the look-alikes' squares."""
    disc, square = (c["id"] for c in client.project["classes"])
    _first_finished(client)
    record = {
        "scored_images": 2,
        "saved_s": {"trainer": 9.0, "look-alikes": 6.0},
        "serves": [0],
        "sources": {"0": "trainer", "1": "look-alikes"},
        "why": {"0": "saved 9.0 s an image", "1": "look-alikes saved more"},
    }
    _version_serving(client, tmp_path, record)
    second = client.images[1]
    try:
        _prepared(
            client, client.images[0]["id"]
        )  # the finished image's objects are matched among its proposals
        _prepared(client, second["id"])  # the look-alikes serve a class: proposals are made
        got = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []}).json()
        assert got["model_version"] == 1 and got["method"] == "scratch"
        shown = _squares_opened(got, square)
        assert len(shown) and (box_iou(SQUARE_BOXES, shown).max(1) >= 0.7).all(), (
            "every square opens boxed by the look-alikes, at their own floor"
        )
        labels = np.asarray(got["labels"])
        assert (labels == disc).any() and got["min_scores"][str(disc)] == 0.0, "the detector's discs stay"
    finally:
        _no_version(client)


def test_a_class_the_fast_learner_saves_most_on_opens_with_its_boxes_and_a_click_refits_it(client, tmp_path):
    """Issue 68, item 2: the version's record found the fast learner saves the most on
    squares. The image opens with the detector's discs and the learner's squares, fit on the
    finished image's proposals; a click on a square refits it with that square at once."""
    disc, square = (c["id"] for c in client.project["classes"])
    _first_finished(client)
    record = {
        "scored_images": 2,
        "saved_s": {"trainer": 9.0, "learner": 7.0, "look-alikes": 6.0},
        "serves": [0],
        "sources": {"0": "trainer", "1": "learner"},
        "why": {"0": "saved 9.0 s an image", "1": "saved 7.0 s an image"},
        "learner_thresholds": {"1": 0.5},
    }
    _version_serving(client, tmp_path, record)
    second = client.images[1]
    try:
        _prepared(client, client.images[0]["id"])
        _prepared(client, second["id"])  # the learner serves a class: proposals are made ahead
        got = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []}).json()
        assert got["model_version"] == 1 and got["min_scores"][str(square)] == 0.5, "the learner's floor"
        shown = _squares_opened(got, square)
        assert len(shown) and (box_iou(SQUARE_BOXES, shown).max(1) >= 0.7).all(), (
            "every square opens boxed by the learner, fit on the finished image"
        )
        assert (box_iou(shown, SQUARE_BOXES).max(1) >= 0.5).all(), "and nothing else is shown as a square"
        labels = np.asarray(got["labels"])
        assert (labels == disc).any() and got["min_scores"][str(disc)] == 0.0, "the detector's discs stay"
        clicked = _click(client, second["id"], *SQUARES[0], square)
        assert clicked["learner_fit_s"] is not None, "the click refits the learner"
        first = np.asarray(clicked["boxes"])[np.asarray(clicked["labels"]) == square][:1]
        assert box_iou(first, SQUARE_BOXES[:1])[0, 0] >= 0.7, "the clicked square comes first"
        # a clicked class shows from the page's start: the answer holds the learner's boxes
        # from its floor, and the clicked object
        after = np.asarray(clicked["boxes"]).reshape(-1, 4)[np.asarray(clicked["labels"]) == square]
        assert (box_iou(SQUARE_BOXES, after).max(1) >= 0.7).all(), "what the image opened with stays"
    finally:
        _no_version(client)


def test_a_class_no_source_saved_work_on_shows_nothing_and_a_rejection_stays_rejected(client, tmp_path):
    """Issue 68, bad input: where every source lost on discs, the version's boxes of discs
    are shown neither on open nor after a click on a square (none comes back as what the
    image opened with); a square proposal the person rejected is not proposed again."""
    disc, square = (c["id"] for c in client.project["classes"])
    _first_finished(client)
    record = {
        "scored_images": 2,
        "saved_s": {"trainer": -4.0, "learner": 7.0},
        "serves": [],
        "sources": {"0": "none", "1": "learner"},
        "why": {"1": "saved 7.0 s an image"},
        "learner_thresholds": {"1": 0.5},
    }
    _version_serving(client, tmp_path, record, thresholds=(1.01, 1.01))
    second = client.images[1]
    try:
        _prepared(client, client.images[0]["id"])
        _prepared(client, second["id"])
        got = client.post(f"/api/images/{second['id']}/detect", json={"clicks": []}).json()
        assert disc not in got["labels"], "the detector's discs are not even in the answer"
        shown = _squares_opened(got, square)
        assert len(shown) >= 2, "the learner's squares open"
        clicked = _click(client, second["id"], *SQUARES[0], square)
        assert disc not in clicked["labels"], "nor after a click"
        refused = next(b for b in shown if box_iou(b[None], SQUARE_BOXES[:1])[0, 0] < 0.5)
        body = {"clicks": [[*SQUARES[0], square]], "rejected": [[*refused.tolist(), square]]}
        r = client.post(f"/api/images/{second['id']}/detect", json=body)
        assert r.status_code == 200, r.text
        after = np.asarray(r.json()["boxes"]).reshape(-1, 4)[np.asarray(r.json()["labels"]) == square]
        assert not (box_iou(refused[None], after) >= 0.5).any(), "the rejected square is not proposed again"
    finally:
        _no_version(client)
