"""a job's pace (issue 53): the steps its training has done and will do, and the seconds a
step has taken, from which the page estimates the time left and how sure that is

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("pace", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pace")
