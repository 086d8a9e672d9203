"""the detector version a project's users pinned to serve click-to-detect (0: the
training-free start), instead of the newest

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("pinned_detector", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pinned_detector")
