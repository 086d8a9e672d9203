"""whether the page asks before an image is finished with no objects (issue 53): on by
default; a project whose images may really be empty turns it off

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("ask_empty", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("ask_empty")
