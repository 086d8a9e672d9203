"""A database another connection keeps locked for longer than ``db.BUSY_SECONDS``: saves,
log-in and events answer 503 with ``Retry-After`` (never 500), nothing already saved is
lost, and reads (a token's last-use note included) go on. On SQLite the lock is another
connection's ``BEGIN EXCLUSIVE``; on PostgreSQL a transaction holding every table in
EXCLUSIVE mode (reads pass, writes wait)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
from clients import client_for, make_user
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from fewclick.data.synthetic import make_dataset
from fewclick.server import db
from fewclick.server.app import create_app


@contextmanager
def locked(url: str):
    """The database at ``url`` locked against writes by another connection until the end."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = ", ".join(inspect(conn).get_table_names())
        conn.execute(text(f"LOCK TABLE {tables} IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


@pytest.fixture()
def site(fresh_db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(db, "BUSY_SECONDS", 0.3)  # the wait, shortened for the test
    make_dataset("aerial", 1, seed=3, width=64, height=64, out_dir=tmp_path / "aerial")
    app = create_app(fresh_db_url, tmp_path / "data", start_worker=False, data_roots=[tmp_path])
    with client_for(app) as admin:
        created = admin.post(
            "/api/projects", json={"name": "p", "dataset": str(tmp_path / "aerial" / "annotations.json")}
        )
        project = created.json()["project"]
        image = admin.get(f"/api/projects/{project['id']}/images").json()[0]
        yield app, fresh_db_url, project, image


def _requests(project: dict, image: dict) -> dict:
    create = {"class_id": project["classes"][0]["id"], "geometry": {"box": [2, 2, 9, 9]}}
    return {
        "save": (
            "POST",
            f"/api/images/{image['id']}/annotations/batch",
            {"create": [create], "revision": image["revision"]},
        ),
        "log-in": ("POST", "/api/login", {"name": "writer", "password": "a long passphrase"}),
        "events": ("POST", f"/api/projects/{project['id']}/events", [{"action": "click"}]),
    }


def test_a_locked_database_answers_503_with_retry_after_and_loses_nothing(site):
    app, url, project, image = site
    token = make_user(app, "writer", "admin", "a long passphrase")  # its last use is not noted yet
    client = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})
    reader = TestClient(app, raise_server_exceptions=False)
    reader.headers["Authorization"] = f"Bearer {make_user(app, 'reader', 'reviewer')}"
    before = client.get(f"/api/images/{image['id']}").json()
    with locked(url):
        answers = {
            what: client.request(method, path, json=body)
            for what, (method, path, body) in _requests(project, image).items()
        }
        read = reader.get(f"/api/images/{image['id']}")  # a token never used: its use is due a note
    assert {what: r.status_code for what, r in answers.items()} == dict.fromkeys(answers, 503)
    assert all(r.headers["Retry-After"].isdigit() for r in answers.values())
    assert all("database is busy" in r.json()["detail"] for r in answers.values())
    assert read.status_code == 200 and read.json() == before
    again = _requests(project, image)
    after = {
        what: client.request(method, path, json=body).status_code
        for what, (method, path, body) in again.items()
    }
    assert after == {"save": 200, "log-in": 200, "events": 201}
    saved = client.get(f"/api/images/{image['id']}").json()
    assert len(saved["annotations"]) == len(before["annotations"]) + 1, "all that was saved, and one more"
