"""annotation ids are never given twice: SQLite's annotations table gets AUTOINCREMENT

Without it SQLite gives a new row the largest id plus one, so a box drawn right after the
newest box was deleted (in one batch, or by another person) took the deleted box's id. A
page still holding the deleted box then reached the new one. PostgreSQL's sequences never
give an id twice: nothing changes there.

On SQLite the table is rebuilt (Alembic's batch mode). Dropping the old table with foreign
keys on sets the box queries' links to their annotations to NULL; they are put back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    links = bind.execute(
        sa.text("SELECT id, annotation_id FROM box_queries WHERE annotation_id IS NOT NULL")
    ).all()
    with op.batch_alter_table(
        "annotations", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
    for query_id, annotation_id in links:
        bind.execute(
            sa.text("UPDATE box_queries SET annotation_id = :a WHERE id = :q"),
            {"a": annotation_id, "q": query_id},
        )
