"""Bad values never get in: every write to an image's annotations names its revision, every
number is finite, geometry and masks fit the image, ids beyond the database are 404 or 422;
a refused write leaves nothing behind and the image, its export and the event log still read.

Bodies are sent as raw JSON text: ``Infinity``, ``NaN`` and ``1e400`` are what a client can
send (Python's json reads them as floats), and no JSON encoder would write them."""

import json

import numpy as np
import pytest
from clients import client_for

from fewclick.data.synthetic import make_dataset
from fewclick.io.rle import mask_to_rle
from fewclick.server import store
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

HEIGHT, WIDTH = 48, 64
HUGE = 2**64


@pytest.fixture
def api(tmp_path):
    """A client of a fresh app holding one project of two images, the first with a box."""
    make_dataset("aerial", 2, seed=3, width=WIDTH, height=HEIGHT, out_dir=tmp_path / "aerial")
    app = create_app(
        sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=[tmp_path]
    )
    with client_for(app) as client:
        r = client.post("/api/projects", json={"name": "p", "folder": str(tmp_path / "aerial" / "images")})
        project = r.json()["project"]
        client.project = project
        client.cls = project["classes"][0]["id"]
        client.image = client.get(f"/api/projects/{project['id']}/images").json()[0]["id"]
        box = {"class_id": client.cls, "geometry": {"box": [2, 3, 20, 30]}}
        r = client.post(f"/api/images/{client.image}/annotations", json=box, params={"revision": 0})
        assert r.status_code == 201, r.text
        client.ann = r.json()["annotation"]["id"]
        yield client


def _send(client, method: str, url: str, text: str, **kwargs):
    return client.request(method, url, content=text, headers={"Content-Type": "application/json"}, **kwargs)


def _saved(client) -> dict:
    """The first image as it reads now (it must still read)."""
    r = client.get(f"/api/images/{client.image}")
    assert r.status_code == 200, r.text
    return r.json()


def _unchanged(client, before: dict) -> None:
    after = _saved(client)
    assert after["revision"] == before["revision"] and after["annotations"] == before["annotations"]
    r = client.get(f"/api/projects/{client.project['id']}/export", params={"format": "coco"})
    assert r.status_code == 200 and len(json.loads(r.content)["annotations"]) == len(after["annotations"])


def _problems(r) -> list[tuple]:
    """The 422's problems as (location, message) pairs."""
    assert r.status_code == 422, r.text
    return [(tuple(e["loc"]), e["msg"]) for e in r.json()["detail"]]


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("POST", "/api/images/{image}/annotations", {"class_id": "{cls}", "geometry": {"box": [1, 1, 9, 9]}}),
        ("POST", "/api/images/{image}/annotations/batch", {"delete": ["{ann}"]}),
        ("PATCH", "/api/annotations/{ann}", {"geometry": {"box": [1, 1, 9, 9]}}),
        ("DELETE", "/api/annotations/{ann}", None),
    ],
)
def test_a_write_without_a_revision_is_refused_naming_it(api, method, url, body):
    before = _saved(api)
    names = {"image": api.image, "ann": api.ann, "cls": api.cls}
    text = (
        None
        if body is None
        else json.dumps(body).replace('"{cls}"', str(api.cls)).replace('"{ann}"', str(api.ann))
    )
    r = api.request(method, url.format(**names), content=text, headers={"Content-Type": "application/json"})
    assert [loc[-1] for loc, msg in _problems(r)] == ["revision"]
    _unchanged(api, before)


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400"])
@pytest.mark.parametrize("field", ["score", "quality"])
def test_a_score_that_is_not_finite_is_refused_and_the_image_still_reads(api, field, value):
    before = _saved(api)
    text = f'{{"class_id": {api.cls}, "geometry": {{"box": [1, 1, 9, 9]}}, "{field}": {value}}}'
    r = _send(
        api, "POST", f"/api/images/{api.image}/annotations", text, params={"revision": before["revision"]}
    )
    assert _problems(r) == [(("body", field), "Input should be a finite number")]
    _unchanged(api, before)


@pytest.mark.parametrize(
    "kind, geometry, where",
    [
        ("box", '{"box": [1, 1, 1e400, 9]}', ("box", 2)),
        ("box", '{"box": [NaN, 1, 10, 9]}', ("box", 0)),
        ("rbox", '{"rbox": [20, 20, 10, 5, Infinity]}', ("rbox", 4)),
        ("point", '{"point": [3, -Infinity]}', ("point", 1)),
        ("point", '{"point": [3, 4], "original": [NaN, 4]}', ("original", 0)),
    ],
)
def test_geometry_that_is_not_finite_is_refused(api, kind, geometry, where):
    before = _saved(api)
    text = f'{{"class_id": {api.cls}, "kind": "{kind}", "geometry": {geometry}}}'
    r = _send(
        api, "POST", f"/api/images/{api.image}/annotations", text, params={"revision": before["revision"]}
    )
    assert ("body", "geometry", *where) in [loc for loc, _ in _problems(r)]
    r = _send(
        api,
        "PATCH",
        f"/api/annotations/{api.ann}",
        f'{{"revision": 1, "kind": "{kind}", "geometry": {geometry}}}',
    )
    assert ("body", "geometry", *where) in [loc for loc, _ in _problems(r)]
    _unchanged(api, before)


@pytest.mark.parametrize("field", ["geometry", "class_id", "kind", "review"])
def test_a_change_to_null_is_refused_naming_the_field(api, field):
    before = _saved(api)
    r = api.patch(f"/api/annotations/{api.ann}", json={"revision": before["revision"], field: None})
    assert [loc for loc, _ in _problems(r)] == [("body", field)]
    _unchanged(api, before)


def test_a_new_annotation_without_geometry_or_with_null_is_refused(api):
    before = _saved(api)
    url = f"/api/images/{api.image}/annotations"
    for body in (
        {"class_id": api.cls, "geometry": None},
        {"class_id": api.cls, "kind": "mask", "geometry": {}},
    ):
        r = api.post(url, json=body, params={"revision": before["revision"]})
        assert [loc[:2] for loc, _ in _problems(r)] == [("body", "geometry")]
    _unchanged(api, before)


GOOD = mask_to_rle(np.pad(np.ones((5, 7), bool), ((10, HEIGHT - 15), (20, WIDTH - 27))))


@pytest.mark.parametrize(
    "mask, status, message",
    [
        ({"size": "ab", "counts": GOOD["counts"]}, 422, "size"),
        ({"size": [HEIGHT, WIDTH], "counts": 5}, 422, "counts"),
        ({"size": [HEIGHT, WIDTH], "counts": [1, -2]}, 422, "counts"),
        ({"size": [HEIGHT, WIDTH]}, 422, "counts"),
        ({**GOOD, "area": 35}, 422, "area"),
        ({"size": [HEIGHT, WIDTH], "counts": "!!!!"}, 400, "characters '0' to 'o', got '!'"),
        ({"size": [HEIGHT, WIDTH], "counts": "0"}, 400, "add up to 48 x 64 = 3072 pixels"),
        ({"size": [HEIGHT, WIDTH], "counts": [100, 2000]}, 400, "add up to 48 x 64 = 3072 pixels"),
        ({"size": [HEIGHT, WIDTH], "counts": "ooooooooooo?"}, 400, "add up to 48 x 64 = 3072 pixels"),
        ({"size": [WIDTH, HEIGHT], "counts": GOOD["counts"]}, 400, "not the image's [48, 64]"),
    ],
)
def test_a_malformed_mask_is_refused_and_exports_keep_working(api, mask, status, message):
    before = _saved(api)
    body = {"class_id": api.cls, "kind": "mask", "geometry": {"mask": mask}}
    r = api.post(f"/api/images/{api.image}/annotations", json=body, params={"revision": before["revision"]})
    assert r.status_code == status and message in r.text, r.text
    _unchanged(api, before)


def test_a_mask_is_saved_as_compressed_rle_with_the_box_it_covers(api):
    runs = [HEIGHT * 20 + 10, 5, HEIGHT * WIDTH - HEIGHT * 20 - 15]  # five pixels of column 20
    body = {
        "class_id": api.cls,
        "kind": "mask",
        "geometry": {"mask": {"size": [HEIGHT, WIDTH], "counts": runs}},
    }
    r = api.post(f"/api/images/{api.image}/annotations", json=body, params={"revision": 1})
    assert r.status_code == 201, r.text
    geometry = r.json()["annotation"]["geometry"]
    assert isinstance(geometry["mask"]["counts"], str) and geometry["box"] == [20, 10, 21, 15]
    r = api.get(f"/api/projects/{api.project['id']}/export", params={"format": "coco"})
    assert r.status_code == 200 and len(json.loads(r.content)["annotations"]) == 2


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("GET", f"/api/images/{HUGE}", None),
        ("GET", f"/api/projects/{2**63}", None),
        ("GET", f"/api/projects/{HUGE}/events", None),
        ("PATCH", f"/api/annotations/{HUGE}", {"revision": 1, "review": "accepted"}),
        ("DELETE", f"/api/annotations/{HUGE}?revision=1", None),
        ("POST", f"/api/images/{HUGE}/annotations/batch", {"revision": 1}),
        ("POST", "/api/images/{image}/annotations/batch", {"revision": 1, "delete": [HUGE]}),
        ("POST", "/api/images/{image}/annotations/batch", {"revision": HUGE}),
        (
            "POST",
            "/api/images/{image}/annotations?revision=1",
            {"class_id": HUGE, "geometry": {"box": [1, 1, 9, 9]}},
        ),
        ("PATCH", "/api/annotations/{ann}", {"revision": 1, "class_id": HUGE}),
        ("POST", "/api/projects/{project}/events", [{"action": "click", "image_id": HUGE}]),
        ("GET", f"/api/projects/{{project}}/events?limit={HUGE}", None),
    ],
)
def test_ids_beyond_what_the_database_holds_are_404_or_422(api, method, url, body):
    before = _saved(api)
    url = url.format(image=api.image, ann=api.ann, project=api.project["id"])
    r = api.request(method, url, json=body)
    assert r.status_code in (404, 422), r.text
    if r.status_code == 404:
        assert r.json()["detail"].startswith("no ") and r.json()["detail"].split()[-1] in url
    _unchanged(api, before)


@pytest.mark.parametrize(
    "event, where",
    [
        ('{"action": "submit", "duration_ms": Infinity}', "duration_ms"),
        ('{"action": "submit", "duration_ms": NaN}', "duration_ms"),
        ('{"action": "submit", "duration_ms": -5}', "duration_ms"),
        ('{"action": "click", "detail": {"x": 1e400}}', "detail"),
        ('{"action": "click", "detail": {"xy": [1, NaN]}}', "detail"),
    ],
)
def test_an_event_that_is_not_finite_is_refused_and_the_log_still_reads(api, event, where):
    url = f"/api/projects/{api.project['id']}/events"
    assert api.post(url, json=[{"action": "open", "duration_ms": 12.5}]).status_code == 201
    r = _send(api, "POST", url, f'[{{"action": "open"}}, {event}]')
    assert [loc for loc, _ in _problems(r)] == [("body", 1, where)]
    r = api.get(url)
    assert r.status_code == 200 and [e["action"] for e in r.json()] == ["open"]
    assert api.get(f"/api/projects/{api.project['id']}/analytics").status_code == 200


@pytest.mark.parametrize("minutes", ["NaN", "Infinity"])
def test_training_minutes_that_are_not_finite_are_refused(api, minutes):
    r = _send(api, "POST", f"/api/projects/{api.project['id']}/train", f'{{"minutes": {minutes}}}')
    assert [loc for loc, _ in _problems(r)] == [("body", "minutes")]
    assert api.get(f"/api/projects/{api.project['id']}/jobs").json() == []


def test_a_row_deleted_under_a_change_answers_409_and_nothing_is_saved(api, monkeypatch):
    """Whatever deletes the annotation between its read and the change's write (another
    process on the database), the change is a 409 and the image keeps its revision."""
    from sqlalchemy import delete

    from fewclick.server.db import Annotation

    update = store.update_annotation

    def deleted_meanwhile(session, user, ann, data):
        gone = delete(Annotation).where(Annotation.id == ann.id)  # as another process would: unseen
        session.execute(gone.execution_options(synchronize_session=False))
        return update(session, user, ann, data)

    monkeypatch.setattr(store, "update_annotation", deleted_meanwhile)
    before = _saved(api)
    r = api.patch(f"/api/annotations/{api.ann}", json={"revision": before["revision"], "review": "accepted"})
    assert r.status_code == 409 and "reload" in r.json()["detail"]
    _unchanged(api, before)
