"""benchmarks/load.py: a short run against the real server, and its lost-write check."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks._postgres import postgres_missing

from fewclick.server.db import (
    Annotation,
    Image,
    Project,
    ProjectClass,
    User,
    init_db,
    session_factory,
    sqlite_url,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def load(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # its scripts import their helpers as top-level modules
    return importlib.import_module("load")


@pytest.mark.slow
def test_a_short_run_saves_without_errors_and_loses_nothing(tmp_path):
    out = tmp_path / "load.json"
    options = "--annotators 2 --minutes 0.15 --idle-minutes 0.1 --images-each 1 --think 0.1".split()
    command = [sys.executable, str(BENCHMARKS / "load.py"), *options, "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["idle"]["saves"] > 0 and result["load"]["saves"] > 0
    assert result["idle"]["errors"] == result["load"]["errors"] == 0, result["load"]["error_examples"]
    assert result["lost_writes"] == 0, result["lost_examples"]
    assert "| save latency p95 |" in out.with_suffix(".md").read_text()


NEW_KEYS = {"pace", "think_range_seconds", "cpu_count", "cpu_model", "target"}


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_short_run_at_a_persons_pace_loses_nothing_on_either_database(tmp_path, db):
    if db == "postgresql" and postgres_missing():
        pytest.skip(postgres_missing())
    out = tmp_path / "load.json"
    options = f"--pace person --db {db} --annotators 3 --minutes 0.15 --idle-minutes 0.05 --images-each 1"
    command = [sys.executable, str(BENCHMARKS / "load.py"), *options.split(), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert NEW_KEYS <= result.keys()
    assert (result["pace"], result["database"], result["think_range_seconds"]) == ("person", db, [3.0, 10.0])
    assert len(result["load_average_before"]) == len(result["load_average_after"]) == 3
    assert result["idle"]["saves"] > 0 and result["load"]["saves"] > 0
    assert result["idle"]["errors"] == result["load"]["errors"] == 0, result["load"]["error_examples"]
    assert result["lost_writes"] == 0, result["lost_examples"]


@pytest.mark.parametrize(
    "pace, think, expected",
    [
        ("burst", 0.5, (0.0, 1.0)),  # 0 to 2 x --think, the default
        ("burst", 0.1, (0.0, 0.2)),
        ("person", 0.5, (3.0, 10.0)),  # a person's pace does not take --think
    ],
)
def test_a_pace_is_a_range_of_seconds_between_saves(load, pace, think, expected):
    assert load.think_range(pace, think) == pytest.approx(expected)


@pytest.mark.parametrize(
    "db, raises",
    [
        ("mysql", "expected sqlite, postgresql or a database URL, got 'mysql'"),
        ("", "expected sqlite, postgresql or a database URL, got ''"),
    ],
)
def test_an_unknown_database_is_refused_by_name(load, tmp_path, db, raises):
    with pytest.raises(ValueError, match=raises), load.database(db, tmp_path):
        pass


def test_sqlite_is_the_default_database_in_the_work_folder(load, tmp_path):
    with load.database("sqlite", tmp_path) as (server_db, url):
        assert (server_db, url) == (None, sqlite_url(tmp_path / "fewclick.db"))


@pytest.mark.parametrize(
    "revision, boxes, lost",
    [
        (3, {1: [0, 0, 5, 5], 2: [1, 1, 9, 9]}, 0),  # what the database holds
        (4, {1: [0, 0, 5, 5], 2: [1, 1, 9, 9]}, 1),  # the last acknowledged save is not there
        (3, {1: [0, 0, 5, 5], 2: [1, 1, 9, 9], 7: [2, 2, 4, 4]}, 1),  # an acknowledged box is missing
        (3, {1: [0, 0, 5, 5], 2: [1, 1, 8, 8]}, 1),  # a box is not as acknowledged
        (3, {1: [0, 0, 5, 5]}, 1),  # an acknowledged delete is not there
    ],
)
def test_lost_writes_counts_what_the_database_does_not_hold(load, fresh_db_url, revision, boxes, lost):
    url = fresh_db_url  # SQLite and PostgreSQL
    with session_factory(init_db(url))() as session:
        user = User(name="local")
        session.add(user)
        session.flush()
        project = Project(
            name="p", created_by=user.id, classes=[ProjectClass(name="a", color="#000000", position=0)]
        )
        image = Image(project=project, file_name="a.png", path="a.png", width=9, height=9, revision=3)
        session.add(image)
        session.flush()
        mine = {
            "class_id": project.classes[0].id,
            "kind": "box",
            "created_by": user.id,
            "updated_by": user.id,
        }
        for ann_id, box in ((1, [0, 0, 5, 5]), (2, [1, 1, 9, 9])):
            session.add(Annotation(id=ann_id, image=image, geometry={"box": box}, **mine))
        session.commit()
        image_id = image.id
    found, examples = load.lost_writes(url, {image_id: load.Kept(revision, boxes)})
    assert found == lost and len(examples) == (lost > 0)


def _run(**extra) -> dict:
    phase = {
        "errors": 0,
        "saves": 9,
        "save_p50_ms": 1.0,
        "save_p95_ms": 2.0,
        "save_p99_ms": 3.0,
        "open_p95_ms": 4.0,
    }
    return {
        "database": "sqlite",
        "annotators": 2,
        "minutes": 1.0,
        "idle": phase,
        "load": phase,
        "lost_writes": 0,
        "target_met": True,
        "load_average_before": [1.5, 1.0, 0.5],
        "load_average_after": [2.5, 1.0, 0.5],
        "date": "2026-11-24T23:00:00+00:00",
        **extra,
    }


@pytest.mark.parametrize(
    "run, expected",
    [
        (
            _run(pace="person", cpu_count=2, cpu_model="Xeon"),
            "| [sqlite](load_a.md) | person | 2 | 1.0 | 9 | 0 | 0 | 1.0 / 2.0 / 3.0 | 4.0 | met | 1.5, 2.5 "
            "| 2026-11-24 | 2 cores, Xeon |",
        ),
        (  # a run from before --pace: the burst pace, its machine in words
            _run(machine="x86_64, 2 cores"),
            "| [sqlite](load_a.md) | burst | 2 | 1.0 | 9 | 0 | 0 | 1.0 / 2.0 / 3.0 | 4.0 | met | 1.5, 2.5 "
            "| 2026-11-24 | x86_64, 2 cores |",
        ),
    ],
)
def test_the_report_has_a_row_per_run(monkeypatch, run, expected):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    report_load = importlib.import_module("report_load")
    assert report_load.row(run, "docs/benchmarks/load_a.json") == expected
