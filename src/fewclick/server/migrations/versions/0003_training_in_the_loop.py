"""training in the loop: a project's auto-train interval, what started a job and when it
began running, how a model version was made and what training measured

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("auto_train_every", sa.Integer(), server_default="2", nullable=False))
    op.add_column("jobs", sa.Column("trigger", sa.String(length=10), server_default="user", nullable=False))
    op.add_column("jobs", sa.Column("started_at", sa.DateTime(), nullable=True))
    op.add_column("model_versions", sa.Column("method", sa.String(length=20), nullable=True))
    op.add_column("model_versions", sa.Column("metrics", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("metrics")
        batch.drop_column("method")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("started_at")
        batch.drop_column("trigger")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("auto_train_every")
