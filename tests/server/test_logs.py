"""Request ids: every response names its request, and an unhandled error answers a short
500 with that id while its traceback goes to the log under the same id."""

import logging

import pytest
from clients import client_for

from fewclick.server import logs
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


@pytest.fixture()
def app(tmp_path):
    app = create_app(
        sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, data_roots=[tmp_path]
    )

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    return app


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("req-42.a_b", True),
        ("a" * 64, True),
        ("a" * 65, False),  # too long for a log line
        ("bad id\twith\nnoise", False),
        (None, False),
    ],
)
def test_every_response_carries_its_request_id(app, sent, kept):
    with client_for(app) as client:
        headers = {} if sent is None else {"X-Request-ID": sent}
        r = client.get("/api/projects", headers=headers)
        r404 = client.get("/api/projects/999", headers=headers)
    rid = r.headers["X-Request-ID"]
    assert (rid == sent) is kept and logs._TOKEN.fullmatch(rid)
    assert r404.status_code == 404 and r404.headers["X-Request-ID"]


def test_an_unhandled_error_is_a_500_with_the_request_id_and_the_traceback_is_logged(app, caplog):
    with client_for(app, raise_server_exceptions=False) as client:
        with caplog.at_level(logging.ERROR, logger="fewclick"):
            r = client.get("/api/boom", headers={"X-Request-ID": "trace-me-1"})
    assert r.status_code == 500 and r.json() == {"detail": "internal error", "request_id": "trace-me-1"}
    assert r.headers["X-Request-ID"] == "trace-me-1" and "secret" not in r.text
    [record] = [rec for rec in caplog.records if rec.name == "fewclick.server"]
    assert record.exc_info[0] is RuntimeError and "/api/boom" in record.getMessage()


def test_log_lines_name_the_request(app, capfd):  # conftest restores the logger after
    logs.configure()
    logs.configure()  # once per process: no second handler
    with client_for(app, raise_server_exceptions=False) as client:
        client.get("/api/boom", headers={"X-Request-ID": "line-id-7"})
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "GET /api/boom failed" in line]
    assert len(lines) == 1 and "[request line-id-7]" in lines[0]
    assert "RuntimeError: secret internals" in err
