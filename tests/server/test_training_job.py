import os
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from clients import client_for

from fewclick.data.synthetic import make_dataset
from fewclick.server import processes
from fewclick.server.app import create_app
from fewclick.server.db import Job, Project, local_user, now, sqlite_url
from fewclick.server.jobs import control
from fewclick.server.jobs.masks import MIN_HELD_OUT
from fewclick.server.jobs.training import train_project


@pytest.fixture()
def setup(tmp_path):
    make_dataset("cells", 2, seed=4, width=160, height=160, out_dir=tmp_path / "cells")
    url = sqlite_url(tmp_path / "app.db")
    app = create_app(url, tmp_path / "data", start_worker=False, data_roots=[tmp_path])
    return client_for(app), app, url, tmp_path


def _train_job(app, project) -> int:
    """A queued training job of ``project`` (the tests run it in-process); its id."""
    with app.state.sessions() as session:
        job = Job(project_id=project["id"], kind="train", created_by=1)
        session.add(job)
        session.commit()
        return job.id


def test_a_job_trains_the_mask_and_point_models_the_finished_images_allow_and_they_serve(setup):
    client, app, url, home = setup
    with client:
        project = client.post(
            "/api/projects", json={"name": "cells", "dataset": str(home / "cells" / "annotations.json")}
        )
        project = project.json()["project"]
        images = client.get(f"/api/projects/{project['id']}/images").json()
        cls = project["classes"][0]["id"]
        client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})  # this test trains
        for im in images:  # points on top of the imported masks and boxes
            r = client.post(
                f"/api/images/{im['id']}/annotations/batch",
                json={
                    "revision": im["revision"],
                    "create": [
                        {
                            "class_id": cls,
                            "kind": "point",
                            "geometry": {"point": [20.0 + 10 * k, 30.0], "original": [22.0 + 10 * k, 33.0]},
                        }
                        for k in range(6)
                    ],
                },
            )
            assert r.status_code == 200, r.text
            client.patch(f"/api/images/{im['id']}", json={"status": "done"})
        job_id = _train_job(app, project)
        embeddings = str(home / "data" / "embeddings")
        train_project(url, job_id, home / "data" / "models", minutes=0.1, steps=2, embeddings=embeddings)
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done" and job["progress"] == 1.0, job
        assert "segment v1" in job["message"] and "points v1" in job["message"]
        assert "detect" not in job["message"], "the background trainer alone trains detectors"
        assert "compared mask backends on 22 masks" in job["message"], "after the mask model trained"
        backends = client.get(f"/api/projects/{project['id']}/backends").json()
        assert "model" in backends["comparison"]["table"] and backends["chosen_by"] == "comparison"
        client.put(f"/api/projects/{project['id']}/backend", json={"backend": "model"})
        detail = client.get(f"/api/projects/{project['id']}").json()
        assert sorted(m["task"] for m in detail["models"]) == ["points", "segment"]
        # the trained models serve predictions now
        image = images[0]
        out = client.post(f"/api/images/{image['id']}/segment", json={"box": [20, 20, 60, 60]}).json()
        assert out["method"] == "model" and out["mask"]["size"] == [160, 160]
        assert 0 <= out["quality"] <= 1, "the quality ranker trained with the mask model estimates the IoU"
        body = {"box": [20, 20, 60, 60], "clicks": [[40, 40, True]]}
        out = client.post(f"/api/images/{image['id']}/segment", json=body).json()
        assert 0 <= out["quality"] <= 1
        out = client.post(f"/api/images/{image['id']}/snap", json={"x": 50, "y": 50, "class_id": cls}).json()
        assert out["method"] == "cpr" and np.isfinite(out["point"]).all()


def test_a_click_with_a_class_added_after_training_gets_the_training_free_start_and_says_train_again(
    tmp_path, monkeypatch
):
    from fewclick.io import read_dataset
    from fewclick.server.db import ModelVersion
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path / "none"))  # no pretrained files: no SAM
    make_dataset("aerial", 1, seed=4, width=96, height=96, out_dir=tmp_path / "aerial")
    data = read_dataset(tmp_path / "aerial" / "annotations.json")
    model = train_detector(
        data, tmp_path / "model", detector_config_for(data, "c3det"), TrainConfig(steps=1, crop=64), log=str
    )
    app = create_app(
        sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=[tmp_path]
    )
    with client_for(app) as client:
        made = client.post(
            "/api/projects", json={"name": "p", "dataset": str(tmp_path / "aerial" / "annotations.json")}
        )
        project = made.json()["project"]
        with app.state.sessions() as session:
            session.add(
                ModelVersion(
                    project_id=project["id"], task="detect", version=1, path=str(model), images=1,
                    method="scratch", created_by=1,
                )
            )  # fmt: skip
            session.commit()
        image = client.get(f"/api/projects/{project['id']}/images").json()[0]
        known = project["classes"][0]["id"]
        ok = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[40, 40, known]]})
        assert ok.status_code == 200 and ok.json()["model_version"] == 1, ok.text
        # a version from before class ids were recorded knows its classes by name alone
        assert client.patch(f"/api/classes/{known}", json={"name": "boat"}).status_code == 200
        out = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[40, 40, known]]}).json()
        assert out["model_version"] is None and "'boat'" in out["fallback"], out
        plane = client.post(f"/api/projects/{project['id']}/classes", json={"name": "plane"}).json()["id"]
        for cls in (plane, known):
            r = client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[40, 40, cls]]})
            out = r.json()
            assert r.status_code == 200 and out["method"] == "template", r.text  # no SAM: templates
            assert out["model_version"] is None and out["requested_version"] == 1
            assert "'plane'" in out["fallback"] and "train again" in out["fallback"]
            assert out["fallback"].endswith("the training-free start answered")


def _job_row(app, status: str, server_run: str | None, silent_s: float = 0.0) -> int:
    """A job of a new project, ``status``, started by ``server_run`` (None: not recorded),
    its last heartbeat ``silent_s`` seconds ago; its id."""
    with app.state.sessions() as session:
        user = local_user(session)
        project = Project(name=f"p{status}{server_run}{silent_s}", created_by=user.id)
        session.add(project)
        session.flush()
        beat = now() - timedelta(seconds=silent_s)
        job = Job(project_id=project.id, kind="train", status=status, created_by=user.id, heartbeat_at=beat)
        session.add(job)
        session.flush()
        job.server_run = server_run  # after the insert: an insert of None takes the default
        session.commit()
        return job.id


# runs named by what they are: the pids and this run's nonce differ between test processes
_RUNS = {
    "this run": lambda: processes.RUN,  # the demo's job starts before the app
    "a gone server here": lambda: f"{processes.HOST}:{2**22 + 1}:0a1b2c3d",  # beyond any pid_max
    "a live server here": lambda: f"{processes.HOST}:{os.getppid()}:0a1b2c3d",
}


@pytest.mark.parametrize(
    ("status", "server_run", "after"),
    [
        ("running", "an earlier run", "failed"),
        ("queued", "an earlier run", "failed"),
        ("running", None, "failed"),  # started before runs were recorded
        ("done", "an earlier run", "done"),
        ("failed", "an earlier run", "failed"),
        ("running", "this run", "running"),
        ("running", "a gone server here", "failed"),
        ("running", "a live server here", "running"),
        ("running", "another-host:1234:0a1b2c3d", "running"),  # another host's: left to heartbeats
    ],
)
def test_at_start_up_the_jobs_an_earlier_server_left_unfinished_fail_at_once(
    setup, status, server_run, after
):
    server_run = _RUNS[server_run]() if server_run in _RUNS else server_run
    client, app, _, _ = setup
    job_id = _job_row(app, status, server_run)
    with client:  # start-up
        job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == after
    if after != status:
        assert job["message"] == control.RESTARTED


@pytest.mark.parametrize("read", ["job", "project jobs"])
@pytest.mark.parametrize(("silent_s", "after"), [(0.0, "running"), (control.STALE_SECONDS + 1, "failed")])
def test_reading_jobs_fails_one_whose_process_went_silent(setup, read, silent_s, after):
    client, app, _, _ = setup
    with client:
        job_id = _job_row(app, "running", processes.RUN, silent_s)
        with app.state.sessions() as session:
            project_id = session.get(Job, job_id).project_id
        if read == "job":
            job = client.get(f"/api/jobs/{job_id}").json()
        else:
            [job] = client.get(f"/api/projects/{project_id}/jobs").json()
    assert job["status"] == after


def test_a_stopping_app_marks_the_jobs_of_its_run_failed(setup):
    client, app, _, _ = setup
    with client:
        ours = _job_row(app, "running", processes.RUN)
        other = _job_row(app, "running", "another run")  # a second server on the database
    with app.state.sessions() as session:
        assert session.get(Job, ours).status == "failed"
        assert session.get(Job, ours).message == control.STOPPED
        assert session.get(Job, other).status == "running"


def test_the_mask_job_tunes_sams_decoder_and_serves_it_only_when_it_wins_held_out(tmp_path, sam_files):
    """Four finished images of masks: SAM's decoder tunes on three and is scored against the
    pretrained one on the fourth, too few held-out masks for it to serve, and the page is
    told why; a tuned decoder that cannot be read leaves the pretrained one serving, with a
    note."""
    from fewclick.predict.backends import TUNED_DECODER

    make_dataset("cells", 4, seed=5, width=160, height=160, out_dir=tmp_path / "cells")
    url = sqlite_url(tmp_path / "app.db")
    app = create_app(url, tmp_path / "data", start_worker=False, data_roots=[tmp_path])
    with client_for(app) as client:
        body = {"name": "cells", "dataset": str(tmp_path / "cells" / "annotations.json")}
        project = client.post("/api/projects", json=body).json()["project"]
        client.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0})
        images = client.get(f"/api/projects/{project['id']}/images").json()
        before = client.get(f"/api/projects/{project['id']}/backends").json()
        assert "once 10 masks are finished" in before["sam_tuned"] and "sam_tuned" not in before["available"]
        for im in images:
            client.patch(f"/api/images/{im['id']}", json={"status": "done"})
        job_id = _train_job(app, project)
        embeddings = str(tmp_path / "data" / "embeddings")
        train_project(url, job_id, tmp_path / "data" / "models", minutes=0.1, steps=2, embeddings=embeddings)
        segment = next(
            m for m in client.get(f"/api/projects/{project['id']}").json()["models"] if m["task"] == "segment"
        )
        tuning = segment["metrics"]["sam_decoder"]
        assert tuning["steps"] == 2 and tuning["held_out_masks"] > 0 and tuning["tuning_masks"] > 0
        assert set(tuning["tuned"]) == set(tuning["pretrained"]) == {"box_mIoU", "clicks_mIoU", "click_mIoU"}
        assert isinstance(tuning["offsets"], dict)
        assert tuning["held_out_masks"] < MIN_HELD_OUT and not tuning["serves"]
        tuned_file = tmp_path / "data" / "models" / str(project["id"]) / "segment" / "v1" / TUNED_DECODER
        assert not tuned_file.is_file()
        backends = client.get(f"/api/projects/{project['id']}/backends").json()
        assert "sam_tuned" not in backends["available"]
        assert (
            f"scored on {tuning['held_out_masks']} held-out masks, too few to trust" in backends["sam_tuned"]
        )
        # a tuned decoder that cannot be read: the pretrained one serves, and the answer says so
        tuned_file.write_bytes(b"not a model")
        assert (
            client.put(f"/api/projects/{project['id']}/backend", json={"backend": "sam_tuned"}).status_code
            == 200
        )
        image = images[0]
        _wait_prepared(client, image["id"])
        out = client.post(f"/api/images/{image['id']}/segment", json={"box": [20, 20, 60, 60]}).json()
        assert out["method"] == "sam" and "tuned SAM decoder cannot be read" in out["note"]


def test_the_page_is_told_what_a_tuned_decoder_that_lost_scored(tmp_path):
    from fewclick.server.serving import tuned_unavailable

    scores = {"box_mIoU": 0.7, "clicks_mIoU": 0.8, "click_mIoU": 0.5}
    tuning = {
        "serves": False,
        "held_out_masks": 28,
        "pretrained": scores,
        "tuned": {**scores, "box_mIoU": 0.69},
    }
    model = SimpleNamespace(path=str(tmp_path), metrics={"sam_decoder": tuning})
    why = tuned_unavailable(model)
    assert "mIoU 0.690 from the box, 0.800 after 2 clicks, 0.500 from one click on 28 held-out masks" in why
    assert why.endswith("for the pretrained one, which serves")


def _wait_prepared(client, image_id: int) -> None:
    import time

    for _ in range(600):
        if client.post(f"/api/images/{image_id}/prepare").json()["ready"]:
            return
        time.sleep(0.1)
    raise AssertionError("the image was not encoded within 60 s")
