"""The Alembic migrations, run from an empty database on each backend, give the schema the
models describe; a migration that adds a column fills it in for the rows there are."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

import fewclick.server.db as db
from fewclick.server.db import Base, init_db, make_engine


def test_the_migrations_give_the_models_schema(fresh_db_url):
    engine = init_db(fresh_db_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def _migrate(url: str, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def test_classes_made_before_things_and_stuff_are_things_and_the_flag_goes_on_downgrade(fresh_db_url):
    _migrate(fresh_db_url, "0004")
    engine = make_engine(fresh_db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'u', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO projects (id, name, oriented, created_at, created_by) "
                "VALUES (1, 'p', false, CURRENT_TIMESTAMP, 1)"
            )
        )
        conn.execute(
            text("INSERT INTO classes (project_id, name, color, position) VALUES (1, 'sky', '#000000', 0)")
        )
    _migrate(fresh_db_url, "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, isthing FROM classes")).all() == [("sky", True)]
    _migrate(fresh_db_url, "0004", down=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM classes")).all() == [("sky",)]
        assert "isthing" not in conn.execute(text("SELECT * FROM classes")).keys()
    engine.dispose()
