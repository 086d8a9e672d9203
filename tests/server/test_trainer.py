"""A project's background trainer (issue 32, part 2): started, paused, resumed and stopped
through the API beside the other jobs; its loop, run in this process, trains rounds on the
finished images, registers a version that beats what serves, stops when told, goes on from
its rounds when started again, and a paused trainer whose process died is failed."""

import itertools
import json
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from clients import client_for

from fewclick.active.continual import ContinualConfig
from fewclick.data.synthetic import make_dataset
from fewclick.server.app import create_app
from fewclick.server.db import Job, ModelVersion, now, sqlite_url
from fewclick.server.jobs import control, run, trainer
from fewclick.types import Detections

SMALL = ContinualConfig(round_steps=2, crop=64, batch_size=2)


class _Answers:
    """A detector that opens each scored image with its boxes, the surest possible."""

    def __init__(self, answers: dict) -> None:
        self.answers, self.image = answers, None

    def set_image(self, image, key=None) -> None:
        self.image = image

    def predict(self, clicks):
        objects = self.answers[id(self.image)]
        return Detections(objects.boxes, np.ones(len(objects), np.float32), objects.labels)


@pytest.fixture()
def promoting(monkeypatch):
    """Rounds that save work on the images finished while they trained: after each round the
    trainer scores it on every finished image, three times each under ids of their own, as
    answered by a detector that boxes their objects (the round's own file is read first, so
    a torn or missing one fails as in the app): each round is promoted, whatever a short run
    learned on this CPU."""
    from fewclick.active.continual import Fresh
    from fewclick.server.jobs import trainer_scored

    answers: dict = {}
    rounds = itertools.count(1)
    real_fresh, real_loader = trainer_scored.fresh_images, trainer._loader

    def fresh_images(sessions, project_id, keys):
        finished = real_fresh(sessions, project_id, keys)

        def fresh(seen):
            n = next(rounds)
            out = [
                Fresh(10**6 * n + 10 * f.image_id + k, f.image, f.objects)
                for f in finished(set())
                for k in range(3)
            ]
            answers.update({id(f.image): f.objects for f in out})
            return out

        return fresh

    def loader(*args, **kw):
        load = real_loader(*args, **kw)

        def known(path):
            load(path)
            return _Answers(answers)

        return known

    monkeypatch.setattr(trainer_scored, "fresh_images", fresh_images)
    monkeypatch.setattr(trainer, "_loader", loader)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    make_dataset("aerial", 4, seed=6, width=96, height=96, out_dir=root / "aerial")
    return root / "aerial" / "annotations.json"


@pytest.fixture()
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(control, "start_process", lambda target, *args: calls.append((target, args)))
    return calls


@pytest.fixture()
def app(tmp_path_factory, tmp_path, started, monkeypatch):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path / "none"))  # no pretrained files: no SAM
    monkeypatch.setattr(control, "WATCH_SECONDS", 3600.0)  # the tests call the job watch's parts themselves
    roots = [tmp_path_factory.getbasetemp()]
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=roots)
    with client_for(app) as client:
        app.client = client
        app.db_url = sqlite_url(tmp_path / "app.db")
        app.models = tmp_path / "data" / "models"  # the app's own (Settings.models_dir)
        yield app


def _project(app, dataset, finished: bool = True) -> dict:
    client = app.client
    body = {"name": f"t-{uuid.uuid4().hex[:6]}", "dataset": str(dataset)}
    project = client.post("/api/projects", json=body).json()["project"]
    client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})
    if finished:
        for image in client.get(f"/api/projects/{project['id']}/images").json():
            assert (
                client.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": True}).status_code
                == 200
            )
    return project


def _boxed(app, project) -> int:
    """The project's finished images that hold a box (what the trainer trains on)."""
    return len(trainer._finished(app.state.sessions, project["id"])[0])


def _act(app, project, action):
    return app.client.post(f"/api/projects/{project['id']}/trainer", json={"action": action})


def test_the_trainer_starts_pauses_resumes_and_stops_beside_the_other_jobs(app, dataset, started):
    refused = _act(app, _project(app, dataset, finished=False), "start")
    assert refused.status_code == 400 and "no finished image" in refused.json()["detail"]
    project = _project(app, dataset)
    r = _act(app, project, "start")
    assert r.status_code == 202 and r.json()["kind"] == "trainer", r.text
    assert started[-1][0] is run.run_trainer
    assert _act(app, project, "start").status_code == 409, "one trainer per project"
    job_id = r.json()["id"]
    with app.state.sessions() as session:
        session.get(Job, job_id).status = "running"  # as its process says once it runs
        session.commit()
    assert _act(app, project, "resume").status_code == 400, "running: nothing to resume"
    assert _act(app, project, "pause").json()["status"] == "paused"
    assert app.client.get(f"/api/projects/{project['id']}").json()["trainer"]["status"] == "paused"
    assert _act(app, project, "resume").json()["status"] == "running"
    r = app.client.post(f"/api/projects/{project['id']}/train", json={"minutes": 1})
    assert r.status_code == 409 and f"(job {job_id}): each of its rounds takes in" in r.json()["detail"], (
        "boxes alone: the live trainer learns them, no second way to train a detector"
    )
    assert _act(app, project, "stop").json()["status"] == "stopping"
    assert _act(app, project, "pause").status_code == 400
    bad = _act(app, project, "faster")
    assert bad.status_code == 400 and "pause, resume or stop" in bad.json()["detail"]


def test_the_loop_trains_rounds_registers_a_version_and_goes_on_after_a_restart(
    app, dataset, started, promoting
):
    project = _project(app, dataset)
    job_id = _act(app, project, "start").json()["id"]
    trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=1, config=SMALL)
    with app.state.sessions() as session:
        job = session.get(Job, job_id)
        assert job.status == "done" and "stopped after 1 rounds, 2 steps" in job.message
        version = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect").one()
        assert version.method in trainer.KINDS and version.metrics["trainer_round"] == 1
        scored = version.metrics["prequential"]
        assert (
            scored["scored_images"] == 3 * _boxed(app, project)
            and scored["serves"]
            and scored["saved_s"]["trainer"] > 0
        )
        served = scored["serves"][0]
        assert scored["sources"][str(served)] == "trainer", "per class position, what serves it"
        why = scored["why"][str(served)]
        assert "more than showing nothing" in why, "why it serves, for the project page"
        assert Path(version.path).is_file()
    served = app.client.get(f"/api/projects/{project['id']}").json()["detector"]
    assert served["version"] == 1 and served["method"] == version.method
    job_id = _act(app, project, "start").json()["id"]  # started again: from its rounds
    trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=1, config=SMALL)
    state = json.loads((app.models / str(project["id"]) / "trainer" / "state.json").read_text())
    assert len(state["rounds"]) == 2 and state["total_steps"] == 4
    second = state["rounds"][1]
    assert second["promoted"] and second["trained"] and len(second["scored"]) == 3 * _boxed(app, project)
    url = f"/api/projects/{project['id']}"
    job_id = _act(app, project, "start").json()["id"]
    with app.state.sessions() as session:  # as its process says, half through its third round
        job = session.get(Job, job_id)
        job.status, job.progress = "running", 0.5
        session.commit()
    steps = app.client.get(url).json()["trainer"]["steps"]
    assert steps == 4 + ContinualConfig().round_steps // 2, "its rounds' steps and half the running one's"


def test_a_promoted_round_is_scored_on_the_reference_images_nobody_labeled(app, dataset, started, promoting):
    from fewclick.server.db import Annotation

    project = _project(app, dataset, finished=False)
    body = {"dataset": str(dataset), "reference": True}
    assert app.client.post(f"/api/projects/{project['id']}/import", json=body).status_code == 200
    images = app.client.get(f"/api/projects/{project['id']}/images").json()
    with app.state.sessions() as session:  # the last image: nobody labeled it yet
        session.query(Annotation).filter_by(image_id=images[-1]["id"], reference=False).delete()
        session.commit()
    for image in images[:-1]:
        assert (
            app.client.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": True}).status_code
            == 200
        )
    job_id = _act(app, project, "start").json()["id"]
    trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=1, config=SMALL)
    with app.state.sessions() as session:
        version = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect").one()
        metrics = version.metrics
    assert metrics["reference_images"] == 1 and 0 <= metrics["reference_mAP"] <= 1
    curve = app.client.get(f"/api/projects/{project['id']}/analytics").json()["map_vs_boxes"]
    assert [point["version"] for point in curve] == [1] and curve[0]["mAP"] == metrics["reference_mAP"]


def test_a_stop_reaches_a_paused_trainer(app, dataset, started, monkeypatch):
    monkeypatch.setattr(trainer, "POLL_SECONDS", 0.05)
    project = _project(app, dataset)
    job_id = _act(app, project, "start").json()["id"]
    with app.state.sessions() as session:
        session.get(Job, job_id).status = "paused"
        session.commit()

    def stop_later():
        threading.Event().wait(0.3)
        with app.state.sessions() as session:
            session.get(Job, job_id).status = "stopping"
            session.commit()

    thread = threading.Thread(target=stop_later)
    thread.start()
    trainer.run_trainer(app.db_url, job_id, app.models, None, config=SMALL)
    thread.join()
    with app.state.sessions() as session:
        job = session.get(Job, job_id)
        assert job.status == "done" and job.message == "trainer stopped before its first round"


def test_a_paused_trainer_whose_process_died_is_failed(app, dataset, started):
    project = _project(app, dataset)
    job_id = _act(app, project, "start").json()["id"]
    with app.state.sessions() as session:
        job = session.get(Job, job_id)
        job.status, job.heartbeat_at = "paused", now() - timedelta(seconds=control.STALE_SECONDS + 5)
        session.commit()
        assert [j.id for j in control.reset_stale(session, project["id"])] == [job_id]
    assert app.client.get(f"/api/projects/{project['id']}").json()["trainer"] is None


@pytest.mark.parametrize(("last_asked", "after"), [("start", "queued"), ("pause", "paused"), ("stop", None)])
def test_at_start_up_a_trainer_left_on_starts_again_in_its_state(app, dataset, started, last_asked, after):
    """Whether the server stopped or died since: what its users last asked is kept on disk."""
    project = _project(app, dataset)
    job_id = _act(app, project, "start").json()["id"]
    if last_asked != "start":
        with app.state.sessions() as session:
            session.get(Job, job_id).status = "running"
            session.commit()
        assert _act(app, project, last_asked).status_code == 202
    started.clear()
    with app.state.sessions() as session:
        session.get(Job, job_id).status = "failed"  # as the server's stop, or a restart, left it
        session.commit()
        again = control.restart_trainers(session, app.state.settings)
        if after is None:
            assert again == [] and started == []
            return
        assert [(j.kind, j.status) for j in again] == [("trainer", after)]
        assert control.restart_trainers(session, app.state.settings) == [], "one trainer per project"
    assert started[0][0] is run.run_trainer and started[0][1][1] == again[0].id


def test_a_pinned_version_or_the_training_free_start_serves_whatever_comes_after(
    app, dataset, started, promoting
):
    project = _project(app, dataset)
    url = f"/api/projects/{project['id']}"
    trainer.run_trainer(
        app.db_url, _act(app, project, "start").json()["id"], app.models, None, rounds=1, config=SMALL
    )
    image = app.client.get(f"{url}/images").json()[0]
    detect = f"/api/images/{image['id']}/detect"
    assert app.client.post(detect, json={"clicks": []}).status_code == 200, "v1 serves: proposals on open"
    with app.state.sessions() as session:  # a second version, as a later round would register
        v1 = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect").one()
        session.add(
            ModelVersion(
                **{
                    c: getattr(v1, c)
                    for c in ("project_id", "task", "path", "images", "method", "metrics", "created_by")
                },
                version=2,
            )
        )
        session.commit()
    assert app.client.get(url).json()["detector"]["version"] == 2, "unpinned: the newest serves"

    pinned = app.client.patch(url, json={"pinned_detector": 1}).json()
    assert pinned["pinned_detector"] == 1 and pinned["detector"]["version"] == 1
    pinned = app.client.patch(url, json={"pinned_detector": 0}).json()
    assert pinned["pinned_detector"] == 0 and pinned["detector"] is None
    refused = app.client.post(detect, json={"clicks": []})
    assert refused.status_code == 400 and "needs a trained detector" in refused.json()["detail"]
    for bad, says in [
        (7, "has no detector v7 (its versions: v1, v2)"),
        (-1, "got -1"),
        ("v1", "got 'v1'"),
        (True, "got True"),
    ]:
        r = app.client.patch(url, json={"pinned_detector": bad})
        assert r.status_code == 400 and says in r.json()["detail"], r.text
    assert app.client.get(url).json()["pinned_detector"] == 0, "a refused pin changes nothing"
    assert app.client.patch(url, json={"pinned_detector": None}).json()["detector"]["version"] == 2
    classes = [c["id"] for c in project["classes"]]
    with app.state.sessions() as session:  # per class, where v2's proposals left the least work
        v2 = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect", version=2).one()
        v2.metrics = {**(v2.metrics or {}), "score_thresholds": [0.35] + [None] * (len(classes) - 1)}
        session.commit()
    opened = app.client.post(detect, json={"clicks": []}).json()
    assert opened["min_scores"] == {str(classes[0]): 0.35}, "by class id, as the labels"


def test_before_any_version_candidates_face_the_look_alikes_where_the_app_made_proposals(tmp_path):
    from types import SimpleNamespace

    first = SimpleNamespace(state=SimpleNamespace(serving=None))
    trainer._serve_against(first, None, str(tmp_path), 1)
    assert first.state.serving is None, "no proposals made: the first candidate serves as before"
    (tmp_path / "2-1-5.proposals.npz").write_bytes(b"")
    trainer._serve_against(first, None, str(tmp_path), 1)
    assert first.state.serving is None, "another project's proposals say nothing of this one"
    (tmp_path / "1-1-5.proposals.npz").write_bytes(b"")
    trainer._serve_against(first, None, str(tmp_path), 1)
    assert first.state.serving == trainer.LOOK_ALIKES, "the look-alikes serve until a candidate beats them"
    # a round promoted whose version was never registered (its process ended in between):
    # nothing of it serves, so the next candidates face what does, the look-alikes
    promoted = SimpleNamespace(state=SimpleNamespace(serving="round-1/model.pt"))
    trainer._serve_against(promoted, None, str(tmp_path), 1)
    assert promoted.state.serving == trainer.LOOK_ALIKES
    with pytest.raises(FileNotFoundError, match="SAM's files are not set up"):
        trainer._loader(None, 2, {}, str(tmp_path))(trainer.LOOK_ALIKES)


def _candidates(objects, rng):
    """SAM-like candidates of an image: each object's box, and as many boxes of background,
    with feature vectors that tell the classes and the background apart (a known answer)."""
    from fewclick.predict.proposals import Proposals

    boxes = np.asarray(objects.boxes, np.float32)
    background = boxes[:, [0, 1, 0, 1]] + np.float32([20, 20, 28, 28])  # beside each object
    both = np.concatenate([boxes, background])
    kinds = np.concatenate([np.asarray(objects.labels), np.full(len(background), -1)])
    vectors = rng.normal(0, 0.05, (len(both), 8)).astype(np.float32)
    vectors[np.arange(len(both)), kinds + 1] += 1.0  # one feature per class, one for the background
    masks = [
        (int(x0), int(y0), np.ones((max(int(y1 - y0), 1), max(int(x1 - x0), 1)), bool))
        for x0, y0, x1, y1 in both
    ]
    return Proposals(
        both, np.full(len(both), 0.9, np.float32), vectors, masks, np.zeros(8, np.float32), (96, 96)
    )


def test_the_fast_learner_is_scored_beside_the_look_alikes_on_each_fresh_image(app, dataset, tmp_path):
    """Issue 68: the trainer scores the sources over SAM's proposals on each image it never
    saw, each fit on the finished images before it: the fast learner among them, refit for
    every fresh image (its seconds kept), and on candidates that tell the classes apart it
    shows each fresh image's objects."""
    from fewclick.active.continual import Fresh
    from fewclick.io.images import load_image
    from fewclick.metrics.detection import box_iou
    from fewclick.predict.lookalike import proposals_file
    from fewclick.server.db import Project
    from fewclick.server.exports import to_dataset
    from fewclick.server.jobs import trainer_scored
    from fewclick.server.serving import record_key
    from fewclick.server.storage import images

    project = _project(app, dataset, finished=False)
    sessions, rng = app.state.sessions, np.random.default_rng(0)
    with sessions() as session:
        data = to_dataset(session.get(Project, project["id"]))
    records = [r for r in data.images if len(r.objects)]
    for r in records:
        _candidates(r.objects, rng).save(proposals_file(tmp_path, record_key(project["id"], r)))
    *before, last = records
    for r in before:  # finished before: what the sources are fit on
        assert app.client.patch(f"/api/images/{r.id}", json={"status": "done"}).status_code == 200
    keys: dict = {}
    fresh = [Fresh(last.id, load_image(last.path), last.objects)]
    keys[id(fresh[0].image)] = record_key(project["id"], last)
    learnt = trainer_scored.Learnt()
    shown = trainer_scored.sam_sources(sessions, project["id"], str(tmp_path), keys, learnt)(fresh)
    assert set(shown) == {"look-alikes", "learner"} and len(learnt.fit_s) == 1 and 0 <= learnt.fit_s[0] < 60
    said = learnt.convention
    assert said and all(v["wide"] == v["tall"] == 1.0 for v in said.values()), "boxed on the candidates"
    learnt = shown["learner"][0]
    sure = learnt[learnt.scores >= 0.5]
    assert len(sure) == len(last.objects) and (box_iou(last.objects.boxes, sure.boxes).max(1) >= 0.7).all()
    assert sorted(sure.labels.tolist()) == sorted(np.asarray(last.objects.labels).tolist())
    with sessions() as session:
        assert len(images.finished(session, project["id"])) == len(before)
    assert trainer_scored.sam_sources(sessions, project["id"], None, keys) is None, "no app folder: none"
