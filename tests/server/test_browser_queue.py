"""The review queue in real headless Chromium: the least sure box shows zoomed; A accepts,
X says background, a number key gives another class, a drag draws the right box, dragged
corners and Enter give the box, E and four extreme clicks give the box; a click on a missed
object beside the asked box labels it (the detector finds its box); a box another user
answered meanwhile is a 409 the page survives; the empty queue says so."""

import numpy as np
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
        # the object a click finds missed: one of the image's own, its annotation gone
        missed = max(image.annotations, key=lambda a: a.geometry["box"][0])
        missed = {"box": list(missed.geometry["box"]), "class_id": missed.class_id}
        image.annotations.clear()
        boxes = [
            [40.0 + 60 * i, 100.0 + 150 * (i // 5), 80.0 + 60 * i, 140.0 + 150 * (i // 5)] for i in range(6)
        ]
        boxes = [
            [x0 - 300 * (i // 5), y0, x1 - 300 * (i // 5), y1] for i, (x0, y0, x1, y1) in enumerate(boxes)
        ]
        x0, y0, x1, y1 = missed["box"]
        boxes.append([x0 - 30, y0, x1 - 30, y1])  # asked beside the missed object
        for i, (box, score) in enumerate(zip(boxes, [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55])):
            session.add(
                BoxQuery(
                    project_id=project["id"], image_id=image.id, box=box, score=score, model_version=1,
                    class_id=missed["class_id"] if i == 6 else project["classes"][0]["id"],
                )
            )  # fmt: skip
        session.commit()
    with live_server(app) as base:
        yield base, app, client, project, missed


def _shown(page) -> dict:
    page.wait_for_function(
        "() => fewclickTest.queue && fewclickTest.queue.view && !fewclickTest.queue.busy", timeout=20000
    )
    return page.evaluate("() => fewclickTest.queue.next")


def _canvas(page, x: float, y: float) -> tuple[float, float]:
    return page.evaluate(
        """([x, y]) => { const r = document.querySelector('#queue-canvas').getBoundingClientRect();
            const v = fewclickTest.queue.view;
            return [r.left + v.ox + x * v.scale, r.top + v.oy + y * v.scale]; }""",
        [x, y],
    )


def _wait_answered(page, n: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#queue-counts').textContent.includes('{n} answered')"
    )


def _drag(page, a, b) -> None:
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=6)
    page.mouse.up()


def test_review_the_queue_with_the_keyboard_drags_extreme_points_and_a_missed_object(server):
    base, app, client, project, missed = server
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
        _drag(
            page,
            _canvas(page, fourth["box"][0] - 5, fourth["box"][1] - 5),
            _canvas(page, fourth["box"][2] + 5, fourth["box"][3] + 5),
        )
        _wait_answered(page, 4)
        fifth = _shown(page)  # two corners dragged, then Enter takes the box
        x0, y0, x1, y1 = fifth["box"]
        _drag(page, _canvas(page, x1, y1), _canvas(page, x1 + 10, y1 + 6))
        page.wait_for_function("() => fewclickTest.queue.edit !== null")
        _drag(page, _canvas(page, x0, y0), _canvas(page, x0 - 4, y0 + 3))
        page.wait_for_function(f"() => Math.abs(fewclickTest.queue.edit[0] - {x0 - 4}) < 1.5")
        page.keyboard.press("Enter")
        _wait_answered(page, 5)
        sixth = _shown(page)  # E, then its extreme points: left, top, right, bottom
        page.keyboard.press("e")
        x0, y0, x1, y1 = sixth["box"]
        extremes = [(x0 + 2, y0 + 20), (x0 + 15, y0 - 4), (x1 + 3, y0 + 12), (x0 + 22, y1 - 2)]
        for i, (x, y) in enumerate(extremes):
            page.mouse.click(*_canvas(page, x, y))
            if i < 3:
                page.wait_for_function(f"() => fewclickTest.queue.extreme.length === {i + 1}")
        _wait_answered(page, 6)
        last = _shown(page)
        # a click on the missed object beside the asked box: the detector finds it, it is labeled
        mx0, my0, mx1, my1 = missed["box"]
        page.mouse.click(*_canvas(page, (mx0 + mx1) / 2, (my0 + my1) / 2))
        page.wait_for_function("() => document.querySelector('#message').textContent.includes('missed')")
        assert _shown(page)["id"] == last["id"], "the asked box stays until it is answered"
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
    assert all(rows[q["id"]].answer == "fix" for q in (third, fourth, fifth, sixth))
    image = client.get(f"/api/images/{first['image_id']}").json()
    by_box = {tuple(a["geometry"]["box"]): a for a in image["annotations"]}
    assert tuple(first["box"]) in by_box and tuple(second["box"]) not in by_box
    assert by_box[tuple(third["box"])]["class_id"] == second_class["id"]
    fixed = next(a for a in image["annotations"] if a["id"] == rows[fourth["id"]].annotation_id)
    assert fixed["geometry"]["box"] == pytest.approx(
        [fourth["box"][0] - 5, fourth["box"][1] - 5, fourth["box"][2] + 5, fourth["box"][3] + 5], abs=1.5
    )
    cornered = next(a for a in image["annotations"] if a["id"] == rows[fifth["id"]].annotation_id)
    x0, y0, x1, y1 = fifth["box"]
    assert cornered["geometry"]["box"] == pytest.approx([x0 - 4, y0 + 3, x1 + 10, y1 + 6], abs=1.5)
    extreme = next(a for a in image["annotations"] if a["id"] == rows[sixth["id"]].annotation_id)
    xs, ys = [p[0] for p in extremes], [p[1] for p in extremes]
    assert extreme["geometry"]["box"] == pytest.approx([min(xs), min(ys), max(xs), max(ys)], abs=1.5)
    found = [
        a for a in image["annotations"] if a["source"] == "queue" and a["class_id"] == missed["class_id"]
    ]
    from fewclick.metrics.detection import box_iou

    ious = box_iou(
        np.array([a["geometry"]["box"] for a in found], np.float32), np.array([missed["box"]], np.float32)
    )
    assert ious.max() >= 0.5, f"the missed object is labeled by its click (IoU {ious.max():.2f})"
    with app.state.sessions() as session:
        from fewclick.server.db import Event

        hows = {
            e.detail.get("query"): e.detail.get("how")
            for e in session.query(Event).filter(Event.action == "queue_fix")
        }
        assert session.query(Event).filter_by(action="queue_missed").count() == 1
    assert hows[fifth["id"]] == "corner" and hows[sixth["id"]] == "extreme" and hows[fourth["id"]] == "drag"
