"""the server run that started each job, so the next run fails at start-up the jobs an
earlier one left queued or running

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("server_run", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("server_run")
