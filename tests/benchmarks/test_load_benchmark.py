"""benchmarks/load.py: a short run against the real server, and its lost-write check."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_lost_writes_counts_what_the_database_does_not_hold(load, tmp_path, revision, boxes, lost):
    url = sqlite_url(tmp_path / "db.sqlite")
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
