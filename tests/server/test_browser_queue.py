"""The review queue in real headless Chromium: the least sure box shows zoomed; A accepts,
X says background, a number key gives another class, a drag draws the right box; a box
another user answered meanwhile is a 409 the page survives; the empty queue says so."""

import pytest
from browser import chromium_page, live_server, log_in
from clients import client_for, make_user

from fewclick.data.synthetic import make_dataset
from fewclick.server.app import create_app
from fewclick.server.db import BoxQuery, Image, sqlite_url

USER, PASSWORD = "rev", "a long password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("queue-browser")
    make_dataset("aerial", 2, seed=12, width=384, height=384, out_dir=home / "aerial")
    app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home], start_worker=False)
    make_user(app, USER, "annotator", PASSWORD)
    client = client_for(app)
    made = client.post(
        "/api/projects", json={"name": "queue", "dataset": str(home / "aerial" / "annotations.json")}
    )
    project = made.json()["project"]
    with app.state.sessions() as session:
        image = session.query(Image).filter_by(project_id=project["id"]).first()
        image.annotations.clear()
        for i, score in enumerate([0.25, 0.3, 0.35, 0.4, 0.45]):
            session.add(
                BoxQuery(
                    project_id=project["id"], image_id=image.id, class_id=project["classes"][0]["id"],
                    box=[40.0 + 60 * i, 100.0, 80.0 + 60 * i, 140.0], score=score, model_version=1,
                )
            )  # fmt: skip
        session.commit()
    with live_server(app) as base:
        yield base, app, client, project


def _shown(page) -> dict:
    page.wait_for_function("() => queueState() && queueState().view && !queueState().busy", timeout=20000)
    return page.evaluate("() => queueState().next")


def _canvas(page, x: float, y: float) -> tuple[float, float]:
    return page.evaluate(
        """([x, y]) => { const r = document.querySelector('#queue-canvas').getBoundingClientRect();
            const v = queueState().view;
            return [r.left + (x - v.x) * v.scale, r.top + (y - v.y) * v.scale]; }""",
        [x, y],
    )


def _wait_answered(page, n: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#queue-counts').textContent.includes('{n} answered')"
    )


def test_review_the_queue_with_the_keyboard_and_a_drag(server):
    base, app, client, project = server
    with chromium_page() as page:
        log_in(page, base, USER, PASSWORD)
        page.goto(f"{base}/#/project/{project['id']}/queue")
        first = _shown(page)
        assert first["score"] == 0.25, "the least sure box comes first"
        assert "probability 0.25" in page.inner_text("#queue-box")
        page.keyboard.press("a")
        _wait_answered(page, 1)
        second = _shown(page)
        assert second["score"] == 0.3
        page.keyboard.press("x")
        _wait_answered(page, 2)
        third = _shown(page)
        second_class = project["classes"][1]
        page.keyboard.press(str(second_class["key"]))
        _wait_answered(page, 3)
        fourth = _shown(page)
        x0, y0 = _canvas(page, fourth["box"][0] - 5, fourth["box"][1] - 5)
        x1, y1 = _canvas(page, fourth["box"][2] + 5, fourth["box"][3] + 5)
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=6)
        page.mouse.up()
        _wait_answered(page, 4)
        last = _shown(page)
        # another user answers the shown box first: this page's answer is a 409, nothing is lost
        other = make_user(app, "other", "annotator")
        r = client.post(
            f"/api/queries/{last['id']}/answer",
            json={"answer": "accept", "seconds": 1},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert r.status_code == 200
        page.keyboard.press("a")
        page.wait_for_function(
            "() => document.querySelector('#queue-box').textContent.includes('no boxes left')"
        )
        assert "answered already (accept by other)" in page.inner_text("#message")
        assert page.errors == []
    with app.state.sessions() as session:
        rows = {q.id: q for q in session.query(BoxQuery).filter_by(project_id=project["id"])}
    assert rows[first["id"]].answer == "accept" and rows[second["id"]].answer == "background"
    assert rows[third["id"]].answer == "fix" and rows[fourth["id"]].answer == "fix"
    image = client.get(f"/api/images/{first['image_id']}").json()
    by_box = {tuple(a["geometry"]["box"]): a for a in image["annotations"]}
    assert tuple(first["box"]) in by_box and tuple(second["box"]) not in by_box
    assert by_box[tuple(third["box"])]["class_id"] == second_class["id"]
    fixed = next(a for a in image["annotations"] if a["id"] == rows[fourth["id"]].annotation_id)
    assert fixed["geometry"]["box"] == pytest.approx(
        [fourth["box"][0] - 5, fourth["box"][1] - 5, fourth["box"][2] + 5, fourth["box"][3] + 5], abs=1.5
    )
