"""The Label Studio ML backend of a project (``/api/projects/<id>/labelstudio``), driven
by request bodies in the shape Label Studio sends (``recorded/labelstudio_requests.json``):
health, setup with the labeling config, predict without context and with Label Studio's
interactive keypoint and rectangle context, and Basic credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from clients import auth_headers
from fastapi.testclient import TestClient

from fewclick.data.synthetic import make_dataset
from fewclick.io import read_dataset
from fewclick.io.labelstudio import brush_decode
from fewclick.server.app import create_app

REQUESTS = json.loads((Path(__file__).parent / "recorded" / "labelstudio_requests.json").read_text())


def _filled(value, **fields):
    """The recorded request with its ``$name`` placeholders filled in."""
    if isinstance(value, dict):
        return {k: _filled(v, **fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, **fields) for v in value]
    if isinstance(value, str) and value.startswith("$") and value[1:] in fields:
        return fields[value[1:]]
    if isinstance(value, str) and "$file" in value:
        return value.replace("$file", fields["file"])
    return value


@pytest.fixture(scope="module")
def backend(tmp_path_factory, db_url):
    """(client with Label Studio's Basic credentials, project, the first image, a small
    vehicle of it)."""
    root = tmp_path_factory.mktemp("data")
    make_dataset("aerial", 2, seed=5, width=256, height=256, out_dir=root / "aerial")
    app = create_app(db_url, tmp_path_factory.mktemp("server") / "data", data_roots=[root])
    token = auth_headers(app)["Authorization"].split()[1]
    basic = base64.b64encode(f"admin:{token}".encode()).decode()
    with TestClient(app, headers={"Authorization": f"Basic {basic}"}) as client:
        body = {"name": "ls", "dataset": str(root / "aerial" / "annotations.json")}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 201, r.text
        project = r.json()["project"]
        truth = read_dataset(root / "aerial" / "annotations.json")
        first = sorted(truth.images, key=lambda rec: rec.file_name)[0]
        car = first.objects[first.objects.labels == truth.classes.index("small-vehicle")].boxes[0]
        yield client, project, first, car


def _url(project, what):
    return f"/api/projects/{project['id']}/labelstudio/{what}"


def test_health_answers_without_credentials(backend):
    client, project, *_ = backend
    r = client.get(_url(project, "health"), headers={"Authorization": ""})
    assert r.status_code == 200 and r.json()["status"] == "UP"


def test_setup_checks_the_labeling_config(backend):
    client, project, *_ = backend
    r = client.post(
        _url(project, "setup"), json=_filled(REQUESTS["setup"], label_config=REQUESTS["label_config"])
    )
    assert r.status_code == 200 and r.json()["model_version"] == f"fewclick-{project['id']}-no-detector"
    bad = (
        REQUESTS["label_config"]
        .replace('value="small-vehicle"', 'value="bus"')
        .replace('value="ship"', 'value="boat"')
    )
    r = client.post(_url(project, "setup"), json=_filled(REQUESTS["setup"], label_config=bad))
    assert r.status_code == 400
    assert (
        "none of the labeling config's labels ['boat', 'bus'] is a class of project 'ls'"
        in r.json()["detail"]
    )


def test_basic_credentials_must_pair_a_user_with_their_token(backend):
    client, project, *_ = backend
    wrong = base64.b64encode(b"someone:not-a-token").decode()
    r = client.post(
        _url(project, "setup"),
        json=_filled(REQUESTS["setup"], label_config=REQUESTS["label_config"]),
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert r.status_code == 401 and "a user name and a token of that user" in r.json()["detail"]


def test_predict_before_any_training_says_why_it_is_empty(backend):
    client, project, first, _ = backend
    body = _filled(REQUESTS["predict"], label_config=REQUESTS["label_config"], file=first.file_name)
    r = client.post(_url(project, "predict"), json=body)
    assert r.status_code == 200, r.text
    [prediction] = r.json()["results"]
    assert prediction["result"] == [] and "needs a trained detector" in prediction["error"]


def test_a_keypoint_in_context_detects_the_clicked_cars(backend):
    client, project, first, car = backend
    x, y = (car[:2] + car[2:]) / 2 / 256 * 100
    context = _filled(REQUESTS["keypoint_context"], width=256, height=256, x=float(x), y=float(y))
    body = _filled(REQUESTS["predict"], label_config=REQUESTS["label_config"], file=first.file_name)
    body["params"]["context"] = context
    r = client.post(_url(project, "predict"), json=body)
    assert r.status_code == 200, r.text
    [prediction] = r.json()["results"]
    assert prediction["result"], prediction
    found = prediction["result"]
    assert {(r["type"], r["from_name"], r["to_name"]) for r in found} == {
        ("rectanglelabels", "label", "image")
    }
    assert all(r["value"]["rectanglelabels"] == ["small-vehicle"] and 0 <= r["score"] <= 1 for r in found)
    boxes = np.array([[r["value"][k] for k in ("x", "y", "width", "height")] for r in found]) / 100 * 256
    boxes[:, 2:] += boxes[:, :2]
    inter = np.clip(np.minimum(boxes[:, 2:], car[2:]) - np.maximum(boxes[:, :2], car[:2]), 0, None).prod(1)
    union = (boxes[:, 2:] - boxes[:, :2]).prod(1) + (car[2:] - car[:2]).prod() - inter
    assert (inter / union).max() > 0.5  # the clicked car is among them


def test_a_rectangle_in_context_gets_its_mask_as_a_brush(backend):
    client, project, first, car = backend
    x, y = car[:2] / 256 * 100
    w, h = (car[2:] - car[:2]) / 256 * 100
    context = _filled(
        REQUESTS["rectangle_context"], width=256, height=256, x=float(x), y=float(y), w=float(w), h=float(h)
    )
    body = _filled(REQUESTS["predict"], label_config=REQUESTS["label_config"], file=first.file_name)
    body["params"]["context"] = context
    r = client.post(_url(project, "predict"), json=body)
    assert r.status_code == 200, r.text
    [result] = r.json()["results"][0]["result"]
    assert (result["type"], result["from_name"], result["value"]["brushlabels"]) == (
        "brushlabels",
        "brush",
        ["ship"],
    )
    mask = brush_decode(result["value"]["rle"], 256, 256)
    ys, xs = np.nonzero(mask)
    assert mask.sum() > 20
    assert (
        xs.min() >= car[0] - 3
        and xs.max() <= car[2] + 3
        and ys.min() >= car[1] - 3
        and ys.max() <= car[3] + 3
    )


def test_a_task_whose_image_the_project_lacks_gets_an_empty_prediction(backend):
    client, project, *_ = backend
    body = _filled(REQUESTS["predict"], label_config=REQUESTS["label_config"], file="elsewhere.png")
    r = client.post(_url(project, "predict"), json=body)
    assert r.status_code == 200
    [prediction] = r.json()["results"]
    assert prediction["result"] == [] and "no image" in prediction["error"]
