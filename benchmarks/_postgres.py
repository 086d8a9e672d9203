"""A throwaway PostgreSQL server in a temporary folder, reached only through a unix socket
there: the API tests' ``postgres`` fixture (tests/server/postgres.py) and the load benchmark's
``--db postgresql`` share it.

PostgreSQL is Debian's (``make test`` installs it), made by ``initdb``. ``initdb`` refuses to
run as root, so as root the server runs as the unprivileged user PG_USER_WHEN_ROOT."""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

PG_USER_WHEN_ROOT = "nobody"
PG_ROLE = "fewclick"  # the database superuser initdb makes; trusted on the socket only
PG_PORT = 5432  # only names the socket file: each server has a folder of its own and no TCP


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return debian[-1].parent if debian else None


def postgres_missing() -> str | None:
    """Why no throwaway PostgreSQL can start here (what to install), or None when one can."""
    if postgres_bin() is None:
        return "PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib/postgresql): run `make test`"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER_WHEN_ROOT)
        except KeyError:
            return f"running as root, and initdb needs an unprivileged user: no user {PG_USER_WHEN_ROOT!r}"
    return None


class TempPostgres:
    """A PostgreSQL server in ``folder`` (data, log and socket), stopped by :meth:`stop`."""

    def __init__(self, bin_dir: Path, folder: Path, user: str | None) -> None:
        self.bin_dir, self.folder = bin_dir, folder
        self._as_user = {}
        if user is not None:
            self._as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
        self._made = 0
        self._run("initdb", "-D", folder / "data", "-U", PG_ROLE, "--auth=trust", "-E", "UTF8", "--locale=C")
        options = f"-k {folder} -p {PG_PORT} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "start", "-w", "-D", folder / "data", "-l", folder / "log", "-o", options)

    def _run(self, program: str, *args) -> None:
        command = [self.bin_dir / program, *map(str, args)]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder, **self._as_user)

    def url(self, database: str) -> str:
        query = {"host": str(self.folder), "port": str(PG_PORT)}
        url = URL.create("postgresql+psycopg", username=PG_ROLE, database=database, query=query)
        return url.render_as_string(hide_password=False)

    def new_database(self, hint: str) -> str:
        """The URL of a new empty database, named after ``hint`` (e.g. the test module)."""
        import psycopg

        self._made += 1
        name = f"{re.sub(r'[^a-z0-9]+', '_', hint.lower())[:40]}_{self._made}"
        with psycopg.connect(host=str(self.folder), port=PG_PORT, user=PG_ROLE, dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-m", "fast", "-D", self.folder / "data")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> TempPostgres:
    """A new throwaway server in a temporary folder; raises RuntimeError with PostgreSQL's own
    words when it cannot start (:func:`postgres_missing` says whether it can)."""
    reason = postgres_missing()
    if reason:
        raise RuntimeError(reason)
    user = PG_USER_WHEN_ROOT if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="fewclick-pg-"))  # short: a socket path has ~100 bytes
    if user:
        shutil.chown(folder, user)
    try:
        return TempPostgres(postgres_bin(), folder, user)
    except subprocess.CalledProcessError as exc:
        log = folder / "log"
        raise RuntimeError(
            f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}"
            f"{log.read_text(errors='replace') if log.exists() else ''}"
        ) from None
