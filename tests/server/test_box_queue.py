"""The review queue of box-level active learning through the API: built from the serving
detector, least sure box first, each box answered once, answers logged and counted, and a
training job after every N answers; pre-annotation of the images nobody started. No job
process runs: starts are recorded."""

import json

import numpy as np
import pytest
from clients import client_for, make_user

from fewclick.data.synthetic import make_dataset
from fewclick.server.app import create_app
from fewclick.server.db import BoxQuery, Event, Image, Job, ModelVersion, sqlite_url
from fewclick.server.jobs import control, queue, run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue")
    make_dataset("aerial", 3, seed=5, width=96, height=96, out_dir=root / "aerial")
    return root / "aerial" / "annotations.json"


@pytest.fixture(scope="module")
def detector(dataset, tmp_path_factory):
    """A tiny detector from scratch (a step of training: its scores are near its prior)."""
    from fewclick.io import read_dataset
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    data = read_dataset(dataset)
    out = tmp_path_factory.mktemp("queue-model")
    return train_detector(
        data, out, detector_config_for(data, "c3det"), TrainConfig(steps=1, crop=64), log=str
    )


@pytest.fixture()
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(control, "start_process", lambda target, *args: calls.append((target, args)))
    return calls


@pytest.fixture()
def app(tmp_path_factory, tmp_path, started, monkeypatch):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path / "none"))  # no pretrained files: no SAM
    roots = [tmp_path_factory.getbasetemp()]
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=roots)
    with client_for(app) as client:
        app.client = client
        yield app


def _project(app, dataset) -> dict:
    """A project of the dataset's images with no annotations (all open to the queue)."""
    client = app.client
    r = client.post("/api/projects", json={"name": "q", "dataset": str(dataset)})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    with app.state.sessions() as session:
        for image in session.query(Image).filter_by(project_id=project["id"]):
            image.annotations.clear()
        session.commit()
    return project


def _queries(app, project, scores) -> list[int]:
    """Open queries with these scores on the project's first image; their ids."""
    with app.state.sessions() as session:
        image = session.query(Image).filter_by(project_id=project["id"]).first()
        rows = [
            BoxQuery(
                project_id=project["id"], image_id=image.id, class_id=project["classes"][0]["id"],
                box=[10.0 + 20 * i, 10.0, 25.0 + 20 * i, 25.0], score=s, model_version=1,
            )
            for i, s in enumerate(scores)
        ]  # fmt: skip
        session.add_all(rows)
        session.commit()
        return [q.id for q in rows]


def test_the_queue_is_built_from_the_serving_detector_and_asks_about_the_least_sure_box(
    app, dataset, detector, started, monkeypatch
):
    project = _project(app, dataset)
    refused = app.client.post(f"/api/projects/{project['id']}/queue")
    assert refused.status_code == 400 and "no trained detector" in refused.json()["detail"]
    project = _project_for_detector(app, project, detector)
    r = app.client.post(f"/api/projects/{project['id']}/queue")
    assert r.status_code == 202 and r.json()["kind"] == "queue", r.text
    target, args = started[-1]
    assert target is run.run_queue
    monkeypatch.setattr(queue, "SCORE_THRESHOLD", 0.0)  # the one-step detector scores low
    queue.build_queue(args[0], args[1], args[2], None)
    job = app.client.get(f"/api/jobs/{args[1]}").json()
    assert job["status"] == "done" and "boxes to review on 3 images" in job["message"], job
    state = app.client.get(f"/api/projects/{project['id']}/queue").json()
    assert state["open"] > 0 and state["answered"] == 0
    with app.state.sessions() as session:
        lowest = min(q.score for q in session.query(BoxQuery).filter_by(project_id=project["id"]))
    assert state["next"]["score"] == pytest.approx(lowest)


def _project_for_detector(app, project, detector):
    with app.state.sessions() as session:
        session.add(
            ModelVersion(
                project_id=project["id"], task="detect", version=1, path=str(detector), images=1,
                method="scratch", created_by=1,
            )
        )  # fmt: skip
        session.commit()
    return project


def test_a_trained_detector_pre_annotates_without_clicks(app, dataset, detector, tmp_path):
    import torch

    # the tiny detector made sure of objects everywhere (its heatmap prior raised): boxes to compare
    ckpt = torch.load(detector, weights_only=False)
    key = next(k for k in ckpt["model"] if k.endswith("heatmap.bias"))
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], 2.0)
    detector = tmp_path / "sure.pt"
    torch.save(ckpt, detector)
    project = _project_for_detector(app, _project(app, dataset), detector)
    image = app.client.get(f"/api/projects/{project['id']}/images").json()[0]
    r = app.client.post(f"/api/images/{image['id']}/detect", json={"clicks": []})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_version"] == 1 and out["method"] == "scratch"
    # what the detector itself finds without clicks on that image, class ids the project's
    from fewclick.io.images import load_image
    from fewclick.predict.detect import ClickDetector

    offline = ClickDetector.load(detector)
    with app.state.sessions() as session:
        offline.set_image(load_image(session.get(Image, image["id"]).path))
    expected = offline.predict([])
    assert len(expected) > 0
    np.testing.assert_allclose(out["scores"], expected.scores, atol=1e-3)
    ids = {c["position"]: c["id"] for c in project["classes"]}
    assert out["labels"] == [ids[int(label)] for label in expected.labels]


def test_an_accepted_box_becomes_an_annotation_and_a_second_answer_is_a_409(app, dataset):
    project = _project(app, dataset)
    low, high = _queries(app, project, [0.25, 0.6])
    state = app.client.get(f"/api/projects/{project['id']}/queue").json()
    assert state["next"]["id"] == low and state["open"] == 2
    r = app.client.post(f"/api/queries/{low}/answer", json={"answer": "accept", "seconds": 1.5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["annotation"]["geometry"]["box"] == [10.0, 10.0, 25.0, 25.0]
    assert body["annotation"]["source"] == "queue" and body["next"]["id"] == high
    other = make_user(app, "bob", "annotator")
    again = app.client.post(
        f"/api/queries/{low}/answer",
        json={"answer": "background", "seconds": 2.0},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert again.status_code == 409 and "answered already (accept by admin)" in again.json()["detail"]
    image = app.client.get(f"/api/images/{body['annotation']['image_id']}").json()
    assert len(image["annotations"]) == 1, "the 409 wrote nothing"
    with app.state.sessions() as session:
        events = session.query(Event).filter(Event.action.like("queue_%")).all()
        assert [(e.action, e.duration_ms) for e in events] == [("queue_accept", 1500.0)]


def test_fix_and_background_answers(app, dataset):
    project = _project(app, dataset)
    a, b = _queries(app, project, [0.3, 0.4])
    second = project["classes"][1]["id"]
    bad = app.client.post(f"/api/queries/{a}/answer", json={"answer": "fix", "seconds": 1})
    assert bad.status_code == 400 and "needs the corrected box, class" in bad.json()["detail"]
    fixed = app.client.post(
        f"/api/queries/{a}/answer",
        json={"answer": "fix", "seconds": 4, "class_id": second, "box": [5, 5, 30, 30]},
    ).json()
    assert fixed["annotation"]["class_id"] == second and fixed["annotation"]["geometry"]["box"] == [
        5,
        5,
        30,
        30,
    ]
    gone = app.client.post(f"/api/queries/{b}/answer", json={"answer": "background", "seconds": 1}).json()
    assert gone["annotation"] is None and gone["query"]["answer"] == "background"
    assert gone["next"] is None and "no boxes left to review" in gone["message"]
    state = app.client.get(f"/api/projects/{project['id']}/queue").json()
    assert state["answers"] == {"fix": 1, "background": 1} and state["seconds"] == 5.0
    # the analytics count both answers as interactions on their image, and their seconds
    row = next(r for r in app.client.get(f"/api/projects/{project['id']}/analytics").json()["images"])
    assert row["interactions"] == 2 and row["seconds"] == 5.0


@pytest.mark.parametrize(
    "body, message",
    [
        ({"answer": "maybe", "seconds": 1}, "answer"),
        ({"answer": "accept", "seconds": -1}, "seconds"),
        ({"answer": "accept"}, "seconds"),
        ({"answer": "fix", "seconds": 1, "box": [500, 500, 900, 900]}, "less than 1 pixel"),
    ],
)
def test_bad_answers_name_the_problem_and_leave_the_box_open(app, dataset, body, message):
    project = _project(app, dataset)
    (q,) = _queries(app, project, [0.3])
    r = app.client.post(f"/api/queries/{q}/answer", json=body)
    assert r.status_code in (400, 422) and message in r.text
    assert app.client.get(f"/api/projects/{project['id']}/queue").json()["open"] == 1


def test_a_deleted_image_takes_its_boxes_out_of_the_queue(app, dataset):
    project = _project(app, dataset)
    (q,) = _queries(app, project, [0.3])
    with app.state.sessions() as session:
        session.delete(session.get(Image, session.get(BoxQuery, q).image_id))
        session.commit()
    assert (
        app.client.post(f"/api/queries/{q}/answer", json={"answer": "accept", "seconds": 1}).status_code
        == 404
    )
    assert app.client.get(f"/api/projects/{project['id']}/queue").json()["open"] == 0


def _finish_one(app, project) -> None:
    """Give the project's last image an annotation and finish it (what the trainer needs)."""
    with app.state.sessions() as session:
        image = session.query(Image).filter_by(project_id=project["id"]).order_by(Image.id.desc()).first()
        image_id, revision = image.id, image.revision
    cls = project["classes"][0]["id"]
    body = {"class_id": cls, "geometry": {"box": [5.0, 5.0, 30.0, 30.0]}}
    r = app.client.post(f"/api/images/{image_id}/annotations", json=body, params={"revision": revision})
    assert r.status_code == 201, r.text
    assert app.client.patch(f"/api/images/{image_id}", json={"status": "done"}).status_code == 200


def test_every_n_answers_start_the_background_trainer_once(app, dataset, started):
    project = _project(app, dataset)
    app.client.patch(f"/api/projects/{project['id']}", json={"queue_train_every": 2, "auto_train_every": 0})
    ids = _queries(app, project, [0.3, 0.35, 0.4, 0.45])
    answer = lambda q, kind: app.client.post(f"/api/queries/{q}/answer", json={"answer": kind, "seconds": 1})  # noqa: E731
    # answers due, but no finished image to train on yet: nothing starts
    assert answer(ids[0], "background").json()["training"] is None
    assert answer(ids[1], "accept").json()["training"] is None
    _finish_one(app, project)
    third = answer(ids[2], "accept").json()
    assert third["training"] is not None and third["training"]["trigger"] == "auto"
    assert third["training"]["kind"] == "trainer" and started[-1][0] is run.run_trainer
    # the live trainer reads the next answers at its next round: no second job
    assert answer(ids[3], "background").json()["training"] is None
    with app.state.sessions() as session:
        jobs = session.query(Job).filter_by(project_id=project["id"]).all()
        assert [j.kind for j in jobs] == ["trainer"]


def test_the_trainer_trains_on_the_partly_labeled_images_but_holds_out_only_finished_ones(app, dataset):
    from sqlalchemy.orm import sessionmaker

    from fewclick.server.jobs import trainer

    project = _project(app, dataset)
    _finish_one(app, project)
    accepted, background, _ = _queries(app, project, [0.3, 0.35, 0.4])
    for q, kind in ((accepted, "accept"), (background, "background")):
        assert (
            app.client.post(f"/api/queries/{q}/answer", json={"answer": kind, "seconds": 1}).status_code
            == 200
        )
    sessions = sessionmaker(app.state.sessions.kw["bind"])
    data, _, _ = trainer._finished(sessions, project["id"])
    with app.state.sessions() as session:
        queried = session.get(BoxQuery, accepted).image_id
        finished = session.query(Image).filter_by(project_id=project["id"], status="done").one().id
    trained = {r.id for r in data.images}
    assert queried in trained, "a partly labeled image trains"
    assert finished in trained, "every finished image trains: none is held out (issue 68)"
    partly = next(r for r in data.images if r.id == queried)
    assert partly.objects.extra.get("background_weight") == 0.0, "the dampened loss of a partly labeled image"


def test_a_partly_labeled_image_trains_with_its_open_boxes_as_dampened_noisy_labels(app, dataset, tmp_path):
    from fewclick.server.jobs import trainer
    from fewclick.train.detect_data import BACKGROUND_WEIGHT, LOSS_WEIGHT, NEGATIVE

    project = _project(app, dataset)
    accepted, background, still_open = _queries(app, project, [0.3, 0.35, 0.4])
    for q, answer in ((accepted, "accept"), (background, "background")):
        r = app.client.post(f"/api/queries/{q}/answer", json={"answer": answer, "seconds": 1})
        assert r.status_code == 200, r.text
    with app.state.sessions() as session:
        from fewclick.server.db import Project

        records = queue.partly_labeled(session, session.get(Project, project["id"]))
    assert len(records) == 1
    objects = records[0].objects
    # the accepted box, the box answered background (a labeled negative), the open one (noisy)
    assert objects.boxes.tolist() == [
        [10.0, 10.0, 25.0, 25.0],
        [30.0, 10.0, 45.0, 25.0],
        [50.0, 10.0, 65.0, 25.0],
    ]
    assert objects.extra[NEGATIVE].tolist() == [False, True, False]
    assert objects.extra[LOSS_WEIGHT].tolist() == [1.0, 1.0, 0.5] and objects.extra[BACKGROUND_WEIGHT] == 0.0
    # a finished image with a box of its own, and a job that trains on it and the partly labeled one
    images = app.client.get(f"/api/projects/{project['id']}/images").json()
    other = next(im for im in images if im["id"] != records[0].id)
    added = app.client.post(
        f"/api/images/{other['id']}/annotations?revision={other['revision']}",
        json={"class_id": project["classes"][0]["id"], "kind": "box", "geometry": {"box": [5, 5, 40, 40]}},
    )
    assert added.status_code == 201, added.text
    done = app.client.patch(f"/api/images/{other['id']}", json={"status": "done"})
    assert done.status_code == 200, done.text
    # the background trainer (the one way detectors train) learns from both
    data, _, _ = trainer._finished(app.state.sessions, project["id"])
    assert sorted(r.id for r in data.images) == sorted([records[0].id, other["id"]])
    partly = next(r for r in data.images if r.id == records[0].id)
    assert partly.objects.extra[LOSS_WEIGHT].tolist() == [1.0, 1.0, 0.5]


def test_only_what_a_person_labeled_keeps_a_box_out_of_the_queue_not_hidden_reference(app, dataset):
    import numpy as np

    from fewclick.server.db import Annotation

    project = _project(app, dataset)
    with app.state.sessions() as session:
        image = session.query(Image).filter_by(project_id=project["id"]).first()
        cls = project["classes"][0]["id"]
        for box, reference in (([0, 0, 20, 20], True), ([40, 40, 60, 60], False)):
            image.annotations.append(
                Annotation(class_id=cls, kind="box", geometry={"box": box}, reference=reference,
                           created_by=1, updated_by=1)
            )  # fmt: skip
        session.commit()
        boxes = np.array([[1, 1, 20, 20], [41, 40, 60, 60], [70, 70, 90, 90]], np.float32)
        assert queue._labeled(session, image, boxes).tolist() == [False, True, False]


@pytest.mark.parametrize(
    "metrics, expected",
    [(None, 0.2), ({}, 0.2), ({"score_threshold": 0.13}, 0.065), ({"score_threshold": 0.6}, 0.2)],
)
def test_the_pool_threshold_follows_the_detectors_calibration(metrics, expected):
    assert queue.pool_threshold(metrics) == pytest.approx(expected)


def _sure_detector(detector, tmp_path):
    """The tiny detector made sure of objects everywhere (its heatmap prior raised)."""
    import torch

    ckpt = torch.load(detector, weights_only=False)
    key = next(k for k in ckpt["model"] if k.endswith("heatmap.bias"))
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], 2.0)
    torch.save(ckpt, tmp_path / "sure.pt")
    return tmp_path / "sure.pt"


def test_pre_annotation_runs_the_batch_predict_job_on_the_images_nobody_started(
    app, dataset, detector, started, tmp_path
):
    from fewclick.batch import PredictJob
    from fewclick.server.db import Annotation
    from fewclick.server.jobs import preannotate

    project = _project(app, dataset)
    refused = app.client.post(f"/api/projects/{project['id']}/preannotate")
    assert refused.status_code == 400 and "no trained detector" in refused.json()["detail"]
    _project_for_detector(app, project, _sure_detector(detector, tmp_path))
    with app.state.sessions() as session:
        session.get(ModelVersion, 1).metrics = {"score_threshold": 0.5}  # its best F1 held out
        first, second, third = session.query(Image).filter_by(project_id=project["id"]).order_by(Image.id)
        mine = dict(class_id=project["classes"][0]["id"], kind="box", created_by=1, updated_by=1)
        first.annotations.append(Annotation(geometry={"box": [1, 1, 9, 9]}, **mine))  # a person started it
        second.annotations.append(Annotation(geometry={"box": [2, 2, 8, 8]}, reference=True, **mine))
        session.commit()
        ids = [first.id, second.id, third.id]
    r = app.client.post(f"/api/projects/{project['id']}/preannotate")
    assert r.status_code == 202 and r.json()["kind"] == "predict", r.text
    target, args = started[-1]
    assert target is run.run_preannotate
    preannotate.preannotate(args[0], args[1], args[2], None)
    job = app.client.get(f"/api/jobs/{args[1]}").json()
    assert job["status"] == "done" and " boxes on 2 images (detector v1, score >= 0.50)" in job["message"], (
        job
    )
    with app.state.sessions() as session:
        images = [session.get(Image, i) for i in ids]
        assert [a.source for a in images[0].annotations] == ["manual"]  # left alone
        saved = [a for a in images[2].annotations if a.source == "preannotate"]
        assert saved and all(a.review == "pending" and a.score >= 0.5 for a in saved)
        assert images[2].status == "in_progress"
        # the same boxes as the batch job of `fewclick predict` gives for that image
        expected = PredictJob(str(tmp_path / "sure.pt"), score_threshold=0.5)(
            {"path": [images[2].path], "rel": ["x"]}
        )
        assert expected["error"] == [""]
        boxes = np.asarray(json.loads(expected["detections"][0])["boxes"])
        got = np.asarray(sorted(a.geometry["box"] for a in saved))
        np.testing.assert_allclose(got, boxes[np.lexsort(boxes.T[::-1])], atol=0.01)
    again = app.client.post(f"/api/projects/{project['id']}/preannotate")
    assert again.status_code == 400 and "nothing to pre-annotate" in again.json()["detail"]


def test_pre_annotation_leaves_an_image_someone_starts_meanwhile_and_mark_done_skips_unreviewed_boxes(
    app, dataset, detector, started, tmp_path, monkeypatch
):
    from fewclick import batch
    from fewclick.server.db import Annotation
    from fewclick.server.jobs import preannotate

    project = _project_for_detector(app, _project(app, dataset), _sure_detector(detector, tmp_path))
    with app.state.sessions() as session:
        session.get(ModelVersion, 1).metrics = {"score_threshold": 0.5}
        session.commit()
        first, *_ = session.query(Image).filter_by(project_id=project["id"]).order_by(Image.id)
        first_id = first.id
    detect = batch.run

    def a_person_starts_the_first_image_meanwhile(*args, **kwargs):
        rows = detect(*args, **kwargs)
        with app.state.sessions() as session:
            image = session.get(Image, first_id)
            image.annotations.append(
                Annotation(geometry={"box": [1, 1, 9, 9]}, class_id=project["classes"][0]["id"], kind="box",
                           created_by=1, updated_by=1)
            )  # fmt: skip
            image.revision += 1
            session.commit()
        return rows

    monkeypatch.setattr(batch, "run", a_person_starts_the_first_image_meanwhile)
    assert app.client.post(f"/api/projects/{project['id']}/preannotate").status_code == 202
    _, args = started[-1]
    preannotate.preannotate(args[0], args[1], args[2], None)
    job = app.client.get(f"/api/jobs/{args[1]}").json()
    assert (
        job["status"] == "done"
        and "on 2 images" in job["message"]
        and "1 image(s) left alone" in job["message"]
    )
    with app.state.sessions() as session:
        assert [a.source for a in session.get(Image, first_id).annotations] == ["manual"]
    # "mark annotated images done" finishes the image a person annotated, not the pre-annotated ones
    finished = app.client.post(f"/api/projects/{project['id']}/finish", json={"status": "done"}).json()
    assert finished["finished"] == 1


def test_pre_annotation_refuses_a_detector_of_other_classes(app, dataset, detector, started):
    from fewclick.server.jobs import preannotate

    project = _project_for_detector(app, _project(app, dataset), detector)
    app.client.post(f"/api/projects/{project['id']}/classes", json={"name": "added later"})
    assert app.client.post(f"/api/projects/{project['id']}/preannotate").status_code == 202
    _, args = started[-1]
    with pytest.raises(ValueError, match="knows other classes than the project's: train again"):
        preannotate.preannotate(args[0], args[1], args[2], None)


def test_pre_annotation_of_a_large_tiff_runs_on_windows_read_alone(
    app, dataset, detector, started, tmp_path, tmp_path_factory, monkeypatch
):
    """A 3000 x 2400 tiled TIFF is pre-annotated window by window (each read alone, never
    the whole image), and an object that overlapping windows both see is saved once, where
    it lies in the image. The job here is one of known answers: it finds the objects below
    in every window that holds them whole."""
    import tifffile

    from fewclick import batch
    from fewclick.io import read_dataset
    from fewclick.io.regions import WINDOW_MARK
    from fewclick.server.jobs import preannotate

    objects = [[500, 500, 540, 530], [2500, 500, 2540, 530], [1600, 1000, 1640, 1030], [300, 2300, 340, 2330]]
    read = []

    class KnownObjects:
        def __init__(self, model: str, threads: int = 1, score_threshold: float | None = None) -> None:
            pass

        def __call__(self, items: dict) -> dict:
            return batch._per_image(items, "detections", self._detect)

        def _detect(self, image: np.ndarray, item: dict) -> str:
            read.append((item["path"], image.shape[:2]))
            x0, y0, x1, y1 = (int(v) for v in item["path"].rsplit(WINDOW_MARK, 1)[1].split(","))
            seen = [[b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0] for b in objects]
            boxes = np.float32(
                [b for b in seen if b[0] >= 0 and b[1] >= 0 and b[2] <= x1 - x0 and b[3] <= y1 - y0]
            )
            det = batch.Detections(
                boxes.reshape(-1, 4), np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64)
            )
            return batch._detections_text(det)

    monkeypatch.setattr(batch, "PredictJob", KnownObjects)
    folder = tmp_path_factory.mktemp("large-scene")
    scene = np.random.default_rng(0).integers(0, 255, (2400, 3000, 3), dtype=np.uint8)
    tifffile.imwrite(folder / "scene.tif", scene, tile=(256, 256), photometric="rgb")
    body = {"name": "large", "folder": str(folder), "classes": list(read_dataset(dataset).classes)}
    project = app.client.post("/api/projects", json=body).json()["project"]
    _project_for_detector(app, project, _sure_detector(detector, tmp_path))
    assert app.client.post(f"/api/projects/{project['id']}/preannotate").status_code == 202
    _, args = started[-1]
    preannotate.preannotate(args[0], args[1], args[2], None)
    job = app.client.get(f"/api/jobs/{args[1]}").json()
    assert job["status"] == "done" and job["message"].startswith("4 boxes on 1 images"), job
    assert len(read) == 4 and all(WINDOW_MARK in path for path, _ in read), "2 x 2 windows, read alone"
    assert max(h * w for _, (h, w) in read) == 2048 * 2048
    with app.state.sessions() as session:
        image = session.query(Image).filter_by(project_id=project["id"]).one()
        got = sorted(a.geometry["box"] for a in image.annotations)
    assert got == sorted([float(v) for v in b] for b in objects), "each object once, where it lies"
