"""Time per image from the interaction log: every visit's active time counts, idle gaps are cut."""

import pytest
from clients import client_for

from fewclick.data.synthetic import make_dataset
from fewclick.server.analytics import IDLE_SECONDS
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

# (action, milliseconds since the event before it in the visit), as app.js logs them
VISITS = [
    [("open", 800), ("click", 20_000), ("accept", 3_000), ("leave", 100_000)],
    [("open", 700), ("edit", 200_000), ("click", 30 * 60_000), ("leave", 60_000)],  # 30 min away
    [("open", 500), ("submit", 600)],
]


@pytest.fixture()
def client(tmp_path):
    make_dataset("aerial", 2, seed=1, width=64, height=64, out_dir=tmp_path / "aerial")
    app = create_app(
        sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=[tmp_path]
    )
    with client_for(app) as client:
        yield client


def test_time_on_an_image_sums_its_visits_with_idle_gaps_cut(client, tmp_path):
    r = client.post("/api/projects", json={"name": "a", "folder": str(tmp_path / "aerial" / "images")})
    project = r.json()["project"]
    image, other = client.get(f"/api/projects/{project['id']}/images").json()
    events = [
        {"action": action, "image_id": image["id"], "duration_ms": ms}
        for visit in VISITS
        for action, ms in visit
    ]
    events.append({"action": "open", "image_id": other["id"], "duration_ms": 400})
    assert client.post(f"/api/projects/{project['id']}/events", json=events).status_code == 201
    a = client.get(f"/api/projects/{project['id']}/analytics").json()
    expected = sum(min(ms / 1000, IDLE_SECONDS) for visit in VISITS for _, ms in visit)
    assert expected == pytest.approx(0.8 + 20 + 3 + 100 + 0.7 + 120 + IDLE_SECONDS + 60 + 0.5 + 0.6)
    times = {row["image_id"]: row["seconds"] for row in a["images"]}
    assert times == {image["id"]: round(expected, 1), other["id"]: 0.4}
    assert a["total_seconds"] == round(expected + 0.4, 1)
    assert [row["interactions"] for row in a["images"]] == [4, 0]


def test_images_come_in_the_order_they_were_first_finished(client, tmp_path):
    r = client.post("/api/projects", json={"name": "b", "folder": str(tmp_path / "aerial" / "images")})
    project = r.json()["project"]
    first, second = client.get(f"/api/projects/{project['id']}/images").json()
    events = [
        {"action": "submit", "image_id": second["id"], "at": "2026-11-24T10:00:00+00:00", "duration_ms": 5},
        {"action": "click", "image_id": first["id"], "at": "2026-11-24T10:01:00+00:00", "duration_ms": 5},
        {"action": "submit", "image_id": first["id"], "at": "2026-11-24T10:02:00+00:00", "duration_ms": 5},
    ]
    assert client.post(f"/api/projects/{project['id']}/events", json=events).status_code == 201
    rows = client.get(f"/api/projects/{project['id']}/analytics").json()["images"]
    assert [row["image_id"] for row in rows] == [second["id"], first["id"]]


def _minute_on(client, project_id: int, image_id: int) -> None:
    events = [
        {"action": "open", "image_id": image_id, "duration_ms": 0},
        {"action": "submit", "image_id": image_id, "duration_ms": 60_000},
    ]
    assert client.post(f"/api/projects/{project_id}/events", json=events).status_code == 201


def test_imported_objects_are_not_work_done(client, tmp_path):
    """Objects that came in with the dataset (or from pre-annotation) were made by no one
    here: a minute on an image that adds one object is 1 object per minute."""
    r = client.post("/api/projects", json={"name": "c", "dataset": str(tmp_path / "aerial")})
    project = r.json()["project"]
    image = client.get(f"/api/projects/{project['id']}/images").json()[0]
    detail = client.get(f"/api/images/{image['id']}").json()
    assert detail["annotations"], "the dataset brings objects"
    made = {"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [1, 1, 9, 9]}}
    body = {"revision": detail["revision"], "create": [made], "delete": []}
    assert client.post(f"/api/images/{image['id']}/annotations/batch", json=body).status_code < 300
    assert client.post(f"/api/projects/{project['id']}/finish", json={"status": "done"}).status_code == 200
    _minute_on(client, project["id"], image["id"])
    assert client.get(f"/api/projects/{project['id']}/analytics").json()["objects_per_minute"] == 1.0


def test_only_finished_images_are_in_the_order_finished(client, tmp_path):
    r = client.post("/api/projects", json={"name": "d", "folder": str(tmp_path / "aerial" / "images")})
    project = r.json()["project"]
    done, opened = client.get(f"/api/projects/{project['id']}/images").json()
    _minute_on(client, project["id"], done["id"])
    events = [{"action": "open", "image_id": opened["id"], "duration_ms": 400}]
    assert client.post(f"/api/projects/{project['id']}/events", json=events).status_code == 201
    rows = client.get(f"/api/projects/{project['id']}/analytics").json()["images"]
    assert [(row["image_id"], row["finished"]) for row in rows] == [(done["id"], 1), (opened["id"], None)]
