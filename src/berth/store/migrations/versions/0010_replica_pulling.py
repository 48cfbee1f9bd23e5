"""replica pulling: the image pull progress of a replica waiting for its image

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("pulling", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("pulling")
