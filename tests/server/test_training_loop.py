"""Training in the loop: the trainer starts by itself after N finished images (and masks
and points train in a job after every N), imported
annotations are marked finished in bulk, the train request says why it cannot start, a job
estimates its time left, and a database from before all this keeps its rows.

No real training runs here: the job process start is replaced by a recorder."""

from datetime import timedelta
from pathlib import Path

import pytest
from clients import client_for, make_user
from fastapi.testclient import TestClient
from sqlalchemy import text

from fewclick.data.synthetic import make_dataset
from fewclick.server import views
from fewclick.server.app import create_app
from fewclick.server.db import Job, ModelVersion, make_engine, now, sqlite_url
from fewclick.server.jobs import control, run, training
from fewclick.server.jobs.process import HEARTBEAT_SECONDS
from fewclick.server.jobs.status import update_job
from fewclick.server.serving import Trained
from fewclick.server.storage import annotations


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    make_dataset("aerial", 4, seed=3, width=128, height=128, out_dir=root / "aerial")
    return root / "aerial" / "annotations.json"


@pytest.fixture()
def started(monkeypatch):
    """The job processes the app started, as (target, args) instead of processes."""
    calls = []
    monkeypatch.setattr(control, "start_process", lambda target, *args: calls.append((target, args)))
    return calls


@pytest.fixture()
def app(tmp_path_factory, tmp_path, started):
    roots = [tmp_path_factory.getbasetemp()]
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=roots)
    with client_for(app) as client:
        app.client = client
        yield app


def _project(client, dataset, name="p"):
    """A project imported with labels: every image holds annotations, none is finished."""
    r = client.post("/api/projects", json={"name": name, "dataset": str(dataset)})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    return project, client.get(f"/api/projects/{project['id']}/images").json()


def _boxes_project(client, dataset, name="boxes"):
    """A project of the dataset's images with one box each and no mask (the synthetic
    datasets' objects have masks: a training job would start for them): none finished."""
    folder = Path(dataset).parent / "images"
    project = client.post("/api/projects", json={"name": name, "folder": str(folder)}).json()["project"]
    cls = project["classes"][0]["id"]
    images = client.get(f"/api/projects/{project['id']}/images").json()
    for image in images:
        body = {"revision": 0, "create": [{"class_id": cls, "geometry": {"box": [5, 5, 30, 30]}}]}
        assert client.post(f"/api/images/{image['id']}/annotations/batch", json=body).status_code == 200
    return project, images


def _end_job(app, job_id: int, trained_on: int) -> None:
    """Let job ``job_id`` end as if it trained a detector on ``trained_on`` images."""
    with app.state.sessions() as session:
        job = session.get(Job, job_id)
        job.status = "done"
        session.add(
            ModelVersion(
                project_id=job.project_id, task="detect", version=1, path="x", images=trained_on, created_by=1
            )
        )
        session.commit()


def test_the_trainer_starts_by_itself_after_n_finished_images_and_a_persons_stop_holds(app, dataset, started):
    client = app.client
    project, images = _boxes_project(client, dataset)
    assert project["auto_train_every"] == 2, "the default"
    done = lambda im: client.patch(f"/api/images/{im['id']}", json={"status": "done"}).json()  # noqa: E731

    assert done(images[0])["job"] is None and started == [], "one finished image: not yet"
    job = done(images[1])["job"]
    assert job is not None and job["kind"] == "trainer" and job["trigger"] == "auto", job
    settings = app.state.settings
    assert started == [
        (run.run_trainer, (settings.db_url, job["id"], str(settings.models_dir), str(settings.embeddings)))
    ], "the background trainer, as Keep training starts it: the one way the app trains detectors"
    assert done(images[2])["job"] is None and len(started) == 1, "its next round takes the image in"
    assert client.patch(f"/api/images/{images[2]['id']}", json={"status": "reviewed"}).json()["job"] is None

    # a person's stop holds: finishing images does not start it again, Keep training does
    r = client.post(f"/api/projects/{project['id']}/trainer", json={"action": "stop"})
    assert r.status_code == 202 and r.json()["status"] == "stopping", r.text
    _end_job(app, job["id"], trained_on=3)
    assert done(images[3])["job"] is None and len(started) == 1, "stopped by a person: not started again"
    again = client.post(f"/api/projects/{project['id']}/trainer", json={"action": "start"})
    assert again.status_code == 202 and len(started) == 2, again.text
    jobs = client.get(f"/api/projects/{project['id']}/jobs").json()
    assert [(j["id"], j["kind"], j["trigger"]) for j in jobs] == [
        (job["id"], "trainer", "auto"), (again.json()["id"], "trainer", "user")
    ]  # fmt: skip


def test_masks_and_points_train_in_a_job_beside_the_trainer_after_every_n_images(
    tmp_path_factory, app, started
):
    client = app.client
    root = tmp_path_factory.mktemp("cells")
    make_dataset("cells", 3, seed=4, width=160, height=160, out_dir=root / "cells")
    project, images = _project(client, root / "cells" / "annotations.json")
    kinds = lambda: sorted(target.__name__ for target, _ in started)  # noqa: E731
    for im in images[:2]:
        client.patch(f"/api/images/{im['id']}", json={"status": "done"})
    assert kinds() == ["run_trainer", "run_training"], (
        "the masks (22 on 2 images) train in a job of their own"
    )
    training = [args for target, args in started if target is run.run_training][0]
    assert training[3] == control.AUTO_MINUTES, "a job that starts by itself has a budget of one minute"
    client.patch(f"/api/images/{images[2]['id']}", json={"status": "done"})
    assert len(started) == 2, "the mask job is live: no second one"


def _job_row(app, project_id: int, status: str, age_s: float, beat_age_s: float | None, kind="train") -> int:
    """A job row made ``age_s`` ago whose last heartbeat was ``beat_age_s`` ago (None: never)."""
    with app.state.sessions() as session:
        t = now()
        job = Job(project_id=project_id, kind=kind, status=status, created_by=1)
        job.created_at = job.updated_at = t - timedelta(seconds=age_s)
        job.heartbeat_at = None if beat_age_s is None else t - timedelta(seconds=beat_age_s)
        session.add(job)
        session.commit()
        return job.id


def _finished(client, dataset) -> dict:
    """A project whose images hold annotations and are all finished, no job started."""
    project, _ = _project(client, dataset)
    client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})
    client.post(f"/api/projects/{project['id']}/finish")
    return project


@pytest.mark.parametrize(
    "status, beat_age_s",
    [
        ("running", 600),  # beat for a while, then its process was killed
        ("running", None),  # killed before its first beat
        ("queued", None),  # its process never started
    ],
)
def test_a_job_whose_process_stopped_no_longer_blocks_train(app, dataset, started, status, beat_age_s):
    client = app.client
    project = _finished(client, dataset)
    dead = _job_row(app, project["id"], status, 3600, beat_age_s, kind="trainer")
    r = client.post(f"/api/projects/{project['id']}/train", json={"minutes": 0.1})
    assert r.status_code == 202, r.text
    assert [target for target, _ in started] == [run.run_trainer, run.run_training], "the trainer, then masks"
    assert r.json()["id"] != dead
    old = client.get(f"/api/jobs/{dead}").json()
    assert old["status"] == "failed" and "process stopped" in old["message"]


def test_a_job_that_beats_still_blocks_a_second_one(app, dataset, started):
    client = app.client
    project = _finished(client, dataset)
    _job_row(app, project["id"], "running", 3600, HEARTBEAT_SECONDS, kind="trainer")
    alive = _job_row(app, project["id"], "running", 3600, HEARTBEAT_SECONDS)
    r = client.post(f"/api/projects/{project['id']}/train", json={"minutes": 0.1})
    assert r.status_code == 409 and f"job {alive}" in r.json()["detail"]
    assert started == [] and client.get(f"/api/jobs/{alive}").json()["status"] == "running"


def test_the_app_resets_jobs_left_running_by_an_earlier_server_when_it_starts(app, dataset):
    project = _finished(app.client, dataset)
    dead = _job_row(app, project["id"], "running", 3600, 900)
    fresh = _job_row(app, project["id"], "queued", 1, None)
    with client_for(app) as client:  # the app starts again on the same database
        assert client.get(f"/api/jobs/{dead}").json()["status"] == "failed"
        assert client.get(f"/api/jobs/{fresh}").json()["status"] == "queued"


def test_images_without_annotations_and_a_zero_interval_start_nothing(app, dataset, started, tmp_path):
    client = app.client
    folder = Path(dataset).parent / "images"
    project = client.post("/api/projects", json={"name": "empty", "folder": str(folder)}).json()["project"]
    for im in client.get(f"/api/projects/{project['id']}/images").json():
        assert (
            client.patch(f"/api/images/{im['id']}", json={"status": "done", "empty": True}).json()["job"]
            is None
        )
    labelled, images = _project(client, dataset, "off")
    r = client.patch(f"/api/projects/{labelled['id']}", json={"auto_train_every": 0})
    assert r.status_code == 200 and r.json()["auto_train_every"] == 0
    assert client.post(f"/api/projects/{labelled['id']}/finish").json() == {"finished": 4, "job": None}
    assert started == []


@pytest.mark.parametrize(
    "body, message",
    [
        ({"auto_train_every": -1}, "auto_train_every must be an integer from 0 to 1000, got -1"),
        ({"auto_train_every": 1001}, "auto_train_every must be an integer from 0 to 1000, got 1001"),
        ({"auto_train_every": 2.5}, "auto_train_every must be an integer from 0 to 1000, got 2.5"),
        ({"auto_train_every": "3"}, "auto_train_every must be an integer from 0 to 1000, got '3'"),
        ({"auto_train_every": True}, "auto_train_every must be an integer from 0 to 1000, got True"),
        ({"auto_train_every": None}, "auto_train_every must be an integer from 0 to 1000, got None"),
        (
            {"train_every": 3},
            "unknown project setting 'train_every': expected one of auto_train_every, "
            "queue_train_every, pinned_detector, ask_empty",
        ),
        ({"queue_train_every": -2}, "queue_train_every must be an integer from 0 to 1000, got -2"),
    ],
)
def test_a_bad_auto_train_setting_is_a_400_naming_it_and_changes_nothing(app, dataset, body, message):
    client = app.client
    project, _ = _project(client, dataset)
    r = client.patch(f"/api/projects/{project['id']}", json=body)
    assert r.status_code == 400 and r.json()["detail"] == message
    assert client.get(f"/api/projects/{project['id']}").json()["auto_train_every"] == 2


def test_finish_marks_every_image_with_the_users_annotations_and_trains_once(app, dataset, started):
    client = app.client
    project, images = _project(client, dataset)
    empty, reviewed = images[0], images[1]
    opened = client.get(f"/api/images/{empty['id']}").json()
    ids = [a["id"] for a in opened["annotations"]]
    batch = {"delete": ids, "revision": opened["revision"]}
    assert client.post(f"/api/images/{empty['id']}/annotations/batch", json=batch).status_code == 200
    for status in ("done", "reviewed"):  # an admin finishes, then reviews
        client.patch(f"/api/images/{reviewed['id']}", json={"status": status})
    assert started == []

    r = client.post(f"/api/projects/{project['id']}/finish", json={"status": "done"})
    assert r.status_code == 200
    out = r.json()
    assert out["finished"] == 2 and out["job"]["kind"] == "trainer" and out["job"]["trigger"] == "auto"
    assert len(started) == 2, "the trainer, and a job for the masks"
    statuses = [im["status"] for im in client.get(f"/api/projects/{project['id']}/images").json()]
    assert statuses == ["in_progress", "reviewed", "done", "done"]
    assert client.post(f"/api/projects/{project['id']}/finish").json() == {"finished": 0, "job": None}
    assert len(started) == 2, "both are queued: the rule starts no second"
    r = client.post(f"/api/projects/{project['id']}/finish", json={"status": "new"})
    assert r.status_code == 400 and "status must be one of ('done', 'reviewed')" in r.json()["detail"]


def test_only_an_annotators_finishing_starts_training(app, dataset, started):
    client = app.client
    project, images = _boxes_project(client, dataset)
    client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 1})
    reviewer = TestClient(app, headers={"Authorization": f"Bearer {make_user(app, 'rev', 'reviewer')}"})
    annotator = TestClient(app, headers={"Authorization": f"Bearer {make_user(app, 'ann', 'annotator')}"})
    url = f"/api/images/{images[0]['id']}"
    refused = reviewer.patch(url, json={"status": "done"})
    assert refused.status_code == 403 and "needs admin or annotator" in refused.json()["detail"]
    assert started == [] and client.get(url).json()["status"] == "in_progress"
    finish = f"/api/projects/{project['id']}/finish"
    refused = annotator.post(finish, json={"status": "reviewed"})
    assert refused.status_code == 403 and "reviewed needs admin or reviewer" in refused.json()["detail"]
    assert started == [] and client.get(url).json()["status"] == "in_progress"
    assert annotator.patch(url, json={"status": "done"}).json()["job"]["trigger"] == "auto"
    assert len(started) == 1


def test_finish_as_reviewed_and_reference_annotations_do_not_count(app, dataset, started):
    client = app.client
    folder = Path(dataset).parent / "images"
    project = client.post("/api/projects", json={"name": "ref", "folder": str(folder)}).json()["project"]
    client.post(f"/api/projects/{project['id']}/import", json={"dataset": str(dataset), "reference": True})
    assert client.post(f"/api/projects/{project['id']}/finish").json() == {"finished": 0, "job": None}
    image = client.get(f"/api/projects/{project['id']}/images").json()[0]
    cls = client.get(f"/api/projects/{project['id']}").json()["classes"][0]["id"]
    batch = {
        "create": [{"class_id": cls, "geometry": {"box": [5, 5, 20, 20]}}],
        "revision": image["revision"],
    }
    assert client.post(f"/api/images/{image['id']}/annotations/batch", json=batch).status_code == 200
    out = client.post(f"/api/projects/{project['id']}/finish", json={"status": "reviewed"}).json()
    assert out == {"finished": 1, "job": None}, "one finished image: under the default two"
    assert client.get(f"/api/images/{image['id']}").json()["status"] == "reviewed"


def test_train_says_why_it_cannot_start_and_writes_no_job(app, dataset, started):
    client = app.client
    project, images = _boxes_project(client, dataset)
    url = f"/api/projects/{project['id']}/train"
    r = client.post(url, json={"minutes": 0.5})
    assert r.status_code == 400
    assert (
        r.json()["detail"] == "no finished image with annotations yet: mark annotated images done, then train"
    )
    assert client.get(f"/api/projects/{project['id']}/jobs").json() == [] and started == []
    assert client.post(url, json={"minutes": -1}).status_code == 422

    client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})
    client.patch(f"/api/images/{images[0]['id']}", json={"status": "done"})
    r = client.post(url, json={"minutes": 0.5})
    assert r.status_code == 202 and r.json()["trigger"] == "user"
    job = r.json()
    assert job["kind"] == "trainer" and started[0][0] is run.run_trainer, "boxes: the trainer learns them"
    assert started[0][1][1] == job["id"]
    r = client.post(url, json={"minutes": 0.5})
    assert (
        r.status_code == 409
        and f"is queued (job {job['id']}): each of its rounds takes in" in r.json()["detail"]
    )
    assert len(client.get(f"/api/projects/{project['id']}/jobs").json()) == 1 and len(started) == 1


@pytest.mark.parametrize(
    "progress, elapsed, eta",
    [(0.0, 10.0, None), (0.02, 10.0, None), (0.25, 10.0, 30.0), (0.5, 8.0, 8.0), (1.0, 60.0, 0.0)],
)
def test_time_left_is_elapsed_times_the_rest_over_the_progress(progress, elapsed, eta):
    assert views.eta_seconds(progress, elapsed) == (None if eta is None else pytest.approx(eta))


def test_a_job_view_times_its_run_and_shows_the_first_line_of_a_failure():
    t0 = now()
    job = Job(id=1, project_id=1, kind="train", trigger="auto", status="queued", progress=0.0, message="")
    job.created_at = job.updated_at = t0
    out = views.job(job, at=t0 + timedelta(seconds=5))
    assert out["elapsed_seconds"] is None and out["eta_seconds"] is None, "not running yet"
    job.status, job.progress, job.started_at = "running", 0.4, t0 + timedelta(seconds=5)
    out = views.job(job, at=t0 + timedelta(seconds=25))
    assert out["elapsed_seconds"] == 20 and out["eta_seconds"] == pytest.approx(30)
    job.status, job.updated_at = "failed", t0 + timedelta(seconds=30)
    job.message = "ValueError: bad boxes\nTraceback (most recent call last):\n  File ..."
    out = views.job(job, at=t0 + timedelta(seconds=99))
    assert (
        out["message"] == "ValueError: bad boxes"
        and out["elapsed_seconds"] == 25
        and out["eta_seconds"] is None
    )


def test_update_job_stamps_when_it_began_running(app, dataset):
    client = app.client
    project, _ = _project(client, dataset)
    with app.state.sessions() as session:
        job = Job(project_id=project["id"], kind="train", created_by=1)
        session.add(job)
        session.commit()
    url = app.state.settings.db_url
    update_job(url, job.id, status="running", progress=0.1)
    first = client.get(f"/api/jobs/{job.id}").json()
    update_job(url, job.id, progress=0.5)
    later = client.get(f"/api/jobs/{job.id}").json()
    assert first["elapsed_seconds"] is not None and later["eta_seconds"] is not None
    with app.state.sessions() as session:
        row = session.get(Job, job.id)
        assert row.started_at is not None and row.started_at < row.updated_at


def test_train_project_stores_each_models_method_and_metrics_and_trains_no_detector(
    app, dataset, monkeypatch, tmp_path
):
    client = app.client
    make_dataset("cells", 2, seed=4, width=160, height=160, out_dir=tmp_path / "cells")
    project, images = _project(client, tmp_path / "cells" / "annotations.json")
    client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})
    client.post(f"/api/projects/{project['id']}/finish")
    metrics = {"sam_decoder": {"serves": False, "why": "a test"}}
    monkeypatch.setattr(training, "train_masks", lambda run, **_: Trained(run.out, "model", metrics))
    with app.state.sessions() as session:
        job = Job(project_id=project["id"], kind="train", created_by=1)
        session.add(job)
        session.commit()
    training.train_project(app.state.settings.db_url, job.id, tmp_path / "models", minutes=0.1)
    detail = client.get(f"/api/projects/{project['id']}").json()
    assert [(m["task"], m["method"], m["images"]) for m in detail["models"]] == [("segment", "model", 2)]
    assert detail["models"][0]["metrics"] == metrics and detail["detector"] is None, "the trainer's alone"
    assert client.get(f"/api/jobs/{job.id}").json()["status"] == "done"

    boxes, _ = _boxes_project(client, dataset)
    client.patch(f"/api/projects/{boxes['id']}", json={"auto_train_every": 0})
    client.post(f"/api/projects/{boxes['id']}/finish")
    with app.state.sessions() as session:
        job = Job(project_id=boxes["id"], kind="train", created_by=1)
        session.add(job)
        session.commit()
    with pytest.raises(ValueError, match="fewer than 8 masks and fewer than 10 points"):
        training.train_project(app.state.settings.db_url, job.id, tmp_path / "models", minutes=0.1)


def test_the_0003_migration_keeps_the_rows_of_an_older_database(tmp_path):
    from alembic import command
    from alembic.config import Config

    url = sqlite_url(tmp_path / "old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(training.__file__).parents[1] / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0002")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'local', '2026-01-01')"))
        conn.execute(
            text(
                "INSERT INTO projects (id, name, oriented, created_at, created_by) "
                "VALUES (7, 'old', 0, '2026-01-01', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, project_id, kind, status, progress, message, created_at, updated_at, "
                "created_by) VALUES (3, 7, 'train', 'done', 1.0, 'trained detect v1', '2026-01-01', "
                "'2026-01-01', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (id, project_id, task, version, path, images, created_at, "
                "created_by) VALUES (5, 7, 'detect', 1, '/m/v1', 4, '2026-01-01', 1)"
            )
        )
    engine.dispose()

    app = create_app(url, tmp_path / "data", start_worker=False, data_roots=[tmp_path])
    with client_for(app) as client:
        project = client.get("/api/projects/7").json()
        assert project["name"] == "old" and project["auto_train_every"] == 2
        assert project["detector"] == {
            "task": "detect",
            "version": 1,
            "images": 4,
            "method": None,
            "metrics": None,
            "created_at": "2026-01-01T00:00:00",
            "file": "v1",  # outside the app's models folder: its name alone
            "collected": False,
            "unreadable": None,  # not tried yet
        }
        job = client.get("/api/jobs/3").json()
        assert (
            job["trigger"] == "user"
            and job["message"] == "trained detect v1"
            and job["elapsed_seconds"] is None
        )


def test_rejected_boxes_neither_size_the_training_free_start_nor_count_as_training_images(app, dataset):
    client = app.client
    project = client.post(
        "/api/projects", json={"name": "rejected", "folder": str(Path(dataset).parent / "images")}
    ).json()["project"]
    cls = project["classes"][0]["id"]
    first, second = client.get(f"/api/projects/{project['id']}/images").json()[:2]
    url = f"/api/images/{first['id']}/annotations/batch"
    body = {"revision": 0, "create": [{"class_id": cls, "geometry": {"box": [0, 0, 90, 90]}}]}
    made = client.post(url, json=body).json()
    r = client.patch(
        f"/api/annotations/{made['created'][0]['id']}",
        json={"review": "rejected", "revision": made["revision"]},
    )
    assert r.status_code == 200, r.text
    client.patch(f"/api/images/{first['id']}", json={"status": "done"})
    r = client.post(f"/api/projects/{project['id']}/train", json={"minutes": 0.1})
    assert r.status_code == 400 and "no finished image" in r.json()["detail"], "a rejected box is no label"
    with app.state.sessions() as session:
        assert annotations.class_sizes(session, project["id"]) == {}
    body = {"revision": 0, "create": [{"class_id": cls, "geometry": {"box": [10, 10, 30, 50]}}]}
    client.post(f"/api/images/{second['id']}/annotations/batch", json=body)
    with app.state.sessions() as session:
        assert annotations.class_sizes(session, project["id"]) == {cls: pytest.approx((20 * 40) ** 0.5)}


def test_the_finished_images_boxes_that_sams_click_boxes_learn_from(app, dataset):
    """Newest finished first, the user's boxes only (no rejected one), no unfinished image."""
    client = app.client
    project = client.post(
        "/api/projects", json={"name": "edges", "folder": str(Path(dataset).parent / "images")}
    ).json()["project"]
    cls = project["classes"][0]["id"]
    first, second, third = client.get(f"/api/projects/{project['id']}/images").json()[:3]
    for image, box in ((first, [1, 2, 11, 12]), (second, [5, 5, 25, 45]), (third, [0, 0, 9, 9])):
        body = {"revision": 0, "create": [{"class_id": cls, "geometry": {"box": box}}]}
        assert client.post(f"/api/images/{image['id']}/annotations/batch", json=body).status_code == 200
    made = client.post(
        f"/api/images/{first['id']}/annotations/batch",
        json={"revision": 1, "create": [{"class_id": cls, "geometry": {"box": [50, 50, 60, 60]}}]},
    ).json()
    client.patch(f"/api/annotations/{made['created'][0]['id']}", json={"review": "rejected", "revision": 2})
    for image in (second, first):  # first finished last: newest
        assert client.patch(f"/api/images/{image['id']}", json={"status": "done"}).status_code == 200
    with app.state.sessions() as session:
        found = [
            (image.id, [(exemplar, box) for _, exemplar, box in rows])
            for image, rows in annotations.finished_boxes(session, project["id"])
        ]
    assert found == [
        (first["id"], [(True, [cls, 1, 2, 11, 12])]),
        (second["id"], [(True, [cls, 5, 5, 25, 45])]),
    ]


def test_sams_tight_boxes_learn_on_the_finished_images_the_serving_version_never_trained_on(app, dataset):
    """Issue 68: no image is held out from training, so the version names the images it
    trained on, and the others among the newest finished ones are what SAM's tightening is
    scored on; a version from before names none, and the one-in-four rule holds for it."""
    from fewclick.active.continual import held_out
    from fewclick.server import assisting
    from fewclick.server.db import ModelVersion, Project

    client = app.client
    project, images = _boxes_project(client, dataset, name="tight")
    for image in images:
        assert client.patch(f"/api/images/{image['id']}", json={"status": "done"}).status_code == 200
    ids = [image["id"] for image in images]
    with app.state.sessions() as session:
        version = ModelVersion(
            project_id=project["id"], task="detect", version=1, path="none", images=2, method="imagenet",
            created_by=1, metrics={"trained_ids": ids[:2]},
        )  # fmt: skip
        session.add(version)
        session.commit()
        row = session.get(Project, project["id"])
        assert sorted(i.id for i in assisting._held_out_images(session, row)) == sorted(ids[2:])
        version.metrics = {}
        session.commit()
        before = sorted(i.id for i in assisting._held_out_images(session, row))
        assert before == sorted(i for i in ids if held_out(i))


def test_what_serves_is_read_once_a_request_and_anew_after_a_write_or_a_pin(app, dataset, monkeypatch):
    """Issue 68, item 4: the pin and the versions are read once per session, whichever of
    the request's steps asks; a version written, or a pin set, is seen at once."""
    from fewclick.server import serving, store
    from fewclick.server.db import ModelVersion, Project
    from fewclick.server.storage import versions

    project, _ = _boxes_project(app.client, dataset, name="decided")
    reads = []
    real = versions.detectors
    monkeypatch.setattr(versions, "detectors", lambda *a: reads.append(a) or real(*a))

    def add(session, number):
        session.add(
            ModelVersion(
                project_id=project["id"], task="detect", version=number, path=f"v{number}.pt", images=2,
                method="imagenet", created_by=1,
            )
        )  # fmt: skip
        session.flush()

    with app.state.sessions() as session:
        assert serving.serving_detector(session, project["id"]) is None
        add(session, 1)
        v1 = serving.serving_detector(session, project["id"])
        assert v1.version == 1, "a version written in the request is seen at once"
        add(session, 2)
        reads.clear()
        v2 = serving.serving_detector(session, project["id"])
        assert v2.version == 2 and [
            v.version for v in serving.fallback_detectors(session, project["id"], v2)
        ] == [1]
        assert serving.unreadable_detector(session, project["id"]) is None
        assert len(reads) == 1, "three questions, one read"
        store.set_pinned_detector(session.get(Project, project["id"]), 1)
        assert serving.serving_detector(session, project["id"]).version == 1, "a pin is seen at once"
