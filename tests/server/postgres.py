"""The databases the API tests run on: ``db_url`` (one database per test module) and
``fresh_db_url`` (one per test), each parametrized over SQLite and PostgreSQL. A pytest
plugin, loaded by ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks._postgres import postgres_missing, start_postgres

from fewclick.server.db import sqlite_url

# --- Databases: every API test module can run on SQLite and on PostgreSQL -------------------
#
# ``db_url`` (one database per test module) and ``fresh_db_url`` (one per test) are
# parametrized over DB_BACKENDS. PostgreSQL is a throwaway server (benchmarks/_postgres.py,
# which the load benchmark shares): one per pytest process (so one per xdist worker), in a
# temporary folder and reached only through a unix socket there. Without PostgreSQL or
# psycopg the ``postgresql`` cases skip and say why.

DB_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres():
    """This pytest process's PostgreSQL server (skips the test when there is none)."""
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    server = start_postgres()
    yield server
    server.stop()


def _new_db_url(request, backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return sqlite_url(folder / "fewclick.db")
    return request.getfixturevalue("postgres").new_database(request.node.name)


@pytest.fixture(scope="module", params=DB_BACKENDS)
def db_url(request, tmp_path_factory) -> str:
    """The URL of an empty database shared by the tests of one module, on each backend."""
    return _new_db_url(request, request.param, tmp_path_factory.mktemp("db"))


@pytest.fixture(params=DB_BACKENDS)
def fresh_db_url(request, tmp_path) -> str:
    """The URL of an empty database for one test, on each backend."""
    return _new_db_url(request, request.param, tmp_path)
