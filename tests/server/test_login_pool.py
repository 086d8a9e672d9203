"""Log-ins hash in a pool of their own (``accounts.in_hash_pool``): a burst of log-ins, more
than the server's shared thread pool holds (anyio's 40), never hashes more than
``accounts.HASH_THREADS`` passwords at once, and while they queue the image and save
routes are still answered.

argon2 is replaced by a hasher that counts how many of its calls run at once and holds
each until the test lets it go, so the queue is there for as long as the test needs it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from argon2 import PasswordHasher
from benchmarks._browser import live_server
from clients import auth_headers, make_user

from fewclick.server import accounts
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url

PASSWORD = "correct horse"
LOG_INS = 60  # more than anyio's default thread limiter (40)
WITHIN = 60.0  # seconds: generous on a busy machine


class CountingHasher:
    """argon2 (at its cheapest) whose calls wait for ``gate``, counting how many run at once."""

    def __init__(self) -> None:
        self.real = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.gate, self.entered = threading.Event(), threading.Event()
        self.lock, self.running, self.most, self.calls = threading.Lock(), 0, 0, 0

    def _counted(self, fn, *args):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        self.entered.set()
        try:
            assert self.gate.wait(WITHIN), "the test never let the hasher go"
            return fn(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self._counted(self.real.hash, password)

    def verify(self, hashed: str, password: str) -> bool:
        return self._counted(self.real.verify, hashed, password)


class CountingLogIns:
    """ASGI middleware that counts the log-in requests the server has received."""

    def __init__(self, app) -> None:
        self.app, self.received = app, 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/login":
            self.received += 1
        await self.app(scope, receive, send)


@pytest.fixture
def app(tmp_path, monkeypatch):
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False)
    make_user(app, "ann", "annotator", PASSWORD)
    auth_headers(app)  # the admin's token, made before argon2 is held
    hasher = CountingHasher()
    monkeypatch.setattr(accounts, "_HASHER", hasher)
    return app, hasher


def _wait_for(check, what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {WITHIN:.0f} s"
        time.sleep(0.1)


def test_a_burst_of_log_ins_hashes_one_at_a_time_and_leaves_the_other_routes_free(app):
    app, hasher = app
    counted = CountingLogIns(app)
    with live_server(counted) as base, ThreadPoolExecutor(LOG_INS) as pool:
        log_in = {"name": "ann", "password": PASSWORD}
        answers = [
            pool.submit(httpx.post, f"{base}/api/login", json=log_in, timeout=WITHIN) for _ in range(LOG_INS)
        ]
        _wait_for(lambda: counted.received == LOG_INS and hasher.entered.is_set(), "every log-in received")
        # the log-ins wait for the hasher; a route of the shared thread pool answers meanwhile
        r = httpx.get(f"{base}/api/projects", headers=auth_headers(app), timeout=WITHIN)
        assert r.status_code == 200, r.text
        assert not hasher.gate.is_set() and hasher.calls == 1, "the log-ins went on before they were let go"
        hasher.gate.set()
        codes = [f.result(WITHIN).status_code for f in answers]
    assert codes == [200] * LOG_INS
    assert hasher.calls == LOG_INS and hasher.most <= accounts.HASH_THREADS, (hasher.calls, hasher.most)


def test_adding_a_user_hashes_in_the_same_pool(app):
    app, hasher = app
    hasher.gate.set()
    with live_server(app) as base:
        body = {"name": "bo", "role": "annotator", "password": "a password of bo's"}
        r = httpx.post(f"{base}/api/users", json=body, headers=auth_headers(app), timeout=WITHIN)
        assert r.status_code == 201, r.text
        r = httpx.post(f"{base}/api/login", json={"name": "bo", "password": body["password"]}, timeout=WITHIN)
        assert r.status_code == 200, r.text
    assert hasher.calls == 2 and hasher.most == 1
