"""autoscaler: the latest decision per deployment region

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autoscaler",
        sa.Column("deployment_id", sa.String(length=36), primary_key=True),
        sa.Column("region", sa.String(length=63), primary_key=True),
        sa.Column("desired", sa.Integer(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("panic", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("last_scale_at", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("autoscaler")
