"""The Label Studio ML backend of a project (``/api/projects/<id>/labelstudio``), driven
by request bodies in the shape Label Studio sends (``recorded/labelstudio_requests.json``)
and by requests captured from a real Label Studio 1.23.2 (``recorded/labelstudio_captured.json``):
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
    assert r.status_code == 200 and r.json() == {"status": "UP"}, "that the server is up, and nothing more"


@pytest.mark.parametrize(("method", "what"), [("GET", "health"), ("POST", "webhook")])
def test_public_routes_answer_alike_for_a_project_that_does_not_exist(backend, method, what):
    client, project, *_ = backend
    body = {"action": "ANNOTATION_CREATED", "project": {"id": 1}}
    answers = [
        client.request(method, _url({"id": pid}, what), json=body, headers={"Authorization": ""})
        for pid in (project["id"], 987654, 2**40)
    ]
    assert len({(r.status_code, r.text) for r in answers}) == 1, [(r.status_code, r.text) for r in answers]


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


CAPTURED = json.loads((Path(__file__).parent / "recorded" / "labelstudio_captured.json").read_text())


@pytest.mark.shared_data
def test_requests_captured_from_a_real_label_studio_are_answered(tmp_path_factory, db_url):
    """Replays what Label Studio 1.23.2 sent (``recorded/labelstudio_captured.json``) against
    a project of the same bccd images: connect, pre-annotate (no detector yet: empty, with
    the reason), a keypoint (click-to-detect), a rectangle (its mask) and the webhook."""
    from conftest import shared_dataset
    from fewclick.metrics.detection import box_iou
    from fewclick.server.serving import sam_available

    bccd = shared_dataset("bccd")
    app = create_app(db_url, tmp_path_factory.mktemp("server-ls") / "data", data_roots=[bccd.parent])
    token = auth_headers(app)["Authorization"].split()[1]
    basic = {"Authorization": "Basic " + base64.b64encode(f"admin:{token}".encode()).decode()}
    with TestClient(app) as client:
        r = client.post("/api/projects", json={"name": "ls-bccd", "dataset": str(bccd)}, headers=basic)
        assert r.status_code == 201, r.text
        project_id = r.json()["project"]["id"]
        base = f"/api/projects/{project_id}/labelstudio"
        answers = []
        for req in CAPTURED["requests"]:
            headers = basic if req["auth"] == "Basic" else {}
            answer = client.request(req["method"], base + req["path"], json=req["body"], headers=headers)
            assert answer.status_code in (200, 201), (req["path"], answer.status_code, answer.text)
            answers.append(answer.json())
    health, setup, retrieve, keypoint, rectangle, webhook = answers
    assert health == {"status": "UP"} and setup["model_version"] == f"fewclick-{project_id}-no-detector"
    assert [p["result"] for p in retrieve["results"]] == [[], []]  # two tasks, nothing trained yet
    assert all("needs a trained detector" in p["error"] for p in retrieve["results"])
    found = keypoint["results"][0]["result"]
    assert found and {(r["from_name"], r["type"]) for r in found} == {("label", "rectanglelabels")}
    assert len({r["id"] for r in found}) == len(found)  # one id per region: Label Studio keys regions by it
    rect = rectangle["results"][0]["result"]
    assert len(rect) == 1 and rect[0]["type"] == "brushlabels" and rect[0]["value"]["brushlabels"] == ["WBC"]
    mask = brush_decode(rect[0]["value"]["rle"], 480, 640)
    x0, y0, x1, y1 = 230, 288, 441, 480  # the white cell the rectangle was drawn around (reference box)
    inside = mask[y0:y1, x0:x1].sum()
    assert mask.sum() > 0.2 * (x1 - x0) * (y1 - y0) and inside >= 0.9 * mask.sum()
    if sam_available():  # the clicked red cell is found, at the click's score 1
        clicked = np.array([[56, 103, 169, 210]], np.float32)  # its reference box
        sure = [r["value"] for r in found if r["score"] == 1]
        xywh = np.array([[v["x"], v["y"], v["width"], v["height"]] for v in sure])
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1) * [6.4, 4.8, 6.4, 4.8]  # % -> px
        assert len(boxes) == 1 and box_iou(boxes, clicked)[0, 0] >= 0.5
    assert webhook == {}
