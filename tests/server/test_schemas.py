"""Every route says what it answers: a pydantic response model (``fewclick.wire.answers``)
for JSON, a response class for files and downloads; the OpenAPI schema describes each
answer. That the API tests' answers validate against their models is checked on every
request they make (:mod:`declared`, through :func:`clients.client_for`); here, that the
check itself catches a wrong answer. Also the codec (``fewclick.wire.codec``)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from declared import api_routes, check_answer, route_of
from fastapi.datastructures import DefaultPlaceholder

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.types import Detections
from fewclick.wire import answers
from fewclick.wire.codec import ClassMap, detection_lists, mask_answer, region_answers

#: the routes that answer with something other than JSON, and the class they declare
NOT_JSON = {
    ("GET", "/"): "FileResponse",
    ("GET", "/api/images/{image_id}/file"): "FileResponse",
    ("GET", "/api/images/{image_id}/tiles/{level}/{col}/{row}"): "FileResponse",
    ("GET", "/api/projects/{project_id}/export"): "Response",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("schemas")
    return create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False)


def _routes(app):
    return [(method, path, route) for path, route in api_routes(app) for method in sorted(route.methods)]


def test_every_route_declares_a_response_model_or_class(app):
    routes = _routes(app)
    missing, wrong_class = [], []
    for method, path, route in routes:
        declared_class = (
            None if isinstance(route.response_class, DefaultPlaceholder) else route.response_class
        )
        if (method, path) in NOT_JSON:
            if declared_class is None or declared_class.__name__ != NOT_JSON[(method, path)]:
                wrong_class.append(f"{method} {path}: {declared_class}")
        elif route.response_model is None:
            missing.append(f"{method} {path}")
    assert len(routes) >= 45
    assert not missing, "routes that declare no response model:\n" + "\n".join(missing)
    assert not wrong_class, "file routes without their response class:\n" + "\n".join(wrong_class)


def test_every_json_model_comes_from_the_wire_module(app):
    def models(annotation):
        if isinstance(annotation, type):
            return [annotation]
        return [m for arg in getattr(annotation, "__args__", ()) for m in models(arg)]

    elsewhere = [
        f"{method} {path}: {model}"
        for method, path, route in _routes(app)
        if route.response_model is not None
        for model in models(route.response_model)
        if not model.__module__.startswith(f"{answers.__name__}.") and model is not list
    ]
    assert not elsewhere


def test_the_openapi_schema_describes_every_json_answer(app):
    schema = app.openapi()
    bare = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) in NOT_JSON:
                continue
            ok = [code for code in operation["responses"] if code.startswith("2")]
            assert len(ok) == 1, (method, path, list(operation["responses"]))
            described = operation["responses"][ok[0]].get("content", {}).get("application/json", {})
            if described.get("schema") in (None, {}):
                bare.append(f"{method.upper()} {path}")
    assert not bare, "answers the OpenAPI schema does not describe:\n" + "\n".join(bare)
    components = schema["components"]["schemas"]
    assert {"Project", "Detected", "Segmented", "Job", "Annotation", "OpenImage"} <= set(components)
    assert set(components["Detected"]["required"]) >= {"boxes", "scores", "labels", "min_scores"}


def _answer(method: str, path: str, body: bytes, status: int = 200) -> httpx.Response:
    request = httpx.Request(method, f"http://testserver{path}")
    return httpx.Response(status, content=body, headers={"content-type": "application/json"}, request=request)


def test_the_check_finds_the_route_and_refuses_wrong_answers(app):
    assert route_of(app, "GET", "/api/projects/3")[0] == "/api/projects/{project_id}"
    assert route_of(app, "GET", "/api/nowhere") is None
    job = (
        b'{"id": 1, "project_id": 2, "kind": "train", "trigger": "user", "status": "queued",'
        b' "progress": 0.0, "message": "", "elapsed_seconds": null, "eta_seconds": null,'
        b' "created_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:00:00"'
    )
    check_answer(app, _answer("GET", "/api/jobs/1", job + b"}"))
    with pytest.raises(AssertionError, match="does not name: \\['.surprise'\\]"):
        check_answer(app, _answer("GET", "/api/jobs/1", job + b', "surprise": 1}'))
    with pytest.raises(AssertionError, match="GET /api/jobs/{job_id}: the answer is not"):
        check_answer(app, _answer("GET", "/api/jobs/1", b'{"id": 1}'))
    with pytest.raises(AssertionError, match="is not"):  # an int field as 1.0: refused
        check_answer(app, _answer("GET", "/api/jobs/1", job.replace(b'"id": 1', b'"id": 1.0') + b"}"))
    check_answer(app, _answer("GET", "/api/jobs/1", b'{"detail": "no job 1"}', 404))  # not a 2xx


# ----------------------------------------------------------------------------- the codec
class _Class:
    def __init__(self, id, position):
        self.id, self.position = id, position


def test_class_map_goes_both_ways_and_leaves_out_what_the_project_lost():
    classes = ClassMap([_Class(11, 0), _Class(7, 1), _Class(30, 2)])
    assert 7 in classes and 8 not in classes
    assert classes.position(30) == 2
    assert classes.ids(np.array([2, 0, 1])) == [30, 11, 7]
    assert classes.by_position({7: 12.5, 11: 3.0}) == {1: 12.5, 0: 3.0}
    assert classes.by_id([0.5, None, 0.25, 0.9]) == {11: 0.5, 30: 0.25}  # position 3: gone
    assert ClassMap([]).ids([]) == []


@pytest.mark.parametrize(
    "det, expected",
    [
        (Detections.empty(), {"boxes": [], "rboxes": None, "scores": [], "labels": []}),
        (
            Detections(
                np.array([[1.2345, 2, 30.009, 40]], np.float32),
                np.array([0.123456], np.float32),
                np.array([2]),
            ),
            {"boxes": [[1.23, 2.0, 30.01, 40.0]], "rboxes": None, "scores": [0.1235], "labels": [2]},
        ),
    ],
)
def test_detection_lists_round_as_the_page_reads_them(det, expected):
    out = detection_lists(det)
    assert out.keys() == expected.keys()
    assert out["rboxes"] == expected["rboxes"] and out["labels"] == expected["labels"]
    np.testing.assert_allclose(
        np.reshape(out["boxes"], (-1, 4)), np.reshape(expected["boxes"], (-1, 4)), atol=1e-5
    )
    np.testing.assert_allclose(out["scores"], expected["scores"], atol=1e-6)
    answers.Detected.model_validate(
        {**out, "method": "x", "fitted_classes": [], "tight_classes": [], "model_version": None}
        | {"min_score": None, "min_scores": None, "look_alike_limit": None}
    )


def test_mask_answers_hold_rle_box_score_and_area():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    out = answers.Mask.model_validate(mask_answer(mask, np.float32(0.5)))
    assert out.box == [2.0, 1.0, 5.0, 3.0] and out.area == 6 and out.score == 0.5
    assert out.mask.size == [6, 8]
    empty = mask_answer(np.zeros((6, 8), bool), 0.0)
    assert empty["box"] == [0.0, 0.0, 0.0, 0.0] and empty["area"] == 0  # rle_boxes' zero box
    regions = region_answers(np.array([[0, 0, 1], [1, 1, 1]], np.int32), 3)
    assert [(r["index"], r["area"]) for r in regions] == [(0, 2), (1, 4), (2, 0)]
    answers.FullImage.model_validate({"regions": regions, "method": "box_fill", "ms": 1.5})
