"""Mask mode's proposals on open through the API (``POST /api/images/{id}/mask_proposals``,
issue 54): "none" with a note saying why when there is nothing to show, before SAM is asked
for anything; an unknown image is a 404. (Proposals made by SAM are the worker's, tested
in test_proposals_app.py; the page's use of them in test_browser_mask_proposals.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from clients import client_for, serve_a_detector
from PIL import Image as PILImage

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("mask-proposals")
    (home / "images").mkdir()
    for k in range(2):
        PILImage.fromarray(np.full((90, 120, 3), 80 + 40 * k, np.uint8)).save(home / "images" / f"im{k}.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    app.state.home = home
    return app


@pytest.fixture(scope="module")
def client(app):
    with client_for(app) as c:
        yield c


def _project(app, client, name: str) -> tuple[int, list[int]]:
    body = {"name": name, "folder": str(app.state.home / "images"), "classes": ["a", "b"]}
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    project = r.json()["project"]["id"]
    return project, [i["id"] for i in client.get(f"/api/projects/{project}/images").json()]


def _empty(answer: dict) -> None:
    assert answer["state"] == "none"
    assert answer["boxes"] == answer["scores"] == answer["labels"] == answer["masks"] == []
    assert answer["min_scores"] == {} and answer["threshold"] is None


def test_a_project_with_no_finished_image_has_none_and_says_to_finish_one(app, client, sam_files):
    _, images = _project(app, client, "unfinished")
    r = client.post(f"/api/images/{images[0]}/mask_proposals")
    assert r.status_code == 200, r.text
    _empty(r.json())
    assert "finish an image first" in r.json()["note"]


def test_where_a_trained_detector_serves_there_are_none_and_the_note_says_so(app, client, tmp_path):
    project, images = _project(app, client, "trained")
    serve_a_detector(app, project, tmp_path / "nowhere.pt")
    r = client.post(f"/api/images/{images[1]}/mask_proposals")
    assert r.status_code == 200, r.text
    _empty(r.json())
    assert "trained detector serves" in r.json()["note"]


def test_an_unknown_image_is_a_404(client):
    r = client.post("/api/images/987654/mask_proposals")
    assert r.status_code == 404 and "image" in r.text
