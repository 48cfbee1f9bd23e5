"""dialect records: what a platform dialect keeps of its own (ids, models, settings)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dialect_records",
        sa.Column("dialect", sa.String(length=16), primary_key=True),
        sa.Column("kind", sa.String(length=32), primary_key=True),
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_dialect_records_project", "dialect_records",
                    ["dialect", "kind", "project"])


def downgrade() -> None:
    op.drop_index("ix_dialect_records_project", table_name="dialect_records")
    op.drop_table("dialect_records")
