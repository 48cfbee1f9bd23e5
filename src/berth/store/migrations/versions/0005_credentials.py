"""credentials: registry credentials and secrets, their values sealed with the data key

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_credentials",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("registry_url", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("password_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("uq_registry_credentials_project_name", "registry_credentials",
                    ["project", "name"], unique=True)
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("public", sa.JSON(), nullable=False),
        sa.Column("data_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("uq_secrets_project_name", "secrets", ["project", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_secrets_project_name", table_name="secrets")
    op.drop_table("secrets")
    op.drop_index("uq_registry_credentials_project_name", table_name="registry_credentials")
    op.drop_table("registry_credentials")
