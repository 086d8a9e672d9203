"""things and stuff: each class says whether it is a thing (countable, several regions per
image) or stuff (sky, road: at most one region per image in COCO panoptic); existing classes
are things

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 08:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("classes", sa.Column("isthing", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("classes") as batch:
        batch.drop_column("isthing")
