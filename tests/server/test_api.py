"""The JSON API on one app per module; every test makes the projects it uses, so each
stands alone and in any order."""

import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from clients import client_for
from PIL import Image as PILImage

from fewclick.data.synthetic import make_dataset
from fewclick.io import read_dataset
from fewclick.io.rle import mask_to_rle, rle_to_mask
from fewclick.server.app import create_app


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_dataset("aerial", 3, seed=5, width=256, height=256, out_dir=root / "aerial")
    return root


@pytest.fixture(scope="module")
def client(tmp_path_factory, db_url):
    home = tmp_path_factory.mktemp("server")
    roots = [tmp_path_factory.getbasetemp()]  # the test data and every test's tmp_path
    app = create_app(db_url, home / "data", data_roots=roots)
    with client_for(app) as c:
        yield c


def _project(client, name, **body):
    r = client.post("/api/projects", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()["project"]


def _new_project(client, data, source="folder", **body):
    """A project of its own, made from the aerial images (``source="folder"``) or their
    dataset (``"dataset"``), with a name no other test uses."""
    path = data / "aerial" / ("images" if source == "folder" else "annotations.json")
    return _project(client, f"own-{uuid.uuid4().hex[:8]}", **{source: str(path)}, **body)


def _first_image(client, project):
    return client.get(f"/api/projects/{project['id']}/images").json()[0]


def test_a_project_from_a_folder_lists_its_images_with_status(client, data):
    project = _project(client, "folder", folder=str(data / "aerial" / "images"), classes=["car", "ship"])
    assert project["images"] == 3 and project["by_status"] == {"new": 3}
    assert [c["name"] for c in project["classes"]] == ["car", "ship"]
    assert [c["key"] for c in project["classes"]] == [1, 2]
    images = client.get(f"/api/projects/{project['id']}/images").json()
    assert [im["status"] for im in images] == ["new"] * 3 and images[0]["width"] == 256
    assert any(p["name"] == "folder" for p in client.get("/api/projects").json())


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"name": "taken", "folder": "{data}/aerial/images"}, 409, "exists already"),
        ({"name": "nowhere", "folder": "{data}/no/such/folder"}, 400, "no such folder"),
        ({"name": "both", "folder": "{data}", "dataset": "{data}"}, 400, "not both"),
        ({"name": " "}, 400, "needs a name"),
        ({"name": "missing", "dataset": "{data}/no/such/file.json"}, 400, "/no/such/file.json"),
    ],
)
def test_bad_project_requests_say_what_is_wrong(client, data, body, status, message):
    if not any(p["name"] == "taken" for p in client.get("/api/projects").json()):
        _project(client, "taken", folder=str(data / "aerial" / "images"))
    r = client.post("/api/projects", json={k: v.replace("{data}", str(data)) for k, v in body.items()})
    assert r.status_code == status and message in r.json()["detail"]


def test_an_empty_folder_and_a_malformed_coco_file_are_refused(client, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    r = client.post("/api/projects", json={"name": "empty", "folder": str(tmp_path)})
    assert r.status_code == 400 and "no readable images" in r.json()["detail"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1}], "annotations": [')
    r = client.post("/api/projects", json={"name": "bad", "dataset": str(bad), "format": "coco"})
    assert r.status_code == 400 and "bad.json" in r.json()["detail"]
    assert all(p["name"] not in ("empty", "bad") for p in client.get("/api/projects").json())


def test_missing_projects_images_and_annotations_are_404(client):
    for url in ("/api/projects/999", "/api/images/999", "/api/images/999/file", "/api/jobs/999"):
        r = client.get(url)
        assert r.status_code == 404 and "999" in r.json()["detail"], url
    assert client.delete("/api/annotations/999", params={"revision": 0}).status_code == 404


def test_annotations_autosave_under_the_image_revision(client, data):
    project = _project(client, "edit", folder=str(data / "aerial" / "images"), classes=["car", "ship"])
    car, ship = (c["id"] for c in project["classes"])
    image = _first_image(client, project)
    url = f"/api/images/{image['id']}/annotations"
    r = client.post(
        url, params={"revision": 0}, json={"class_id": car, "geometry": {"box": [10, 20, 50, 60]}}
    )
    assert r.status_code == 201 and r.json()["revision"] == 1
    ann = r.json()["annotation"]
    # another tab still on revision 0: refused, nothing overwritten
    r = client.post(url, params={"revision": 0}, json={"class_id": car, "geometry": {"box": [1, 1, 9, 9]}})
    assert r.status_code == 409 and "reload" in r.json()["detail"]
    r = client.patch(
        f"/api/annotations/{ann['id']}",
        json={"class_id": ship, "geometry": {"box": [12, 22, 52, 62]}, "revision": 1},
    )
    assert r.status_code == 200 and r.json()["annotation"]["class_id"] == ship
    got = client.get(f"/api/images/{image['id']}").json()
    assert got["status"] == "in_progress" and got["revision"] == 2
    assert [a["geometry"]["box"] for a in got["annotations"]] == [[12, 22, 52, 62]]
    r = client.delete(f"/api/annotations/{ann['id']}", params={"revision": 1})
    assert r.status_code == 409
    assert client.delete(f"/api/annotations/{ann['id']}", params={"revision": 2}).json()["revision"] == 3
    assert client.get(f"/api/images/{image['id']}").json()["annotations"] == []


@pytest.mark.parametrize(
    "kind, geometry, status, message",
    [
        ("box", {"box": [300, 300, 400, 400]}, 400, "less than 1 pixel"),
        ("box", {"box": [1, 2, 3]}, 422, '"loc":["body","geometry","box",3]'),
        ("box", {"box": [0, 0, "a", 5]}, 422, '"loc":["body","geometry","box",2]'),
        ("point", {"point": [-5, 10]}, 400, "outside the 256 x 256 image"),
        ("mask", {"mask": {"size": [10, 10], "counts": "0"}}, 400, "not the image's"),
        ("polygon", {"box": [0, 0, 5, 5]}, 422, "'box', 'rbox', 'mask' or 'point'"),
        ("mask", {"box": [0, 0, 5, 5]}, 422, "needs 'mask' in its geometry (or 'polygon')"),
        ("mask", {"polygon": [[1, 1], [5, 1]]}, 422, "at least 3 items"),
        ("mask", {"polygon": [[1, 1], [5, 1], [5, "x"]]}, 422, '"loc":["body","geometry","polygon",2,1]'),
        ("mask", {"polygon": [[300, 300], [310, 300], [310, 310]]}, 400, "covers no pixel of the 256 x 256"),
    ],
)
def test_bad_geometry_is_refused_and_nothing_saved(client, data, kind, geometry, status, message):
    project = _new_project(client, data, classes=["car"])
    image = _first_image(client, project)
    before = client.get(f"/api/images/{image['id']}").json()
    r = client.post(
        f"/api/images/{image['id']}/annotations",
        params={"revision": before["revision"]},
        json={"class_id": project["classes"][0]["id"], "kind": kind, "geometry": geometry},
    )
    assert r.status_code == status and message in r.text
    assert client.get(f"/api/images/{image['id']}").json()["revision"] == before["revision"]


def test_a_class_of_another_project_is_refused(client, data):
    a = _project(client, "class-a", folder=str(data / "aerial" / "images"), classes=["x"])
    b = _project(client, "class-b", folder=str(data / "aerial" / "images"), classes=["y"])
    r = client.post(
        f"/api/images/{_first_image(client, a)['id']}/annotations",
        params={"revision": 0},
        json={"class_id": b["classes"][0]["id"], "geometry": {"box": [0, 0, 5, 5]}},
    )
    assert r.status_code == 400 and "not a class of project" in r.json()["detail"]


def test_batches_create_and_delete_together(client, data):
    project = _project(client, "batch", folder=str(data / "aerial" / "images"))
    cls = project["classes"][0]["id"]
    image = _first_image(client, project)
    url = f"/api/images/{image['id']}/annotations/batch"
    r = client.post(
        url,
        json={
            "revision": 0,
            "create": [
                {"class_id": cls, "geometry": {"box": [0, 0, 10, 10]}},
                {"class_id": cls, "kind": "point", "geometry": {"point": [5, 5], "original": [7, 8]}},
            ],
        },
    )
    assert r.status_code == 200 and len(r.json()["created"]) == 2
    first, second = r.json()["created"]
    assert second["geometry"] == {"point": [5, 5], "original": [7, 8]}
    r = client.post(
        url,
        json={
            "revision": 1,
            "delete": [first["id"]],
            "create": [{"class_id": cls, "geometry": {"box": [0, 0, 900, 9]}}],
        },
    )
    assert r.status_code == 200 and r.json()["created"][0]["geometry"]["box"] == [0, 0, 256, 9], "clipped"
    r = client.post(url, json={"revision": 2, "delete": [first["id"]]})
    assert r.status_code == 404
    assert len(client.get(f"/api/images/{image['id']}").json()["annotations"]) == 2
    newest = client.get(f"/api/images/{image['id']}").json()["annotations"][-1]["id"]
    r = client.post(
        url,
        json={
            "revision": 2,
            "delete": [newest],
            "create": [{"class_id": cls, "geometry": {"box": [1, 1, 4, 4]}}],
        },
    )
    assert r.status_code == 200 and r.json()["created"][0]["id"] > newest, (
        "the deleted newest id is not given again"
    )


def test_uploads_refuse_non_images_truncated_and_oversized_files(client, data, tmp_path, monkeypatch):
    project = _project(client, "uploads", folder=str(data / "aerial" / "images"))
    url = f"/api/projects/{project['id']}/images"
    r = client.post(url, files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 400 and "not an image file" in r.json()["detail"]
    png = tmp_path / "good.png"
    PILImage.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(png)
    content = png.read_bytes()
    r = client.post(url, files={"file": ("cut.png", content[: len(content) // 2], "image/png")})
    assert r.status_code == 400 and "cut.png" in r.json()["detail"]
    monkeypatch.setenv("FEWCLICK_MAX_PIXELS", "1000")
    r = client.post(url, files={"file": ("big.png", content, "image/png")})
    assert r.status_code == 413, r.text
    monkeypatch.delenv("FEWCLICK_MAX_PIXELS")
    r = client.post(url, files={"file": ("good.png", content, "image/png")})
    assert r.status_code == 201 and (r.json()["width"], r.json()["height"]) == (60, 40)
    assert client.post(url, files={"file": ("good.png", content, "image/png")}).status_code == 409
    names = [im["file_name"] for im in client.get(url).json()]
    assert "good.png" in names and "cut.png" not in names and "big.png" not in names


def test_an_upload_of_many_files_says_each_one_and_adds_the_good_ones(client, data, tmp_path):
    project = _project(client, "uploads-many", classes=["cell"])
    url = f"/api/projects/{project['id']}/images"
    png = tmp_path / "a.png"
    PILImage.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(png)
    content = png.read_bytes()
    other = tmp_path / "b.png"
    PILImage.fromarray(np.full((40, 60, 3), 9, np.uint8)).save(other)
    files = [
        ("files", ("a.png", content, "image/png")),
        ("files", ("notes.txt", b"hello", "text/plain")),
        ("files", ("cut.png", content[: len(content) // 2], "image/png")),
        ("files", ("a.png", content, "image/png")),  # the same file twice in one upload
    ]
    r = client.post(url, files=files)
    assert r.status_code == 201, r.text
    said = r.json()["files"]
    assert [(f["name"], f["status"]) for f in said] == [
        ("a.png", "added"), ("notes.txt", "refused"), ("cut.png", "refused"), ("a.png", "skipped"),
    ]  # fmt: skip
    assert said[0]["image"]["width"] == 60 and "not an image file" in said[1]["reason"]
    assert "cut.png" in said[2]["reason"] and "the same file" in said[3]["reason"]
    again = client.post(url, files=[("files", ("a.png", content, "image/png"))])
    assert again.status_code == 200 and again.json()["files"][0]["status"] == "skipped", "nothing added: 200"
    another = [("files", ("a.png", other.read_bytes(), "image/png"))]  # the same name, another picture
    renamed = client.post(url, files=another).json()["files"][0]
    assert renamed["status"] == "refused" and "named 'a.png' already" in renamed["reason"]
    assert [im["file_name"] for im in client.get(url).json()] == ["a.png"], "one image, nothing half added"
    assert client.post(url).status_code == 422


def test_export_then_import_gives_back_the_same_annotations(client, data, tmp_path):
    project = _project(client, "roundtrip", dataset=str(data / "aerial" / "annotations.json"))
    source = read_dataset(data / "aerial" / "annotations.json")
    assert project["images"] == 3
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "coco"})
    assert r.status_code == 200
    exported = tmp_path / "export.json"
    exported.write_bytes(r.content)
    coco = json.loads(r.content)
    assert len(coco["annotations"]) == sum(
        len(rec.objects) - rec.objects.ignore.sum() for rec in source.images
    )
    # a second project from the export (images found beside the original file)
    again = read_dataset(exported)
    assert [c for c in again.classes] == [c["name"] for c in project["classes"]]
    for a, b in zip(
        sorted(source.images, key=lambda r: r.file_name),
        sorted(again.images, key=lambda r: r.file_name),
        strict=True,
    ):
        keep = ~a.objects.ignore
        np.testing.assert_allclose(np.sort(a.objects.boxes[keep], 0), np.sort(b.objects.boxes, 0), atol=1.0)
    # the export imported into a project made from the same folder gives the same annotations
    copy = _project(client, "roundtrip-copy", folder=str(data / "aerial"))
    r = client.post(f"/api/projects/{copy['id']}/import", json={"dataset": str(exported)})
    assert r.status_code == 200 and r.json()["warnings"] == []

    def shapes(p):
        out = {}
        for im in client.get(f"/api/projects/{p['id']}/images").json():
            anns = client.get(f"/api/images/{im['id']}").json()["annotations"]
            names = {c["id"]: c["name"] for c in client.get(f"/api/projects/{p['id']}").json()["classes"]}
            out[im["file_name"]] = sorted(
                (names[a["class_id"]], a["kind"], json.dumps(a["geometry"])) for a in anns
            )
        return out

    assert shapes(copy) == shapes(project)
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "yolo-3d"})
    assert r.status_code == 400


def test_click_to_detect_without_a_model_finds_similar_objects(client, data):
    project = _project(client, "detect", dataset=str(data / "aerial" / "annotations.json"))
    image = _first_image(client, project)
    got = client.get(f"/api/images/{image['id']}").json()
    target = got["annotations"][0]
    x0, y0, x1, y1 = target["geometry"]["box"]
    click = [(x0 + x1) / 2, (y0 + y1) / 2, target["class_id"]]
    r = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [click]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["method"] == "training-free" and out["model_version"] is None
    assert len(out["boxes"]) >= 1 and out["labels"][0] == target["class_id"]
    bx = out["boxes"][int(np.argmax(out["scores"]))]
    assert bx[0] <= click[0] <= bx[2] and bx[1] <= click[1] <= bx[3], "the clicked object is found"
    r = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[999, 5, target["class_id"]]]})
    assert r.status_code == 400 and "outside" in r.json()["detail"]
    r = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[5, 5, 12345]]})
    assert r.status_code == 400 and "not a class" in r.json()["detail"]
    rejected = {"clicks": [click], "rejected": [[1, 1, 9, 9, target["class_id"]]]}
    assert client.post(f"/api/images/{image['id']}/detect", json=rejected).status_code == 200
    rejected["rejected"][0][4] = 12345
    r = client.post(f"/api/images/{image['id']}/detect", json=rejected)
    assert r.status_code == 400 and "rejected box 0: class id 12345" in r.json()["detail"]
    r = client.post(f"/api/images/{image['id']}/detect", json={"clicks": []})
    assert r.status_code == 400 and "needs a trained detector" in r.json()["detail"]
    assert client.post(f"/api/images/{image['id']}/detect", json={}).status_code == 422


def test_box_to_mask_without_sam_files_uses_grabcut_and_takes_clicks(client, data, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path))  # no pretrained files there
    project = _new_project(client, data, "dataset")
    image = _first_image(client, project)
    box = [40, 40, 120, 110]
    r = client.post(f"/api/images/{image['id']}/segment", json={"box": box, "clicks": [[80, 75, True]]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["method"] == "grabcut" and out["mask"]["size"] == [256, 256] and out["area"] > 0
    r = client.post(f"/api/images/{image['id']}/segment", json={"box": [50, 50, 50, 80]})
    assert r.status_code == 400 and "degenerate" in r.json()["detail"]
    r = client.post(f"/api/images/{image['id']}/segment", json={"box": box, "clicks": [[-3, 5, False]]})
    assert r.status_code == 400 and "outside" in r.json()["detail"]


def test_points_snap_stays_put_without_a_model_or_sam_and_checks_input(client, data, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path))  # no pretrained files there
    project = _new_project(client, data, "dataset")
    image = _first_image(client, project)
    cls = project["classes"][0]["id"]
    r = client.post(f"/api/images/{image['id']}/snap", json={"x": 30.5, "y": 40, "class_id": cls})
    assert r.status_code == 200 and r.json() == {"method": "none", "point": [30.5, 40]}
    assert (
        client.post(f"/api/images/{image['id']}/snap", json={"x": 300, "y": 4, "class_id": cls}).status_code
        == 400
    )
    assert (
        client.post(f"/api/images/{image['id']}/snap", json={"x": 3, "y": 4, "class_id": -1}).status_code
        == 400
    )


def test_a_click_on_the_far_edge_is_outside_for_every_route(client, data, tmp_path, monkeypatch):
    """One bounds rule for detect, segment and snap (routes/assist.py ``_check_click``):
    pixel i covers [i, i + 1), as the page's ``view.inside`` holds clicks."""
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path))  # no pretrained files there
    project = _new_project(client, data, "dataset")
    image = _first_image(client, project)
    w, h, cls = image["width"], image["height"], project["classes"][0]["id"]
    url = f"/api/images/{image['id']}"
    for x, y in ((w, 4), (4, h), (-0.01, 4)):
        refused = [
            client.post(f"{url}/detect", json={"clicks": [[x, y, cls]]}),
            client.post(f"{url}/segment", json={"box": [0, 0, w, h], "clicks": [[x, y, True]]}),
            client.post(f"{url}/snap", json={"x": x, "y": y, "class_id": cls}),
        ]
        assert [(r.status_code, "outside" in r.json()["detail"]) for r in refused] == [(400, True)] * 3, x
    r = client.post(f"{url}/snap", json={"x": w - 0.01, "y": h - 0.01, "class_id": cls})
    assert r.status_code == 200 and r.json() == {"method": "none", "point": [w - 0.01, h - 0.01]}


def test_masks_are_stored_as_rle_with_their_box(client, data):
    project = _new_project(client, data)
    cls = project["classes"][0]["id"]
    image = _first_image(client, project)
    mask = np.zeros((256, 256), bool)
    mask[10:20, 30:45] = True
    r = client.post(
        f"/api/images/{image['id']}/annotations",
        params={"revision": image["revision"]},
        json={"class_id": cls, "kind": "mask", "geometry": {"mask": mask_to_rle(mask)}, "quality": 0.8},
    )
    assert r.status_code == 201
    ann = r.json()["annotation"]
    assert ann["geometry"]["box"] == [30, 10, 45, 20] and ann["quality"] == 0.8
    empty = mask_to_rle(np.zeros((256, 256), bool))
    r = client.post(
        f"/api/images/{image['id']}/annotations",
        params={"revision": image["revision"] + 1},
        json={"class_id": cls, "kind": "mask", "geometry": {"mask": empty}},
    )
    assert r.status_code == 400 and "empty" in r.json()["detail"]


def test_a_polygon_outlined_by_hand_is_filled_into_a_mask_and_keeps_its_vertices(client, data):
    project = _new_project(client, data)
    image = _first_image(client, project)
    outline = [[30, 10], [45, 10], [45, 20], [30, 20]]
    r = client.post(
        f"/api/images/{image['id']}/annotations",
        params={"revision": image["revision"]},
        json={
            "class_id": project["classes"][0]["id"],
            "kind": "mask",
            "geometry": {"polygon": outline},
            "source": "polygon",
        },
    )
    assert r.status_code == 201, r.text
    g = r.json()["annotation"]["geometry"]
    mask = rle_to_mask(g["mask"])
    want = np.zeros((256, 256), bool)
    want[10:20, 30:45] = True  # COCO's rule: the pixels whose centres the outline holds
    assert np.array_equal(mask, want)
    assert g["box"] == [30, 10, 45, 20] and g["polygon"] == outline


def test_large_images_are_served_as_tiles(client, tmp_path):
    folder = tmp_path / "large"
    folder.mkdir()
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 255, (2600, 3100, 3), np.uint8)).save(folder / "big.jpg", quality=80)
    project = _project(client, "large", folder=str(folder))
    image = client.get(f"/api/images/{_first_image(client, project)['id']}").json()
    assert image["tiles"]["levels"] == 4 and image["tiles"]["sizes"][0] == [3100, 2600]
    r = client.get(f"/api/images/{image['id']}/tiles/3/0/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/images/{image['id']}/tiles/0/6/0").status_code == 200
    r = client.get(f"/api/images/{image['id']}/tiles/0/7/0")
    assert r.status_code == 404 and "outside level 0" in r.json()["detail"]
    assert client.get(f"/api/images/{image['id']}/tiles/9/0/0").status_code == 404


def test_the_interaction_log_keeps_every_action(client, data):
    project = _new_project(client, data)
    image = _first_image(client, project)
    events = [
        {"action": "click", "image_id": image["id"], "duration_ms": 120, "detail": {"x": 3}},
        {"action": "submit", "image_id": image["id"]},
    ]
    r = client.post(f"/api/projects/{project['id']}/events", json=events)
    assert r.status_code == 201 and r.json() == {"logged": 2}
    logged = client.get(f"/api/projects/{project['id']}/events").json()
    assert [e["action"] for e in logged[:2]] == ["submit", "click"] and logged[1]["user_id"] >= 1
    other = _new_project(client, data)
    r = client.post(f"/api/projects/{other['id']}/events", json=events)
    assert r.status_code == 400 and "not in project" in r.json()["detail"]


def test_an_image_with_no_objects_is_finished_only_when_said_empty(client, data):
    project = _new_project(client, data, classes=["car"])
    image = _first_image(client, project)
    url = f"/api/images/{image['id']}"
    r = client.patch(url, json={"status": "done"})
    said = r.json()["detail"]
    assert r.status_code == 409 and "has no objects" in said and '"empty": true' in said
    assert client.get(url).json()["status"] == "new", "nothing changed"
    assert client.patch(url, json={"status": "done", "empty": "yes"}).status_code == 422
    assert client.patch(url, json={"status": "done", "empty": True}).json()["status"] == "done"
    assert client.patch(url, json={"status": "done"}).status_code == 200, "already done: nothing to ask"
    other = client.get(f"/api/projects/{project['id']}/images").json()[1]
    box = {"class_id": project["classes"][0]["id"], "geometry": {"box": [1, 1, 9, 9]}}
    body = {"revision": 0, "create": [box]}
    assert client.post(f"/api/images/{other['id']}/annotations/batch", json=body).status_code == 200
    assert client.patch(f"/api/images/{other['id']}", json={"status": "done"}).status_code == 200


def test_a_project_says_whether_the_page_asks_before_an_empty_submit(client, data):
    project = _new_project(client, data)
    url = f"/api/projects/{project['id']}"
    assert client.get(url).json()["ask_empty"] is True, "asked by default"
    assert client.patch(url, json={"ask_empty": False}).json()["ask_empty"] is False
    r = client.patch(url, json={"ask_empty": "no"})
    assert r.status_code == 400 and "ask_empty must be true or false" in r.json()["detail"]
    assert client.get(url).json()["ask_empty"] is False


def test_image_status_and_classes_can_be_changed(client, data):
    project = _new_project(client, data, classes=["car", "ship"])
    image = _first_image(client, project)
    done = client.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": True})
    assert done.json()["status"] == "done"
    r = client.patch(f"/api/images/{image['id']}", json={"status": "finished"})
    assert r.status_code == 400 and "status must be one of" in r.json()["detail"]
    r = client.post(f"/api/projects/{project['id']}/classes", json={"name": "plane"})
    assert r.status_code == 201 and r.json()["key"] == 3
    assert client.post(f"/api/projects/{project['id']}/classes", json={"name": "plane"}).status_code == 409
    cls = r.json()["id"]
    r = client.patch(f"/api/classes/{cls}", json={"key": 1, "color": "#00ff00"})
    assert r.json()["key"] == 1 and r.json()["color"] == "#00ff00"
    keys = {c["name"]: c["key"] for c in client.get(f"/api/projects/{project['id']}").json()["classes"]}
    assert keys["car"] is None, "a number key picks one class"
    assert client.patch(f"/api/classes/{cls}", json={"color": "green"}).status_code == 422


def test_training_without_finished_images_is_refused_with_a_reason(client, data):
    project = _project(client, "train", folder=str(data / "aerial" / "images"))
    r = client.post(f"/api/projects/{project['id']}/train", json={"minutes": 0.1})
    assert r.status_code == 400 and "no finished image" in r.json()["detail"]


def test_the_ui_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "fewclick" in r.text
    assert client.get("/static/app.js").status_code == 200


def test_analytics_time_interactions_and_map_against_the_reference(client, data):
    project = _project(client, "analytics", folder=str(data / "aerial"))
    r = client.post(
        f"/api/projects/{project['id']}/import",
        json={"dataset": str(data / "aerial" / "annotations.json"), "reference": True},
    )
    assert r.status_code == 200
    empty = client.get(f"/api/projects/{project['id']}/analytics").json()
    assert empty["map_vs_time"] is None and empty["objects_per_minute"] is None
    source = read_dataset(data / "aerial" / "annotations.json")
    detail = client.get(f"/api/projects/{project['id']}").json()
    ids = {c["name"]: c["id"] for c in detail["classes"]}
    images = client.get(f"/api/projects/{project['id']}/images").json()
    first = images[0]
    rec = next(r for r in source.images if r.file_name == first["file_name"])
    keep = ~rec.objects.ignore
    create = [
        {"class_id": ids[source.classes[lab]], "geometry": {"box": box.tolist()}}
        for lab, box in zip(rec.objects.labels[keep], rec.objects.boxes[keep])
    ]
    r = client.post(f"/api/images/{first['id']}/annotations/batch", json={"create": create, "revision": 0})
    assert r.status_code == 200, r.text
    client.patch(f"/api/images/{first['id']}", json={"status": "done"})
    client.post(
        f"/api/projects/{project['id']}/events",
        json=[
            {"action": "click", "image_id": first["id"]},
            {"action": "accept", "image_id": first["id"]},
            {"action": "submit", "image_id": first["id"], "duration_ms": 30000},
        ],
    )
    a = client.get(f"/api/projects/{project['id']}/analytics").json()
    assert a["images"] == [
        {
            "image_id": first["id"],
            "file_name": first["file_name"],
            "seconds": 30.0,
            "interactions": 2,
            "finished": 1,
        }
    ]
    assert a["objects_per_minute"] == pytest.approx(len(create) / 0.5)
    curve = a["map_vs_time"]
    assert len(curve) == 1 and curve[0]["seconds"] == 30.0
    assert 0 < curve[0]["mAP"] < 1, "one of three images annotated exactly: recall is a third"


def test_a_large_jpeg_gets_its_overview_from_a_reduced_decode(tmp_path):
    from fewclick.server import tiles

    rng = np.random.default_rng(0)
    pixels = np.kron(
        rng.integers(0, 255, (40, 50, 3), np.uint8), np.ones((150, 150, 1), np.uint8)
    )  # 6000 x 7500
    path = tmp_path / "big.jpg"
    PILImage.fromarray(pixels).save(path, quality=90)
    cache = tmp_path / "cache"
    tiles.prepare(cache, 1, str(path), 7500, 6000)
    info = tiles.info(7500, 6000)
    assert (cache / "1" / "pyramid.tif").is_file(), "converted once into a tiled pyramid"
    for level, (w, h) in enumerate(info["sizes"]):
        cols, rows = -(-w // 512), -(-h // 512)
        ahead = cols * rows <= tiles.AHEAD_TILES  # the coarse levels are made ahead
        assert len(list((cache / "1" / str(level)).glob("*.jpg"))) == (cols * rows if ahead else 0), level
        last = tiles.get_tile(cache, 1, str(path), 7500, 6000, level, cols - 1, rows - 1)
        assert np.asarray(PILImage.open(last)).shape[:2] == (h - (rows - 1) * 512, w - (cols - 1) * 512), (
            level
        )
    top = np.asarray(PILImage.open(tiles.tile_path(cache, 1, info["levels"] - 1, 0, 0))).astype(float)
    expected = np.asarray(PILImage.fromarray(pixels).resize(top.shape[1::-1], PILImage.BOX)).astype(float)
    assert np.abs(top - expected).mean() < 12, "the overview shows the image"


def test_a_malformed_dota_import_is_refused_and_jobs_are_listed(client, data, tmp_path):
    dota = tmp_path / "dota"
    (dota / "labelTxt").mkdir(parents=True)
    (dota / "images").mkdir()
    PILImage.fromarray(np.zeros((64, 64, 3), np.uint8)).save(dota / "images" / "a.png")
    (dota / "labelTxt" / "a.txt").write_text("10 10 20 10 20 twenty 10 20 plane 0\n")
    r = client.post("/api/projects", json={"name": "bad-dota", "dataset": str(dota), "format": "dota"})
    assert r.status_code == 400 and "a.txt" in r.json()["detail"]
    assert all(p["name"] != "bad-dota" for p in client.get("/api/projects").json())
    project = _new_project(client, data)
    r = client.post(f"/api/projects/{project['id']}/train", json={"minutes": 0.1})
    assert r.status_code == 400
    assert client.get(f"/api/projects/{project['id']}/jobs").json() == [], "a refused request leaves no job"
    assert client.get("/api/projects/999/jobs").status_code == 404


def test_images_browsers_cannot_show_are_served_as_png(client, tmp_path):
    folder = tmp_path / "tiff"
    folder.mkdir()
    pixels = (np.arange(60 * 80, dtype=np.uint16).reshape(60, 80) * 13).astype(np.uint16)
    PILImage.fromarray(pixels).save(folder / "scan.tif")
    project = _project(client, "tiff", folder=str(folder))
    image = _first_image(client, project)
    r = client.get(f"/api/images/{image['id']}/file")
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    assert PILImage.open(io.BytesIO(r.content)).size == (80, 60)


def test_the_training_free_start_sizes_boxes_from_the_users_boxes_not_the_hidden_reference(client, data):
    from fewclick.server.storage.annotations import class_sizes

    project = _project(client, "sizes-hidden", folder=str(data / "aerial" / "images"))
    r = client.post(
        f"/api/projects/{project['id']}/import",
        json={"dataset": str(data / "aerial" / "annotations.json"), "reference": True},
    )
    assert r.status_code == 200, r.text
    sessions = client.app.state.sessions
    with sessions() as session:
        assert class_sizes(session, project["id"]) == {}, "reference boxes are the oracle's, not the user's"
    image = _first_image(client, project)
    cls = project["classes"][0]["id"]
    body = {"create": [{"class_id": cls, "geometry": {"box": [10, 10, 30, 50]}}], "revision": 0}
    assert client.post(f"/api/images/{image['id']}/annotations/batch", json=body).status_code == 200
    with sessions() as session:
        assert class_sizes(session, project["id"]) == {cls: pytest.approx(np.sqrt(20 * 40))}


def test_the_training_free_start_shows_a_few_look_alikes_per_object_of_the_fullest_finished_image(
    client, data
):
    project = _project(client, "look-alike-cap", folder=str(data / "aerial" / "images"))
    first, second = client.get(f"/api/projects/{project['id']}/images").json()[:2]
    cls = project["classes"][0]["id"]
    click = {"clicks": [[20, 20, cls]]}
    r = client.post(f"/api/images/{second['id']}/detect", json=click)
    assert r.status_code == 200 and r.json()["look_alike_limit"] is None, "no finished image: no cap"
    boxes = [[5, 5, 15, 15], [30, 30, 40, 40]]
    body = {"create": [{"class_id": cls, "geometry": {"box": b}} for b in boxes], "revision": 0}
    assert client.post(f"/api/images/{first['id']}/annotations/batch", json=body).status_code == 200
    r = client.post(f"/api/images/{second['id']}/detect", json=click)
    assert r.json()["look_alike_limit"] is None, "boxes on an unfinished image set no cap"
    assert client.patch(f"/api/images/{first['id']}", json={"status": "done"}).status_code == 200
    r = client.post(f"/api/images/{second['id']}/detect", json=click)
    assert r.json()["look_alike_limit"] == 3 * len(boxes)
    assert sum(s < 1 for s in r.json()["scores"]) <= 3 * len(boxes)


def test_a_dataset_whose_names_carry_a_folder_imports_into_a_project_made_from_that_folder(client, data):
    """``annotations.json`` names ``images/a.png``; the project made from ``images/`` has ``a.png``."""
    project = _project(client, f"by-base-{uuid.uuid4().hex[:6]}", folder=str(data / "aerial" / "images"))
    coco = json.loads((data / "aerial" / "annotations.json").read_text())
    assert all("/" in im["file_name"] for im in coco["images"]), "the case this test is about"
    body = {"dataset": str(data / "aerial" / "annotations.json")}
    out = client.post(f"/api/projects/{project['id']}/import", json=body).json()
    assert out["warnings"] == []
    images = client.get(f"/api/projects/{project['id']}/images").json()
    assert sum(im["annotations"] for im in images) == len(coco["annotations"])


def test_sams_click_boxes_learn_the_edges_of_the_boxes_finished_before(client, data):
    """The worker learns SAM's click boxes on a finished image while the next one is prepared;
    from then on a click's answer names the classes whose SAM boxes move by the edges learnt."""
    from fewclick.server.serving import sam_available

    if not sam_available():
        pytest.skip("SAM's files are not installed (make models)")
    project = _new_project(client, data, source="dataset")
    first, second = client.get(f"/api/projects/{project['id']}/images").json()[:2]
    coco = json.loads((data / "aerial" / "annotations.json").read_text())
    image_id = next(
        im["id"] for im in coco["images"] if Path(im["file_name"]).name == Path(first["file_name"]).name
    )
    name_of = {c["id"]: c["name"] for c in coco["categories"]}
    class_of = {c["name"]: c["id"] for c in project["classes"]}
    by_class = {}
    for a in coco["annotations"]:
        if a["image_id"] == image_id:
            x, y, w, h = a["bbox"]
            by_class.setdefault(class_of[name_of[a["category_id"]]], []).append([x, y, x + w, y + h])
    cls, known = max(by_class.items(), key=lambda kv: len(kv[1]))
    assert len(known) >= 3, "the synthetic image holds 3 boxes of a class or more"
    create = [{"class_id": cls, "geometry": {"box": b}} for b in known]
    url = f"/api/images/{first['id']}/annotations/batch"
    assert client.post(url, json={"create": create, "revision": first["revision"]}).status_code == 200
    assert client.post(f"/api/images/{first['id']}/prepare").status_code == 200  # encoded as a person sees it
    for _ in range(120):
        if client.post(f"/api/images/{first['id']}/prepare").json()["ready"]:
            break
        time.sleep(0.5)
    x0, y0, x1, y1 = known[0]
    click = {"clicks": [[(x0 + x1) / 2, (y0 + y1) / 2, cls]]}
    assert client.post(f"/api/images/{second['id']}/detect", json=click).json()["fitted_classes"] == []
    assert client.patch(f"/api/images/{first['id']}", json={"status": "done"}).status_code == 200
    fitted = []
    for _ in range(120):  # learnt in the background of the next prepare
        assert client.post(f"/api/images/{second['id']}/prepare").status_code == 200
        fitted = client.post(f"/api/images/{second['id']}/detect", json=click).json()["fitted_classes"]
        if fitted:
            break
        time.sleep(0.5)
    assert fitted == [cls]
