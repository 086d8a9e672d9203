"""benchmarks/soak.py's parts that need no server: the faults' schedule, the ledger of
acknowledged saves, the check of which model answered, the minutes' rows, and the client
that waits for a restarting server and sends again."""

from __future__ import annotations

import importlib
import random
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def soak(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # its scripts import their helpers as top-level modules
    return importlib.import_module("soak")


@pytest.fixture()
def records(soak):
    return importlib.import_module("_soak")


@pytest.fixture()
def faults(soak):
    return importlib.import_module("_soak_faults")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_kind_of_fault_comes_once_within_its_window(faults, seed):
    drawn = faults.schedule(random.Random(seed), 1200.0, [1, 2])
    assert sorted(f.kind for f in drawn) == sorted(faults.WINDOWS)
    for f in drawn:
        lo, hi = faults.WINDOWS[f.kind]
        assert lo * 1200 <= f.at <= hi * 1200 and f.project in (1, 2)
    assert [f.at for f in drawn] == sorted(f.at for f in drawn)
    model = [f for f in drawn if f.kind in ("trainer_kill", "checkpoint_truncate", "checkpoint_enospc")]
    assert all(f.at >= 600 for f in model), "the model faults come in the second half"


def test_the_same_seed_draws_the_same_faults(faults):
    assert faults.schedule(random.Random(3), 600.0, [1, 2]) == faults.schedule(
        random.Random(3), 600.0, [1, 2]
    )


@pytest.mark.parametrize(("seconds", "expected"), [(360.0, 60.0), (1200.0, 180.0), (3600.0, 180.0)])
def test_the_full_disk_lasts_a_share_of_the_run_within_bounds(faults, seconds, expected):
    assert faults.enospc_seconds(seconds) == expected


def _poll(at: float, progress: float, job: int = 1, status: str = "running", project: int = 1) -> dict:
    return {"at": at, "project": project, "job": job, "status": status, "progress": progress}


@pytest.mark.parametrize(
    ("polls", "expected"),
    [
        ([_poll(0, 0.2), _poll(10, 0.25), _poll(20, 0.3)], 140.0),  # 0.5% a second, 70% left
        ([_poll(0, 0.9), _poll(10, 0.1), _poll(20, 0.2)], 80.0),  # a new round began: from it
        ([_poll(0, 0.2, job=1), _poll(10, 0.3, job=2)], None),  # another job: no pace yet
        ([_poll(0, 0.2), _poll(10, 0.2)], None),  # no step meanwhile
        ([_poll(0, 0.2), _poll(10, 0.3, status="paused")], None),
        ([_poll(0, 0.2), _poll(10, 0.3, project=2)], None),  # one poll of project 1
        ([], None),
    ],
)
def test_when_a_trainers_round_ends_is_told_from_its_pace(faults, polls, expected):
    assert faults.round_ends_in(polls, 1) == expected


def _annotation(k: int, image: int, box: list[float], class_id: int = 1) -> dict:
    return {"id": k, "image_id": image, "class_id": class_id, "geometry": {"box": box}}


def _ledger(records):
    ledger = records.Ledger()
    batch = {"created": [_annotation(1, 10, [0, 0, 5, 5]), _annotation(2, 10, [1, 1, 6, 6])], "deleted": []}
    ledger.saved("POST", "/api/images/10/annotations/batch", batch)
    ledger.saved(
        "PATCH", "/api/annotations/2", {"annotation": _annotation(2, 10, [3, 3, 8, 8]), "revision": 3}
    )
    ledger.saved("POST", "/api/images/10/annotations/batch", {"created": [], "deleted": [1]})
    ledger.saved("PATCH", "/api/images/10", {"id": 10, "status": "done"})
    ledger.saved("POST", "/api/projects/1/events", {"logged": 2})  # not a save
    return ledger


def test_the_ledger_keeps_what_was_acknowledged_last(records):
    ledger = _ledger(records)
    assert ledger.writes == 4 and ledger.done_images() == [10]
    assert ledger.annotations[2]["geometry"] == {"box": [3, 3, 8, 8]}
    assert ledger.annotations[1]["deleted"] is True


@pytest.mark.parametrize(
    ("held", "status", "lost", "unacknowledged"),
    [
        ([_annotation(2, 10, [3, 3, 8, 8])], "done", 0, 0),
        ([], "done", 1, 0),  # the edited box is missing
        ([_annotation(2, 10, [1, 1, 6, 6])], "done", 1, 0),  # the edit is lost
        ([_annotation(1, 10, [0, 0, 5, 5]), _annotation(2, 10, [3, 3, 8, 8])], "done", 1, 0),  # undeleted
        ([_annotation(2, 10, [3, 3, 8, 8])], "in_progress", 1, 0),  # the status move is lost
        ([_annotation(2, 10, [3, 3, 8, 8]), _annotation(9, 10, [0, 0, 1, 1])], "done", 0, 1),
    ],
)
def test_the_ledger_counts_acknowledged_saves_the_app_does_not_hold(
    records, held, status, lost, unacknowledged
):
    check = _ledger(records).check(lambda image_id: {"annotations": held, "status": status})
    assert (check["lost"], check["unacknowledged"]) == (lost, unacknowledged)
    assert len(check["examples"]) == lost


FILES = {1: {1: "trainer/round1-aa/last.pt", 2: "trainer/round3-bb/last.pt"}}
ONE, THREE = FILES[1][1], FILES[1][2]


def _answer(version, requested, fallback, loaded) -> dict:
    return {
        "model_version": version,
        "requested_version": requested,
        "fallback": fallback,
        "model_file": loaded,
    }


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (_answer(2, 2, None, THREE), "right"),
        (_answer(None, None, None, None), "right"),  # the training-free start
        (_answer(1, 2, "version 2's file is cut short", ONE), "right"),  # a fallback, said so
        (_answer(1, 2, None, ONE), "wrong"),  # another version, not said
        (_answer(2, 2, None, ONE), "wrong"),  # the version named, another file loaded
        (_answer(None, None, None, "x.pt"), "wrong"),
        (_answer(5, 5, None, "y.pt"), "unverified"),  # a version never listed
        ({"model_version": 2}, "unverified"),  # an app that names no file
    ],
)
def test_a_detect_answer_is_wrong_when_another_model_answered_than_named(records, answer, verdict):
    answers = records.ModelAnswers({100: 1})
    answers.add(100, answer, 1.0)
    check = answers.check(FILES)
    assert check["answers"] == 1
    assert check[{"right": "verified"}.get(verdict, verdict)] == 1


def test_the_minutes_count_answers_errors_and_waits(records):
    log = records.RequestLog()
    log.answers = [(5.0, "GET /api/x", 200, 10.0), (50.0, "POST /api/images/{id}/detect", 500, 900.0)]
    log.answers.append((70.0, "POST /api/images/{id}/detect", 200, 300.0))
    log.server_errors = [{"at": 50.0}]
    log.waits = [(65.0, "GET /api/x", 3.0)]
    rows = records.per_minute(log)
    assert [(r["requests"], r["server_errors"], r["waited_for_server"]) for r in rows] == [
        (2, 1, 0),
        (1, 0, 1),
    ]
    assert rows[1]["detect_p95_ms"] == 300.0
    assert log.errors_between(40, 60) == 1 and log.errors_between(0, 40) == 0


def test_an_endpoint_is_named_without_its_ids(records):
    assert records.endpoint("POST", "/api/images/12/detect?x=1") == "POST /api/images/{id}/detect"


def _fake_soak(records, handler):
    return SimpleNamespace(
        recorder=importlib.import_module("campaign").Recorder(),
        log=records.RequestLog(),
        ledger=records.Ledger(),
        answers=records.ModelAnswers({}),
        server=SimpleNamespace(base="http://soak.test"),
    )


def test_a_request_that_finds_no_server_waits_and_is_sent_again(soak, records, monkeypatch):
    monkeypatch.setattr(soak, "RETRY_SECONDS", 0.01)
    tries = []

    def handler(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        if len(tries) < 3:
            raise httpx.ConnectError("refused", request=request)
        created = {"created": [_annotation(1, 4, [0, 0, 2, 2])], "deleted": [], "revision": 2}
        return httpx.Response(200, json=created)

    fake = _fake_soak(records, handler)
    client = soak.SoakClient(fake, transport=httpx.MockTransport(handler))
    r = client.post("/api/images/4/annotations/batch", json={"revision": 1, "create": []})
    assert r.status_code == 200 and len(tries) == 3
    assert len(fake.log.waits) == 1 and fake.log.answers[0][2] == 200
    assert fake.ledger.annotations[1]["image"] == 4, "the save acknowledged after the wait is in the ledger"


def test_a_request_after_the_end_of_the_run_stops_the_annotator(soak, records):
    stop = threading.Event()
    stop.set()
    fake = _fake_soak(records, None)
    client = soak.SoakClient(fake, stop=stop, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(soak.Stopped):
        client.get("/api/projects")


def test_answers_of_500_are_server_errors_with_their_body(soak, records):
    fake = _fake_soak(records, None)
    transport = httpx.MockTransport(lambda r: httpx.Response(500, text="Internal Server Error"))
    soak.SoakClient(fake, transport=transport).post("/api/images/3/detect", json={"clicks": []})
    assert fake.log.server_errors[0]["endpoint"] == "POST /api/images/{id}/detect"
    assert fake.log.server_errors[0]["body"] == "Internal Server Error"


def test_the_server_log_errors_are_counted_by_text(records, tmp_path):
    log = tmp_path / "server.log"
    lines = [
        "INFO: 127.0.0.1 - GET /api/x 200",
        "Traceback (most recent call last):",
        "  File x",
        "FileNotFoundError: gone",
    ]
    log.write_text("\n".join(lines + lines[1:]) + "\n2026 WARNING job 1: stopped\n")
    assert records.log_errors(log) == [
        {"line": "FileNotFoundError: gone", "count": 2},
        {"line": "2026 WARNING job 1: stopped", "count": 1},
    ]
