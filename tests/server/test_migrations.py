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


def _insert_annotation(conn, annotation_id: int | None = None) -> int:
    fields = (
        "image_id, class_id, kind, geometry, source, review, reference, "
        "created_at, created_by, updated_at, updated_by"
    )
    values = (
        "1, 1, 'box', '[0, 0, 1, 1]', 'manual', 'none', false, CURRENT_TIMESTAMP, 1, CURRENT_TIMESTAMP, 1"
    )
    if annotation_id is not None:
        fields, values = f"id, {fields}", f"{annotation_id}, {values}"
    conn.execute(text(f"INSERT INTO annotations ({fields}) VALUES ({values})"))
    return conn.execute(text("SELECT max(id) FROM annotations")).scalar()


def test_an_annotation_id_is_never_given_twice_and_the_rebuild_keeps_the_box_queries_links(fresh_db_url):
    _migrate(fresh_db_url, "0009")
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
            text(
                "INSERT INTO classes (id, project_id, name, color, position, isthing) "
                "VALUES (1, 1, 'a', '#000', 0, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO images "
                "(id, project_id, file_name, path, width, height, status, revision, updated_at) "
                "VALUES (1, 1, 'a.png', '/a.png', 10, 10, 'new', 0, CURRENT_TIMESTAMP)"
            )
        )
        first = _insert_annotation(conn)
        conn.execute(
            text(
                "INSERT INTO box_queries "
                "(project_id, image_id, class_id, box, score, status, annotation_id, created_at) "
                f"VALUES (1, 1, 1, '[0, 0, 1, 1]', 0.5, 'answered', {first}, CURRENT_TIMESTAMP)"
            )
        )
    _migrate(fresh_db_url, "0010")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT annotation_id FROM box_queries")).scalar() == first, (
            "the link is kept"
        )
        second = _insert_annotation(conn)
        conn.execute(text(f"DELETE FROM annotations WHERE id = {second}"))
        third = _insert_annotation(conn)
    assert third == second + 1, "the deleted newest id is not given again"
    engine.dispose()
