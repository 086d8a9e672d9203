"""fewclick.client.Client against the real app: a script's whole round, from a new
project to an export, with the server's refusals raised as ApiError naming the problem."""

from __future__ import annotations

import io
import zipfile

import httpx
import numpy as np
import pytest
from clients import auth_headers
from fastapi.testclient import TestClient

from fewclick.client import AnswerError, ApiError, Client, Job
from fewclick.data.synthetic import make_dataset
from fewclick.io import Dataset, ImageRecord, read_dataset, write_dataset
from fewclick.server.app import create_app
from fewclick.types import Objects


@pytest.fixture(scope="module")
def api(tmp_path_factory, db_url):
    home = tmp_path_factory.mktemp("server")
    app = create_app(db_url, home / "data", data_roots=[tmp_path_factory.getbasetemp()])
    token = auth_headers(app)["Authorization"].split()[1]
    with TestClient(app) as http, Client(token=token, http=http) as client:
        yield client


@pytest.fixture(scope="module")
def aerial(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_dataset("aerial", 2, seed=3, width=128, height=96, out_dir=root / "aerial")
    return root / "aerial"


def test_a_script_annotates_segments_imports_and_exports(api, aerial, tmp_path):
    project = api.create_project("client-round", folder=aerial / "images", classes=["car", "tree"])
    assert [c.name for c in project.classes] == ["car", "tree"]
    images = api.images(project.id)
    assert len(images) == 2 and all(im.raw["annotations"] == 0 for im in images)
    first = images[0]

    saved = api.save(
        first.id,
        create=[{"class_id": project.class_id("car"), "kind": "box", "geometry": {"box": [4, 5, 30, 40]}}],
    )
    assert [(a.kind, a.geometry["box"]) for a in saved.annotations] == [("box", [4, 5, 30, 40])]
    moved = api.update_annotation(saved.annotations[0].id, saved.revision, geometry={"box": [6, 5, 30, 40]})
    assert moved.geometry["box"] == [6, 5, 30, 40]

    mask = api.segment(first.id, (40, 20, 90, 70), clicks=[(65, 45, True)])
    assert mask.kind == "mask" and mask.geometry["mask"]["size"] == [96, 128]
    api.save(first.id, create=[mask.to_new(project.class_id("tree"))])
    assert api.set_status(first.id, "done").status == "done"

    predictions = Objects(labels=[0], boxes=[[10, 10, 20, 20]], extra={"scores": np.array([0.4], np.float32)})
    record = ImageRecord(images[1].file_name, 128, 96, predictions, None, 1)
    write_dataset(Dataset(["car", "tree"], [record]), tmp_path / "pred.json", "coco")
    assert api.import_dataset(project.id, tmp_path / "pred.json") == []
    assert [a.score for a in api.image(images[1].id).annotations] == [0.4]

    archive = api.export(project.id, "cvat", tmp_path / "out.zip")
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as zf:
        zf.extractall(tmp_path / "cvat")
    back = read_dataset(tmp_path / "cvat")
    objs = back.image(first.file_name).objects
    assert sorted(geo for geo in ("box" if s is None else "mask" for s in objs.segmentations)) == [
        "box",
        "mask",
    ]
    assert back.image(images[1].file_name).objects.extra["scores"].tolist() == [pytest.approx(0.4)]


def test_refusals_are_api_errors_with_the_servers_message(api, aerial):
    project = api.create_project("client-refusals", folder=aerial / "images", classes=["car"])
    image = api.images(project.id)[0]
    with pytest.raises(ApiError, match=r"POST /images/\d+/segment: 400: .*outside") as refused:
        api.segment(image.id, (300, 300, 500, 500))
    assert refused.value.status == 400
    with pytest.raises(ApiError, match=r"export format must be one of coco, coco-panoptic") as refused:
        api.export(project.id, "cityscapes", "unused.zip")
    with pytest.raises(ApiError) as stale:
        api.save(
            image.id,
            create=[{"class_id": project.classes[0].id, "kind": "box", "geometry": {"box": [1, 1, 5, 5]}}],
            revision=image.revision + 7,
        )
    assert stale.value.status == 409 and "nothing was overwritten" in stale.value.detail
    with pytest.raises(KeyError, match=r"no class 'boat'; it has \['car'\]"):
        project.class_id("boat")


def test_an_answer_that_is_not_what_the_route_declares_is_an_answer_error():
    """The client parses answers with the server's models (fewclick.wire.answers)."""
    job = {"id": 4, "project_id": 1, "kind": "train", "trigger": "user", "status": "done", "progress": 1.0}
    job |= {"message": "", "elapsed_seconds": 3.5, "eta_seconds": None}
    job |= {"created_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:00:09"}
    answers = {"/api/jobs/4": job, "/api/jobs/5": {**job, "id": 5, "status": None}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answers[request.url.path]))
    with Client(http=httpx.Client(transport=transport, base_url="http://server")) as client:
        assert client.job(4) == Job(4, "train", "done") and client.job(4).finished
        with pytest.raises(AnswerError, match=r"(?s)GET /jobs/5: the answer is not a Job: .*status") as wrong:
            client.job(5)
    assert wrong.value.problems.errors()[0]["loc"] == ("status",)


def test_a_server_that_does_not_answer_is_a_connection_error():
    with (
        Client("http://127.0.0.1:9", token="x", timeout=2) as client,
        pytest.raises(ConnectionError, match="no answer"),
    ):
        client.projects()
