"""A click in Detect mode adds and never takes away (issue 67), in real headless Chromium on
the real app: an image opens with the proposals like the finished images' objects; a click
on an object unlike them boxes it and keeps every box the image opened with; and the
campaign's simulated person, given the same answers, sees the very boxes the page shows.

SAM encodes the images (the pretrained pair, skipped without it); the proposals are made
here, as files beside the embeddings, so that the look-alikes are known in advance.
"""

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import chromium_page, live_server, log_in, screen
from clients import auth_headers, make_user
from PIL import Image as PILImage
from tests.detect.test_after_click import _proposals, _unit

from fewclick.predict.lookalike import proposals_file
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.server.serving import file_key

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from campaign import Annotator  # noqa: E402

USER, PASSWORD = "ann", "a long password"
H, W = 100, 400
SQUARES = [[40 * i + 5, 30, 40 * i + 35, 60] for i in range(6)]
CELL, ODD, DEBRIS = _unit(1, 0, 0, 0), _unit(0, 0, 1, 0.2), _unit(0, 1, 0, 0.1)


def _image(squares: int) -> np.ndarray:
    image = np.full((H, W, 3), 120, np.uint8)
    for x0, y0, x1, y1 in SQUARES[:squares]:
        image[y0:y1, x0:x1] = (200, 60, 60)
    return image


@pytest.fixture(scope="module")
def server(tmp_path_factory, sam_files):
    """Two finished images of two cells each, then one of three cells, an odd cell and a
    piece of debris, its proposals made beforehand like every image's."""
    home = tmp_path_factory.mktemp("browser-click-adds")
    (home / "images").mkdir()
    for name, n in (("a_done.png", 2), ("b_done.png", 2), ("c_open.png", 5)):
        PILImage.fromarray(_image(n)).save(home / "images" / name)
    app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home])
    make_user(app, USER, "admin", PASSWORD)
    with live_server(app) as base:
        api = httpx.Client(base_url=base, headers=auth_headers(app), timeout=120)
        body = {"name": "cells", "folder": str(home / "images"), "classes": ["cell", "debris"]}
        project = api.post("/api/projects", json=body).json()["project"]
        images = api.get(f"/api/projects/{project['id']}/images").json()
        folder = app.state.settings.embeddings
        folder.mkdir(parents=True, exist_ok=True)
        vectors = {"a_done.png": [CELL] * 2, "b_done.png": [CELL] * 2}
        vectors["c_open.png"] = [CELL] * 3 + [ODD, DEBRIS]
        cell = project["classes"][0]["id"]
        for im in images:
            path = home / "images" / im["file_name"]
            mine = vectors[im["file_name"]]
            found = _proposals(SQUARES[: len(mine)], mine, size=(H, W))
            found.save(proposals_file(folder, file_key(project["id"], im["id"], path)))
            if im["file_name"].endswith("_done.png"):
                create = [{"class_id": cell, "geometry": {"box": b}} for b in SQUARES[:2]]
                body = {"revision": 0, "create": create}
                assert api.post(f"/api/images/{im['id']}/annotations/batch", json=body).is_success
                assert api.patch(f"/api/images/{im['id']}", json={"status": "done"}).is_success
        yield base, api, project, images[-1]


def _page_state(page) -> dict:
    """The answer the page holds, its clicks, and the boxes it shows."""
    return page.evaluate(
        """() => { const d = fewclickTest.detect, shown = fewclickTest.shownProposals();
            return {answer: d.result, clicks: d.clicks, shown: shown.map((i) => d.result.boxes[i])}; }"""
    )


def _campaign_sees(project: dict, state: dict) -> list:
    """The boxes the campaign's simulated person sees in the same answer (Annotator._shown)."""
    ids = [c["id"] for c in project["classes"]]
    person = Annotator(None, project["id"], ids, {c: k for k, c in enumerate(ids)})
    answer = {**state["answer"], "clicked_classes": [c for _, _, c in state["clicks"]]}
    return person._shown(answer)[0].tolist()


def test_a_click_keeps_the_boxes_the_image_opened_with_and_the_campaign_sees_what_the_page_shows(server):
    base, _, project, image = server
    cell, debris = (c["id"] for c in project["classes"])
    with chromium_page() as page:
        log_in(page, base, USER, PASSWORD)
        page.goto(f"{base}/#/image/{image['id']}")
        page.wait_for_function(
            f"() => fewclickTest.ready && fewclickTest.image.id === {image['id']}"
            " && fewclickTest.detect.result && !fewclickTest.detect.clicks.length",
            timeout=180000,
        )
        opened = _page_state(page)
        assert sorted(opened["shown"]) == SQUARES[:3], "it opens with the three cells like the finished"
        assert sorted(_campaign_sees(project, opened)) == sorted(opened["shown"])

        page.mouse.click(*screen(page, 140, 45))  # the odd cell, unlike the finished ones
        page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=60000)
        clicked = _page_state(page)
        assert clicked["answer"]["boxes"][0] == SQUARES[3] and clicked["answer"]["scores"][0] == 1
        assert sorted(clicked["shown"])[:4] == SQUARES[:4], "the three it opened with stay, the click adds"
        assert sorted(_campaign_sees(project, clicked)) == sorted(clicked["shown"])

        page.keyboard.press("2")  # debris
        page.wait_for_function(f"() => fewclickTest.cls === {debris}")
        page.mouse.click(*screen(page, 180, 45))
        page.wait_for_function("() => fewclickTest.detect.answered === 2", timeout=60000)
        both = _page_state(page)
        assert sorted(both["shown"])[:5] == SQUARES[:5], "a click of another class takes nothing away either"
        labels = dict(zip(map(tuple, both["answer"]["boxes"]), both["answer"]["labels"]))
        assert [labels[tuple(b)] for b in SQUARES[:5]] == [cell] * 4 + [debris]
        assert sorted(_campaign_sees(project, both)) == sorted(both["shown"])
        assert page.errors == []


def _answer(rng: np.random.Generator, ids: list[int]) -> dict:
    """A detect answer of random scores and classes, some classes with their own score
    (over 1: none shown; None: none given), from a detector or the look-alikes."""
    n = int(rng.integers(0, 8))
    own = {str(c): [None, float(rng.uniform(0.1, 1.2))][int(rng.integers(2))] for c in ids}
    own = {c: t for c, t in own.items() if rng.random() < 0.6}
    suggested = [None, float(rng.uniform(0, 1))][int(rng.integers(2))]
    return {
        "boxes": [[float(k), 0.0, k + 5.0, 5.0] for k in range(n)],
        "scores": [float(s) for s in rng.choice([1.0, *rng.uniform(0, 1, 6)], n)],
        "labels": [int(c) for c in rng.choice(ids, n)],
        "min_scores": own or None,
        "min_score": suggested,
        "proposals": None if suggested is not None or rng.random() < 0.3 else {"threshold": 0.5},
    }


def test_the_campaign_shows_what_the_page_shows_on_any_answer(server):
    base, _, project, _ = server
    ids = [c["id"] for c in project["classes"]]
    rng = np.random.default_rng(67)
    cases = []
    for _ in range(300):
        answer = _answer(rng, ids)
        clicks = [[1.0, 1.0, int(c)] for c in rng.choice(ids, int(rng.integers(0, 3)))]
        cases.append({"answer": answer, "clicks": clicks})
    with chromium_page() as page:
        page.goto(f"{base}/#/")
        page.wait_for_function("() => window.fewclickTest")
        shown = page.evaluate(
            """(cases) => cases.map(({answer, clicks}) => {
                const from = answer.min_score ?? answer.proposals?.threshold;
                const state = {result: answer, clicks, replaced: new Set(), minScoreByHand: false,
                               minScore: from == null ? 0.3 : fewclickTest.sliderValue(from)};
                return fewclickTest.shownProposals(state).map((i) => answer.boxes[i]); })""",
            cases,
        )
    for case, page_shows in zip(cases, shown):
        assert sorted(_campaign_sees(project, case)) == sorted(page_shows), case
