"""An annotation file uploaded from the page (POST /api/projects/{id}/import/upload): each
one-file format imported onto the images of its file names; classes the project lacks named,
and nothing imported until the upload says to add them; a malformed file a 400 naming the
problem, with nothing changed and no scratch file left; images not in the project warned of.
Every test makes its own project of three small synthetic images."""

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from clients import client_for
from PIL import Image as PILImage

from fewclick.io import write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.types import Objects

W, H = 60, 40  # every test image's size
NAMES = ("a.png", "b.png", "c.png")


@pytest.fixture(scope="module")
def app(tmp_path_factory, db_url):
    home = tmp_path_factory.mktemp("server")
    images = home / "images"
    images.mkdir()
    for k, name in enumerate(NAMES):
        PILImage.fromarray(np.full((H, W, 3), 60 * k, np.uint8)).save(images / name)
    return create_app(db_url, home / "data", data_roots=[home])


@pytest.fixture(scope="module")
def client(app):
    with client_for(app) as c:
        yield c


def _project(app, client, classes=("cell", "nucleus")) -> dict:
    folder = app.state.settings.data_roots[0] / "images"
    body = {"name": f"p-{uuid.uuid4().hex[:8]}", "folder": str(folder), "classes": list(classes)}
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["project"]


def _coco(boxes: dict[str, list[tuple[str, list[float]]]], categories=("cell", "nucleus")) -> bytes:
    """A COCO file: ``{image name: [(class name, [x, y, w, h]), ...]}``, every image W x H."""
    cat_id = {name: k + 1 for k, name in enumerate(categories)}
    images = [{"id": i + 1, "file_name": name, "width": W, "height": H} for i, name in enumerate(boxes)]
    rows = [(i + 1, cls, box) for i, objects in enumerate(boxes.values()) for cls, box in objects]
    anns = [
        {"id": k + 1, "image_id": i, "category_id": cat_id[cls], "bbox": box, "area": 1.0, "iscrowd": 0}
        for k, (i, cls, box) in enumerate(rows)
    ]
    cats = [{"id": k, "name": name} for name, k in cat_id.items()]
    return json.dumps({"images": images, "annotations": anns, "categories": cats}).encode()


def _upload(client, project, name: str, content: bytes, **fields):
    return client.post(
        f"/api/projects/{project['id']}/import/upload",
        files={"file": (name, content, "application/octet-stream")},
        data={k: str(v).lower() for k, v in fields.items()},
    )


def _boxes(client, project) -> dict[str, list[tuple[str, list[float]]]]:
    """The project's annotations: ``{image name: sorted [(class name, box XYXY), ...]}``."""
    classes = {c["id"]: c["name"] for c in client.get(f"/api/projects/{project['id']}").json()["classes"]}
    out = {}
    for im in client.get(f"/api/projects/{project['id']}/images").json():
        anns = client.get(f"/api/images/{im['id']}").json()["annotations"]
        out[im["file_name"]] = sorted(
            (classes[a["class_id"]], a["geometry"].get("box") or a["geometry"].get("point")) for a in anns
        )
    return out


def _class_names(client, project) -> list[str]:
    return [c["name"] for c in client.get(f"/api/projects/{project['id']}").json()["classes"]]


def _scratch_left(app) -> list[Path]:
    return list((app.state.settings.data_dir / "uploads").rglob(".annotations-*"))


def test_a_coco_file_puts_its_boxes_on_the_images_of_its_file_names(app, client):
    project = _project(app, client)
    coco = _coco(
        {
            "a.png": [("cell", [5, 5, 10, 10]), ("nucleus", [20, 10, 15, 20])],
            "b.png": [("cell", [1, 2, 3, 4])],
        },
        categories=("cell", "nucleus", "mitosis"),  # mitosis labels nothing: not asked about, not added
    )
    r = _upload(client, project, "instances.json", coco)
    assert r.status_code == 200, r.text
    said = r.json()
    assert (said["name"], said["format"]) == ("instances.json", "coco")
    assert (said["annotations"], said["images"]) == (3, 2)
    assert said["classes_added"] == [] and said["warnings"] == []
    assert said["project"]["by_status"] == {"in_progress": 2, "new": 1}
    assert _boxes(client, project) == {
        "a.png": [("cell", [5, 5, 15, 15]), ("nucleus", [20, 10, 35, 30])],
        "b.png": [("cell", [1, 2, 4, 6])],
        "c.png": [],
    }
    assert _class_names(client, project) == ["cell", "nucleus"]
    assert _scratch_left(app) == [], "the scratch copy is removed"


def test_classes_not_in_the_project_are_named_and_nothing_is_imported_until_added(app, client):
    project = _project(app, client, classes=("cell",))
    coco = _coco({"a.png": [("cell", [5, 5, 10, 10]), ("tumour", [20, 10, 15, 20]), ("blob", [0, 0, 4, 4])]},
                 categories=("cell", "tumour", "blob"))  # fmt: skip
    r = _upload(client, project, "more.json", coco)
    assert r.status_code == 409, r.text
    assert r.json()["unknown_classes"] == ["tumour", "blob"]
    assert "classes not in the project: 'tumour', 'blob'" in r.json()["detail"]
    assert "add_classes" in r.json()["detail"]
    assert _boxes(client, project)["a.png"] == [], "nothing imported"
    assert _class_names(client, project) == ["cell"]
    r = _upload(client, project, "more.json", coco, add_classes=True)
    assert r.status_code == 200, r.text
    assert r.json()["classes_added"] == ["tumour", "blob"] and r.json()["annotations"] == 3
    assert _class_names(client, project) == ["cell", "tumour", "blob"]
    assert _boxes(client, project)["a.png"] == [
        ("blob", [0, 0, 4, 4]), ("cell", [5, 5, 15, 15]), ("tumour", [20, 10, 35, 30]),
    ]  # fmt: skip


def test_a_file_for_images_not_in_the_project_says_so_in_its_warnings(app, client):
    project = _project(app, client)
    coco = _coco({"elsewhere/a.png": [("cell", [5, 5, 10, 10])], "zzz.png": [("nucleus", [1, 1, 5, 5])]})
    r = _upload(client, project, "c.json", coco)
    assert r.status_code == 200, r.text
    assert (r.json()["annotations"], r.json()["images"]) == (1, 1), "a.png matched by its base name"
    assert r.json()["warnings"] == ["skipped zzz.png: not an image of this project"]
    nowhere = _upload(client, project, "d.json", _coco({"zzz.png": [("cell", [1, 1, 5, 5])]}))
    assert nowhere.status_code == 200 and nowhere.json()["annotations"] == 0
    assert nowhere.json()["warnings"] == ["skipped zzz.png: not an image of this project"]


def test_the_readers_repairs_come_back_as_warnings(app, client):
    project = _project(app, client)
    coco = _coco({"a.png": [("cell", [50, 30, 20, 20])]})  # reaches outside the 60 x 40 image
    r = _upload(client, project, "wide.json", coco)
    assert r.status_code == 200, r.text
    assert _boxes(client, project)["a.png"] == [("cell", [50, 30, 60, 40])]
    (warning,) = r.json()["warnings"]
    assert warning.startswith("wide.json: clipped 1 box(es)"), warning


def _dataset() -> Dataset:
    objects = Objects(labels=[0, 1], boxes=[[5, 5, 15, 15], [20, 10, 36, 30]])
    empty = Objects(labels=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32))
    images = [ImageRecord("a.png", W, H, objects), ImageRecord("b.png", W, H, empty)]
    return Dataset(classes=["cell", "nucleus"], images=images)


@pytest.mark.parametrize(
    "format, written, sent",
    [
        ("coco", "instances.json", "instances.json"),
        ("labelstudio", "tasks.json", "tasks.json"),
        ("cvat", "cvat", "cvat/annotations.xml"),
        ("points", "points.json", "points.json"),
    ],
)
def test_each_one_file_format_is_read_from_the_file_alone(app, client, tmp_path, format, written, sent):
    write_dataset(_dataset(), tmp_path / written, format)
    project = _project(app, client)
    r = _upload(client, project, Path(sent).name, (tmp_path / sent).read_bytes())
    assert r.status_code == 200, r.text
    assert (r.json()["format"], r.json()["annotations"], r.json()["images"]) == (format, 2, 1)
    assert [cls for cls, _ in _boxes(client, project)["a.png"]] == ["cell", "nucleus"]


BAD = {
    "truncated JSON": ("cut.json", _coco({"a.png": [("cell", [5, 5, 10, 10])]})[:-40],
                       "cut.json: expected valid JSON, got an error at line 1 column"),
    "JSON of no format": ("notes.json", b'{"hello": [1, 2]}',
                          "notes.json: expected one of COCO JSON, Label Studio JSON, points JSON, CVAT XML"),
    "a category without a name": ("cats.json", b'{"images": [], "annotations": [], "categories": [{}]}',
                                  "cats.json: expected each category to have 'id' and 'name'"),
    "malformed XML": ("cvat.xml", b"<annotations><image name='a.png'></annotations>",
                      "cvat.xml: expected well-formed XML, got an error at line 1"),
    "not an annotation file": ("notes.txt", b"hello", "expected an annotation file"),
}  # fmt: skip


@pytest.mark.parametrize("name, content, message", BAD.values(), ids=BAD.keys())
def test_a_bad_file_is_a_400_naming_the_problem_and_nothing_changes(app, client, name, content, message):
    project = _project(app, client)
    first = _upload(client, project, "first.json", _coco({"b.png": [("cell", [1, 2, 3, 4])]}))
    assert first.status_code == 200
    before = (_boxes(client, project), client.get(f"/api/projects/{project['id']}").json())
    r = _upload(client, project, name, content)
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"], r.json()["detail"]
    assert ".annotations-" not in r.json()["detail"] and "/" not in r.json()["detail"].split(":")[0]
    assert (_boxes(client, project), client.get(f"/api/projects/{project['id']}").json()) == before
    assert _scratch_left(app) == []


@pytest.mark.parametrize(
    "format, message",
    [
        ("voc", "got 'voc', read with the files beside it: import a dataset of many files from its folder"),
        ("nonsense", "got 'nonsense' (an unknown format)"),
    ],
)
def test_a_format_one_file_does_not_hold_is_refused_naming_those_it_may_be(app, client, format, message):
    project = _project(app, client)
    r = _upload(client, project, "a.json", _coco({"a.png": [("cell", [5, 5, 10, 10])]}), format=format)
    assert r.status_code == 400 and message in r.json()["detail"], r.text
    assert "(formats coco, labelstudio, points, cvat)" in r.json()["detail"]
    assert _boxes(client, project)["a.png"] == []


def test_a_truncated_json_file_is_said_to_be_cut_off(app, client):
    project = _project(app, client)
    r = _upload(client, project, "cut.json", _coco({"a.png": [("cell", [5, 5, 10, 10])]})[:-40])
    assert r.status_code == 400 and "is the file cut off?" in r.json()["detail"], r.text


def test_a_failure_during_the_import_saves_nothing_of_it(app, client, monkeypatch):
    from fewclick.server import imports

    project = _project(app, client, classes=("cell",))
    kept = _upload(client, project, "kept.json", _coco({"c.png": [("cell", [1, 2, 3, 4])]}))
    assert kept.status_code == 200
    real = imports.import_annotations

    def half_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the classes and the rows written (flushed), then:
        raise imports.StoreError("the disk is full")

    monkeypatch.setattr(imports, "import_annotations", half_then_fail)
    boxes = {"a.png": [("cell", [5, 5, 10, 10]), ("tumour", [20, 10, 15, 20])]}
    coco = _coco(boxes, categories=("cell", "tumour"))
    r = _upload(client, project, "more.json", coco, add_classes=True)
    assert r.status_code == 400 and "the disk is full" in r.json()["detail"]
    assert _class_names(client, project) == ["cell"]
    assert _boxes(client, project) == {"a.png": [], "b.png": [], "c.png": [("cell", [1, 2, 4, 6])]}


def test_an_annotation_file_over_the_upload_limit_is_a_413_naming_it(tmp_path):
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    PILImage.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / "a.png")
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, max_upload_mb=1)
    with client_for(app) as client:
        project = client.post("/api/projects", json={"name": "p", "folder": str(images)}).json()["project"]
        big = _coco({"a.png": [("object", [1, 1, 5, 5])] * 30_000}, categories=("object",))
        assert len(big) > 2**20
        r = _upload(client, project, "big.json", big)
        assert r.status_code == 413 and "upload limit of 1 MB" in r.json()["detail"], r.text
        assert _boxes(client, project) == {"a.png": []}
