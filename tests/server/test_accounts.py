"""Accounts hardened: log-in throttling per account and per address (429 with Retry-After,
time moved by the injected clock, never by sleeping), the password policy, tokens that
expire, and a removed user whose sessions and tokens end at once while their past work
stays."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from clients import client_for, make_user
from fastapi.testclient import TestClient

from fewclick.server import accounts, throttle
from fewclick.server.app import create_app
from fewclick.server.db import Event, LoginFailure, Project, User, now, sqlite_url

PASSWORD = "correct horse"


@pytest.fixture
def app(tmp_path):
    return create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False)


def _login(client, name, password):
    return client.post("/api/login", json={"name": name, "password": password})


# ------------------------------------------------------------------------ throttling
def test_after_repeated_failures_even_the_right_password_gets_429_with_retry_after(app):
    make_user(app, "ann", "annotator", PASSWORD)
    browser = TestClient(app)
    for _ in range(throttle.ACCOUNT_FREE):
        assert _login(browser, "ann", "wrong guess").status_code == 401
    r = _login(browser, "ann", PASSWORD)
    assert r.status_code == 429 and "too many failed log-ins" in r.json()["detail"], r.text
    assert 0 < int(r.headers["Retry-After"]) <= throttle.FIRST_WAIT.seconds


def test_log_ins_sent_at_once_get_no_more_guesses_than_one_after_another(app):
    """A real server (its thread pool runs log-ins side by side): 30 wrong passwords sent at
    once get 401 no more often than sent one after another, the rest 429."""
    from benchmarks._browser import live_server

    make_user(app, "ann", "annotator", PASSWORD)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        with ThreadPoolExecutor(30) as pool:
            codes = list(pool.map(lambda _: _login(client, "ann", "wrong guess").status_code, range(30)))
    assert sorted(set(codes)) == [401, 429] and codes.count(401) == throttle.ACCOUNT_FREE, codes


def test_a_failed_log_in_is_free_again_once_the_wait_is_over(app):
    """Time moves by writing the failures earlier, as the clock argument does below."""
    make_user(app, "ann", "annotator", PASSWORD)
    with app.state.sessions() as session:
        for _ in range(throttle.ACCOUNT_FREE):
            throttle.failed(session, "ann", "10.0.0.1", at=now() - throttle.FIRST_WAIT - timedelta(seconds=1))
        session.commit()
    assert _login(TestClient(app), "ann", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "failures, seconds_later, wait",
    [
        (0, 0, 0),
        (throttle.ACCOUNT_FREE - 1, 0, 0),
        (throttle.ACCOUNT_FREE, 0, 30),
        (throttle.ACCOUNT_FREE, 10, 20),
        (throttle.ACCOUNT_FREE, 30, 0),
        (throttle.ACCOUNT_FREE + 1, 0, 60),  # the wait doubles with each failure
        (throttle.ACCOUNT_FREE + 3, 0, 240),
        (throttle.ACCOUNT_FREE + 20, 0, 900),  # at most the window
        (throttle.ACCOUNT_FREE + 20, 901, 0),  # and the failures expire with it
    ],
)
def test_the_wait_after_failures_of_one_account(app, failures, seconds_later, wait):
    start = now()
    with app.state.sessions() as session:
        for i in range(failures):
            throttle.failed(session, "Ann", f"10.0.0.{i}", at=start)
        assert (
            throttle.wait(session, " ann ", "10.9.9.9", at=start + timedelta(seconds=seconds_later)) == wait
        )


def test_one_address_failing_on_many_accounts_is_throttled_too(app):
    start = now()
    with app.state.sessions() as session:
        for i in range(throttle.ADDRESS_FREE):
            throttle.failed(session, f"user{i}", "10.0.0.1", at=start)
        assert throttle.wait(session, "someone-else", "10.0.0.1", at=start) == throttle.FIRST_WAIT.seconds
        assert throttle.wait(session, "someone-else", "10.0.0.2", at=start) == 0


def test_a_log_in_clears_its_accounts_failures_and_old_ones_are_deleted(app):
    make_user(app, "ann", "annotator", PASSWORD)
    browser = TestClient(app)
    with app.state.sessions() as session:
        throttle.failed(session, "zed", "10.0.0.1", at=now() - throttle.WINDOW - timedelta(seconds=1))
        session.commit()
    assert _login(browser, "ann", "wrong guess").status_code == 401
    assert _login(browser, "ann", PASSWORD).status_code == 200
    with app.state.sessions() as session:
        assert session.query(LoginFailure).count() == 0


# ------------------------------------------------------------------------ passwords
@pytest.mark.parametrize(
    "name, password, problem",
    [
        ("ann", "12345678", "at least 10 characters"),
        ("ann", " " * 8, "at least 10 characters"),
        ("ann", " " * 12, "only spaces"),
        ("annabelle-x", "Annabelle-X", "the user name"),
        ("annabelle", "ANNABELLE!", "the user name"),
        ("annabelle", "my annabelle 2026", "the user name"),
        ("ann", "1234567890", "too common"),
        ("ann", "Password123", "too common"),
        ("ann", "qwertyuiop", "too common"),
        ("ann", "aaaaaaaaaaaa", "one character repeated"),
    ],
)
def test_a_weak_password_is_refused_naming_why(name, password, problem):
    with pytest.raises(accounts.AccountError, match=problem):
        accounts.set_password(User(name=name), password)


@pytest.mark.parametrize(
    "name, password", [("ann", "a long password"), ("ann", PASSWORD), ("bo", "bobobobo42")]
)
def test_a_reasonable_password_is_taken(name, password):
    accounts.set_password(User(name=name), password)


def test_the_api_refuses_a_weak_password_with_a_400_naming_why(app):
    with client_for(app) as admin:
        r = admin.post("/api/users", json={"name": "cy", "role": "annotator", "password": "12345678"})
        assert r.status_code == 400 and "at least 10 characters" in r.json()["detail"], r.text


# ------------------------------------------------------------------------ tokens and removal
def test_an_expired_token_is_a_401_that_says_expired(app):
    with app.state.sessions() as session:
        user = accounts.add_user(session, "bot", "annotator")
        fresh = accounts.create_token(session, user, "ci", expires=now() + timedelta(days=1))
        stale = accounts.create_token(session, user, "old", expires=now() - timedelta(seconds=1))
        session.commit()
    client = TestClient(app)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    r = client.get("/api/me", headers={"Authorization": f"Bearer {stale}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text


def test_removing_a_user_ends_their_sessions_and_tokens_at_once_and_keeps_their_work(app):
    token = make_user(app, "ann", "annotator", PASSWORD)
    browser = TestClient(app)
    assert _login(browser, "ann", PASSWORD).status_code == 200
    assert browser.get("/api/me").status_code == 200
    with app.state.sessions() as session:
        user = accounts.find_user(session, "ann")
        project = Project(name="p", created_by=user.id)
        session.add(project)
        session.flush()
        session.add(Event(project_id=project.id, user_id=user.id, action="click"))
        session.commit()
        accounts.remove_user(session, user)
        session.commit()
    assert browser.get("/api/me").status_code == 401, "the browser session ended"
    assert TestClient(app).get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _login(TestClient(app), "ann", PASSWORD).status_code == 401
    with app.state.sessions() as session:
        assert session.query(Event).filter_by(action="click").one().user_id == user.id
        with pytest.raises(accounts.AccountError, match="was removed"):
            accounts.find_user(session, "ann")
        with pytest.raises(accounts.AccountError, match="was removed"):
            accounts.add_user(session, "ann", "annotator")


def test_the_last_admin_cannot_be_removed(app):
    with app.state.sessions() as session:
        admin = accounts.add_user(session, "root", "admin")
        with pytest.raises(accounts.AccountError, match="last admin"):
            accounts.remove_user(session, admin)
