"""mask backends: the backend that made each mask, a project's pick, backend comparisons

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("annotations", sa.Column("backend", sa.String(length=20), nullable=True))
    op.add_column("projects", sa.Column("mask_backend", sa.String(length=20), nullable=True))
    op.create_table(
        "backend_comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("table", sa.JSON(), nullable=False),
        sa.Column("chosen", sa.String(length=20), nullable=False),
        sa.Column("masks", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=4000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_backend_comparisons_project_id", "backend_comparisons", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_backend_comparisons_project_id", "backend_comparisons")
    op.drop_table("backend_comparisons")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("mask_backend")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("backend")
