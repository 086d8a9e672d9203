"""A mask's editable outline through the API (``POST /api/images/{id}/outline``): the rings
in image pixels, the same :func:`fewclick.outline.editable_outline` gives, a bad mask
refused with a 400 naming the problem, and who may ask."""

from __future__ import annotations

import numpy as np
import pytest
from clients import client_for, make_user
from PIL import Image as PILImage

from fewclick.io.rle import mask_to_rle
from fewclick.outline import editable_outline, fill_outline
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

H, W = 90, 120


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("outline")
    (home / "images").mkdir()
    PILImage.fromarray(np.full((H, W, 3), 80, np.uint8)).save(home / "images" / "im.png")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    app.state.home = home
    return app


@pytest.fixture(scope="module")
def client(app):
    with client_for(app) as c:
        yield c


@pytest.fixture(scope="module")
def image_id(app, client) -> int:
    body = {"name": "p", "folder": str(app.state.home / "images"), "classes": ["a"]}
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return client.get(f"/api/projects/{r.json()['project']['id']}/images").json()[0]["id"]


def _ring_mask() -> np.ndarray:
    """A disc with a square hole, and a second part apart from it."""
    ys, xs = np.mgrid[:H, :W]
    mask = (xs - 40) ** 2 + (ys - 45) ** 2 < 30**2
    mask[38:52, 33:47] = False
    mask[10:25, 90:110] = True
    return mask


def test_the_outline_holds_the_parts_and_the_hole_in_image_pixels(client, image_id):
    mask = _ring_mask()
    r = client.post(f"/api/images/{image_id}/outline", json={"mask": mask_to_rle(mask)})
    assert r.status_code == 200, r.text
    rings = [(np.array(ring["points"]), ring["hole"]) for ring in r.json()["rings"]]
    assert sorted(hole for _, hole in rings) == [False, False, True]
    expected = editable_outline(mask)
    assert len(rings) == len(expected)
    for (got, hole), (want, want_hole) in zip(
        sorted(rings, key=_key), sorted(expected, key=_key), strict=True
    ):
        assert hole == want_hole and np.array_equal(got, want), "the route's rings are the simulator's"
    filled = fill_outline(rings, H, W)
    assert (filled & mask).sum() / (filled | mask).sum() >= 0.95
    assert sum(len(p) for p, _ in rings) <= 60, "few vertices"


def _key(ring):
    return tuple(ring[0].min(0))


def test_uncompressed_counts_are_taken_too(client, image_id):
    mask = np.zeros((H, W), bool)
    mask[5:9, 7:12] = True
    counts = [7 * H + 5, *[4, H - 4] * 4, 4]  # column-major: rows 5-8 of columns 7-11
    counts.append(H * W - sum(counts))
    r = client.post(f"/api/images/{image_id}/outline", json={"mask": {"size": [H, W], "counts": counts}})
    assert r.status_code == 200, r.text
    (ring,) = r.json()["rings"]
    assert sorted(map(tuple, ring["points"])) == [(7, 5), (7, 9), (12, 5), (12, 9)]


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        ({"size": [H, W]}, "expected RLE counts as a string or a list of integers, got NoneType"),
        ({"size": [10, 10], "counts": "PP"}, f"mask size [10, 10] is not the image's [{H}, {W}]"),
        ({"size": [H, W], "counts": [5, 6]}, "got 2 runs adding up to 11"),
        ({"size": [H, W], "counts": "\x7f"}, "expected RLE counts of the characters '0' to 'o'"),
        ({"size": [H, W], "counts": 12}, "expected RLE counts as a string or a list of integers, got int"),
        ({"size": [H, W], "counts": [H * W]}, "it is empty"),
    ],
)
def test_a_bad_mask_is_a_400_naming_the_problem(client, image_id, mask, problem):
    r = client.post(f"/api/images/{image_id}/outline", json={"mask": mask})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("cannot outline this mask: ")
    assert problem in r.json()["detail"]


def test_no_such_image_is_a_404(client):
    r = client.post("/api/images/999/outline", json={"mask": mask_to_rle(np.ones((2, 2), bool))})
    assert r.status_code == 404 and "no image with id 999" in r.text


def test_who_may_ask_annotators_yes_reviewers_no(app, client, image_id):
    annotator, reviewer = make_user(app, "ann", "annotator"), make_user(app, "rev", "reviewer")
    body = {"mask": mask_to_rle(_ring_mask())}
    for token, status in ((annotator, 200), (reviewer, 403)):
        r = client.post(
            f"/api/images/{image_id}/outline", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == status, r.text
