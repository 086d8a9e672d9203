"""The Alembic migrations, run from an empty database on each backend, give the schema the
models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fewclick.server.db import Base, init_db


def test_the_migrations_give_the_models_schema(fresh_db_url):
    engine = init_db(fresh_db_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []
