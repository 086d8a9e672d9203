"""the review queue of box-level active learning: the boxes it asks about and their answers,
and how many answers start a training job

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("queue_train_every", sa.Integer(), server_default="20", nullable=False)
    )
    op.create_table(
        "box_queries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("class_id", sa.Integer(), sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("answer", sa.String(length=12), nullable=True),
        sa.Column(
            "annotation_id", sa.Integer(), sa.ForeignKey("annotations.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answered_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_box_queries_project_id", "box_queries", ["project_id"])
    op.create_index("ix_box_queries_image_id", "box_queries", ["image_id"])
    op.create_index("ix_box_queries_status", "box_queries", ["status"])


def downgrade() -> None:
    op.drop_table("box_queries")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("queue_train_every")
