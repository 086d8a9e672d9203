"""The account commands: ``fewclick users add``, ``fewclick token create``, the demo's
log-in, and ``fewclick serve`` refusing to serve beyond this machine with no admin."""

import io

from fastapi.testclient import TestClient

from fewclick.cli import main
from fewclick.server import accounts
from fewclick.server.app import create_app
from fewclick.server.db import init_db, session_factory, sqlite_url


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_user_added_on_the_command_line_logs_in_and_a_token_works(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    code, out, _ = _run(
        capsys, "users", "add", "alice", "--role", "admin", "--password-stdin", "--data", tmp_path
    )
    assert code == 0 and "alice (admin)" in out
    code, _, err = _run(capsys, "users", "add", "alice", "--role", "reviewer", "--data", tmp_path)
    assert code == 2 and "exists already" in err
    code, out, _ = _run(capsys, "token", "create", "alice", "--data", tmp_path)
    token = out.strip()
    assert code == 0 and token.startswith("fc_") and "\n" not in token, "the token alone on stdout"
    code, _, err = _run(capsys, "token", "create", "nobody", "--data", tmp_path)
    assert code == 2 and "no user 'nobody'" in err

    app = create_app(sqlite_url(tmp_path / "fewclick.db"), tmp_path, start_worker=False)
    client = TestClient(app)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "alice"
    login = client.post("/api/login", json={"name": "alice", "password": "a long password"})
    assert login.status_code == 200 and login.json()["role"] == "admin"


def test_serve_refuses_to_listen_beyond_loopback_with_no_admin(capsys, tmp_path):
    code, _, err = _run(capsys, "serve", "--data", tmp_path, "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "no admin user" in err and "fewclick users add" in err


def test_the_demo_prints_a_log_in_that_works(capsys, tmp_path):
    code, out, _ = _run(capsys, "demo", "--out", tmp_path, "--no-serve")
    line = next(line for line in out.splitlines() if line.startswith("log in as"))
    name, password = line.split()[3], line.split()[7]
    with session_factory(init_db(sqlite_url(tmp_path / "fewclick.db")))() as session:
        assert accounts.check_password(session, name, password) is not None


def test_a_token_revoked_or_expired_and_a_user_removed_on_the_command_line_log_in_no_more(
    capsys, monkeypatch, tmp_path
):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert (
        _run(capsys, "users", "add", "root", "--role", "admin", "--password-stdin", "--data", tmp_path)[0]
        == 0
    )
    assert _run(capsys, "users", "add", "bob", "--role", "annotator", "--data", tmp_path)[0] == 0
    keep = _run(capsys, "token", "create", "bob", "--label", "keep", "--data", tmp_path)[1].strip()
    gone = _run(
        capsys, "token", "create", "bob", "--label", "ci", "--expires-days", "30", "--data", tmp_path
    )[1]
    code, _, err = _run(capsys, "token", "create", "bob", "--expires-days", "0", "--data", tmp_path)
    assert code == 2 and "expected a positive number of days" in err
    code, out, _ = _run(capsys, "token", "list", "bob", "--data", tmp_path)
    assert code == 0 and "keep" in out and "ci" in out and "expires" in out

    app = create_app(sqlite_url(tmp_path / "fewclick.db"), tmp_path, start_worker=False)
    client = TestClient(app)

    def me(token):
        return client.get("/api/me", headers={"Authorization": f"Bearer {token.strip()}"}).status_code

    assert me(gone) == 200
    code, out, _ = _run(capsys, "token", "revoke", "bob", "--label", "ci", "--data", tmp_path)
    assert code == 0 and "revoked 1 token" in out
    assert me(gone) == 401 and me(keep) == 200
    code, _, err = _run(capsys, "token", "revoke", "bob", "--label", "ci", "--data", tmp_path)
    assert code == 2 and "no token labelled 'ci'" in err

    code, out, _ = _run(capsys, "users", "remove", "bob", "--data", tmp_path)
    assert code == 0 and "removed bob" in out
    assert me(keep) == 401
    code, _, err = _run(capsys, "users", "remove", "root", "--data", tmp_path)
    assert code == 2 and "last admin" in err
    code, _, err = _run(capsys, "token", "create", "bob", "--data", tmp_path)
    assert code == 2 and "was removed" in err
