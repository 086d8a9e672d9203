"""whether a finished box serves as an exemplar of its class's look-alikes (issue 52): the
person removes one from the detect panel's thumbnails; every box is one until then

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    column = sa.Column("exemplar", sa.Boolean(), nullable=False, server_default=sa.true())
    op.add_column("annotations", column)


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("exemplar")
