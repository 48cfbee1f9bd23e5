"""gateway: api keys, routing version, gateway reports, drain and idle bookkeeping

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("last_request_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("drain_version", sa.Integer(), nullable=True))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
    )
    op.create_index("uq_api_keys_project_name", "api_keys", ["project", "name"], unique=True)
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.create_table(
        "gateways",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateways")
    op.drop_table("counters")
    op.drop_index("uq_api_keys_project_name", table_name="api_keys")
    op.drop_table("api_keys")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("drain_version")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("last_request_at")
