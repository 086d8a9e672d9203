# ruff: noqa: F811 (the fixtures imported from test_trainer are arguments here)
"""A served model can always be loaded (issue 51): nothing deletes a checkpoint a version, a
pin or the trainer names; a class added keeps the served files; a torn or missing file gives
way to the version before it or the training-free start, and the page says so; a full disk
drops the trainer's round; a trainer killed from outside is failed and started again; old
versions are collected, the newest five and the serving and pinned ones kept.

Training runs only a few steps here, and nothing asserts what it learned."""

import json
from pathlib import Path

import pytest
from test_trainer import SMALL, _act, _project, app, dataset, promoting, started  # noqa: F401 (fixtures)

from fewclick.server import model_files, processes
from fewclick.server.db import Job, ModelVersion
from fewclick.server.jobs import control, run, trainer

# every round is scored on images it never saw and saves work there (test_trainer.promoting):
# promoted, whatever a few steps learned
pytestmark = pytest.mark.usefixtures("promoting")


def _train(app, project, rounds: int = 1) -> None:
    job_id = _act(app, project, "start").json()["id"]
    trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=rounds, config=SMALL)


def _versions(app, project) -> list[ModelVersion]:
    with app.state.sessions() as session:
        rows = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect")
        return sorted(rows, key=lambda v: v.version)


def _add_version(app, project, path: str, version: int, **metrics) -> None:
    with app.state.sessions() as session:
        v1 = session.query(ModelVersion).filter_by(project_id=project["id"], task="detect").first()
        session.add(
            ModelVersion(
                project_id=project["id"], task="detect", version=version, path=path, images=v1.images,
                method=v1.method, metrics=metrics or None, created_by=v1.created_by,
            )
        )  # fmt: skip
        session.commit()


def _copy(path: str, name: str) -> str:
    """A copy of the checkpoint at ``path`` in a folder of its own beside it (a later round)."""
    out = Path(path).parent.parent / name / "last.pt"
    out.parent.mkdir(parents=True)
    out.write_bytes(Path(path).read_bytes())
    return str(out)


def _wire(app, project, version) -> str:
    """A version's file as the API names it."""
    return Path(version.path).relative_to(app.models / str(project["id"])).as_posix()


def _click(app, project):
    image = app.client.get(f"/api/projects/{project['id']}/images").json()[0]
    cls = project["classes"][0]["id"]
    r = app.client.post(f"/api/images/{image['id']}/detect", json={"clicks": [[40, 40, cls]]})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_class_added_keeps_the_served_files_and_clicks_get_the_training_free_start(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    assert _click(app, project)["model_version"] == 1
    added = app.client.post(f"/api/projects/{project['id']}/classes", json={"name": "plane"})
    assert added.status_code == 201, added.text
    _train(app, project)  # the trainer's rounds start afresh for the new classes
    assert Path(v1.path).is_file(), "the version that served until now keeps its file"
    out = _click(app, project)
    assert out["model_version"] == 2 and out["fallback"] is None, "the new classes' version answers"
    assert app.client.patch(f"/api/projects/{project['id']}", json={"pinned_detector": 1}).status_code == 200
    out = _click(app, project)
    assert (out["requested_version"], out["model_version"]) == (1, 2), "v1 knows other classes: v2 answers"
    assert "'plane'" in out["fallback"] and out["fallback"].endswith("detector v2 answered")
    assert out["model_file"].startswith("trainer/round1-") and out["model_file"] != _wire(app, project, v1)


def test_a_class_renamed_is_the_same_class_its_version_serves_on_and_the_rounds_go_on(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    cls = project["classes"][0]["id"]
    assert app.client.patch(f"/api/classes/{cls}", json={"name": "vessel"}).status_code == 200
    out = _click(app, project)
    assert out["model_version"] == 1 and out["fallback"] is None, "renamed, v1 still knows the class"
    _train(app, project)  # started again after the rename: from its rounds, not afresh
    state = json.loads((trainer.folder(app.models, project["id"]) / "state.json").read_text())
    assert len(state["rounds"]) == 2, "the rename kept the trainer's rounds"


def test_a_torn_serving_file_gives_way_to_the_version_before_it_and_the_page_says_so(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    torn = _copy(v1.path, "round9-torn")
    _add_version(app, project, torn, 2)
    Path(torn).write_bytes(Path(torn).read_bytes()[:1000])  # half written, or a disk error
    out = _click(app, project)
    assert (out["requested_version"], out["model_version"]) == (2, 1)
    assert out["model_file"] == _wire(app, project, v1)
    assert out["fallback"].startswith("detector v2 could not be read") and out["fallback"].endswith(
        "detector v1 answered"
    )
    detail = app.client.get(f"/api/projects/{project['id']}").json()
    assert detail["detector"]["version"] == 1, "the torn version is passed over from now on"
    (v2,) = [m for m in detail["models"] if m["version"] == 2]
    assert "not a readable fewclick model" in v2["unreadable"]
    again = _click(app, project)
    assert (again["requested_version"], again["model_version"], again["fallback"]) == (1, 1, None)
    refused = app.client.patch(f"/api/projects/{project['id']}", json={"pinned_detector": 2})
    assert refused.status_code == 400 and "could not be read" in refused.json()["detail"]
    Path(torn).write_bytes(Path(v1.path).read_bytes())  # mended: the file changed, so it is tried again
    assert app.client.get(f"/api/projects/{project['id']}").json()["detector"]["version"] == 2


def test_a_missing_file_with_nothing_before_it_gets_the_training_free_start(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    gone = _copy(v1.path, "round8-gone")
    with app.state.sessions() as session:
        session.get(ModelVersion, v1.id).path = gone  # v1 alone, and then its file goes
        session.commit()
    Path(gone).unlink()
    out = _click(app, project)
    assert (out["requested_version"], out["model_version"]) == (1, None)
    assert "its file is gone" in out["fallback"] and out["method"] == "template"  # no SAM files here
    again = _click(app, project)  # v1 is marked unreadable now: passed over before the call
    assert (again["requested_version"], again["model_version"]) == (None, None)
    said = "detector v1 could not be read (its file is gone): the training-free start answered"
    assert again["fallback"] == said


def test_a_full_disk_drops_the_round_and_touches_nothing_served(app, dataset, started, monkeypatch, tmp_path):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    served = Path(v1.path).read_bytes()
    (tmp_path / "faults").mkdir()
    (tmp_path / "faults" / "enospc").touch()
    monkeypatch.setenv("FEWCLICK_FAULTS", str(tmp_path / "faults"))
    monkeypatch.setattr(trainer, "RETRY_SECONDS", 0.0)
    messages = []
    dropped = trainer._dropped

    def disk_freed(*args):  # the person frees the disk after the first drop
        messages.append(dropped(*args))
        (tmp_path / "faults" / "enospc").unlink()
        return messages[-1]

    monkeypatch.setattr(trainer, "_dropped", disk_freed)
    _train(app, project)
    assert (
        len(messages) == 1 and "round 2 dropped" in messages[0] and "No space left on device" in messages[0]
    )
    assert "what serves is untouched" in messages[0]
    assert Path(v1.path).read_bytes() == served
    state = json.loads((trainer.folder(app.models, project["id"]) / "state.json").read_text())
    assert [r["number"] for r in state["rounds"]] == [1, 2], "the round after the disk was freed counts"
    rounds = sorted(p.name for p in trainer.folder(app.models, project["id"]).glob("round*"))
    assert len(rounds) == 2, f"the dropped round left no folder: {rounds}"


class _Died:
    """A job process as :func:`processes.reap` finds one killed by SIGKILL."""

    exitcode = -9

    def is_alive(self) -> bool:
        return False


def test_a_trainer_killed_from_outside_is_failed_and_started_again(app, dataset, started, monkeypatch):
    project = _project(app, dataset)
    job_id = _act(app, project, "start").json()["id"]
    with app.state.sessions() as session:
        session.get(Job, job_id).status = "running"
        session.commit()
    started.clear()
    monkeypatch.setattr(processes, "_jobs", [(_Died(), (app.db_url, job_id, "models", "embeddings"))])
    with app.state.sessions() as session:
        failed = control.fail_dead(session, app.state.settings)
        assert [j.id for j in failed] == [job_id] and "signal 9" in failed[0].message
        live = session.query(Job).filter_by(project_id=project["id"], kind="trainer", status="queued").one()
    assert started == [(run.run_trainer, (app.db_url, live.id, *started[0][1][2:]))]
    assert processes._jobs == [], "reaped once"
    with app.state.sessions() as session:
        assert control.fail_dead(session, app.state.settings) == []


def test_old_versions_are_collected_but_the_serving_pinned_and_trainer_named_ones_stay(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    paths = {1: v1.path} | {n: _copy(v1.path, f"v{n}") for n in range(2, 10)}
    for n in range(2, 10):
        _add_version(app, project, paths[n], n)
    assert app.client.patch(f"/api/projects/{project['id']}", json={"pinned_detector": 2}).status_code == 200
    with app.state.sessions() as session:
        gone = model_files.collect(session, project["id"], app.models)
    # kept: v2 pinned (it serves), v1 named by the trainer's state, and the 5 newest others
    assert sorted(v.version for v in gone) == [3, 4]
    assert not Path(paths[3]).parent.exists() and not Path(paths[4]).parent.exists()
    assert all(Path(paths[n]).is_file() for n in paths if n not in (3, 4))
    detail = app.client.get(f"/api/projects/{project['id']}").json()
    assert [m["version"] for m in detail["models"] if m["collected"]] == [3, 4]
    assert 0 < detail["model_files"]["bytes"] <= detail["model_files"]["budget_bytes"]
    refused = app.client.patch(f"/api/projects/{project['id']}", json={"pinned_detector": 3})
    assert refused.status_code == 400 and "files were removed" in refused.json()["detail"]


def test_the_disk_budget_collects_the_oldest_unprotected_versions_first(app, dataset, started, monkeypatch):
    project = _project(app, dataset)
    _train(app, project)
    (v1,) = _versions(app, project)
    for n in range(2, 5):
        _add_version(app, project, _copy(v1.path, f"v{n}"), n)
    size = Path(v1.path).stat().st_size
    monkeypatch.setenv(model_files.BUDGET_ENV, str(3.5 * size / 1024**3))  # room for three and a half
    with app.state.sessions() as session:
        gone = model_files.collect(session, project["id"], app.models)
    assert sorted(v.version for v in gone) == [2], "v4 serves, v1 is the trainer's: v2 goes, then it fits"
    monkeypatch.setenv(model_files.BUDGET_ENV, "0")
    with pytest.raises(ValueError, match="positive finite number of GB"):
        model_files.budget_bytes()


def test_a_torn_state_or_round_of_the_trainer_never_stops_it(app, dataset, started):
    project = _project(app, dataset)
    _train(app, project)
    work = trainer.folder(app.models, project["id"])
    newest = Path(json.loads((work / "state.json").read_text())["rounds"][-1]["path"])
    newest.write_bytes(b"")  # v1's file, the warm start: torn
    _train(app, project)  # from the ImageNet weights; v1 cannot be scored against, so round 2 serves
    state = json.loads((work / "state.json").read_text())
    assert [r["number"] for r in state["rounds"]] == [1, 2] and state["serving_round"] == 2
    assert [v.version for v in _versions(app, project)] == [1, 2]
    (work / "state.json").write_text('{"rounds": [')  # torn: the trainer starts afresh
    _train(app, project)
    assert len(json.loads((work / "state.json").read_text())["rounds"]) == 1
    assert Path(_versions(app, project)[1].path).is_file(), "v2 still serves: its file stays"


def test_a_torn_mask_or_point_model_gives_way_and_says_why(app, dataset, started):
    project = _project(app, dataset)
    pid = project["id"]
    torn = app.models / str(pid) / "segment" / "v1"
    torn.mkdir(parents=True)
    (torn / "m_bc.pt").write_bytes(b"half a model")
    points = app.models / str(pid) / "points" / "v1" / "cpr.pt"
    points.parent.mkdir(parents=True)
    points.write_bytes(b"")
    with app.state.sessions() as session:
        for task, path in (("segment", torn), ("points", points)):
            session.add(
                ModelVersion(project_id=pid, task=task, version=1, path=str(path), images=4, created_by=1)
            )
        session.commit()
    assert app.client.put(f"/api/projects/{pid}/backend", json={"backend": "model"}).status_code == 200
    image = app.client.get(f"/api/projects/{pid}/images").json()[0]
    r = app.client.post(f"/api/images/{image['id']}/segment", json={"box": [20, 20, 60, 60]})
    assert r.status_code == 200 and r.json()["method"] == "grabcut", r.text  # no SAM files here
    assert r.json()["note"].startswith("the project's mask model cannot be read")
    body = {"x": 40, "y": 40, "class_id": project["classes"][0]["id"]}
    r = app.client.post(f"/api/images/{image['id']}/snap", json=body)
    assert r.status_code == 200 and r.json()["method"] == "none" and r.json()["point"] == [40, 40], r.text
    assert r.json()["note"].startswith("the project's point model cannot be read")


def test_a_click_while_a_promoted_round_is_not_yet_registered_is_answered(app, dataset, started, monkeypatch):
    """The campaign's crash: round 2 beat round 1, and a click came before its version row
    was written, while round 1 still served; round 1's file had been deleted with the round."""
    project = _project(app, dataset)
    _train(app, project)  # every round is promoted here (promoting): round 2 too
    clicked = []
    register = trainer.register

    def click_then_register(*args):
        clicked.append(_click(app, project))  # the worker has not loaded v1 yet: it reads its file
        register(*args)

    monkeypatch.setattr(trainer, "register", click_then_register)
    job_id = _act(app, project, "start").json()["id"]
    trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=1, config=SMALL)
    assert [(c["model_version"], c["fallback"]) for c in clicked] == [(1, None)]
    assert [v.version for v in _versions(app, project)] == [1, 2]
    assert _click(app, project)["model_version"] == 2


def test_a_warm_start_torn_between_its_check_and_its_use_drops_the_round_alone(
    app, dataset, started, monkeypatch
):
    """The soak's crash: the warm start read well when the round began and was cut on disk
    before training read its input scale; the trainer's job failed and trained no more."""
    from fewclick.active import continual

    project = _project(app, dataset)
    _train(app, project)
    torn = app.models / "torn.pt"
    torn.write_bytes(b"PK\x03\x04 half a zip")
    picks = iter([str(torn)])
    warm_start = continual.ContinualTrainer._warm_start
    monkeypatch.setattr(
        continual.ContinualTrainer, "_warm_start", lambda self: next(picks, None) or warm_start(self)
    )
    monkeypatch.setattr(trainer, "RETRY_SECONDS", 0.0)
    messages = []
    dropped = trainer._dropped
    monkeypatch.setattr(trainer, "_dropped", lambda *args: messages.append(dropped(*args)) or messages[-1])
    _train(app, project)
    assert len(messages) == 1 and "round 2 dropped: it failed" in messages[0] and "torn.pt" in messages[0]
    state = json.loads((trainer.folder(app.models, project["id"]) / "state.json").read_text())
    assert [r["number"] for r in state["rounds"]] == [1, 2], "the next round trained"


def test_a_trainer_killed_again_and_again_is_not_started_forever(app, dataset, started, monkeypatch):
    project = _project(app, dataset)
    _act(app, project, "start")
    monkeypatch.setattr(control, "_RESTARTED", {})
    again = []
    with app.state.sessions() as session:
        for _ in range(control.RESTARTS + 2):
            live = session.query(Job).filter_by(project_id=project["id"], kind="trainer").all()
            for job in live:
                job.status = "failed"  # killed, as fail_dead leaves it
            session.commit()
            again.append(control._start_again(session, app.state.settings, project["id"], "again"))
    assert [j is not None for j in again] == [True] * control.RESTARTS + [False, False]
    assert control.wanted(app.state.settings, project["id"]) == "stopped", "the page shows it off"


def test_two_trainers_of_one_project_never_train_at_once(app, dataset, started, monkeypatch):
    project = _project(app, dataset)
    work = trainer.folder(app.models, project["id"])
    work.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(trainer, "POLL_SECONDS", 0.05)
    job_id = _act(app, project, "start").json()["id"]
    with open(work / trainer.LOCK_FILE, "a") as held:  # the trainer before, still ending
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)
        with app.state.sessions() as session:
            session.get(Job, job_id).status = "stopping"  # stopped while it waits
            session.commit()
        trainer.run_trainer(app.db_url, job_id, app.models, None, rounds=1, config=SMALL)
    assert _versions(app, project) == [] and not (work / "state.json").exists(), "it never trained"
