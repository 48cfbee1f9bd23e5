"""token scopes: access level and projects for named control tokens

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("access", sa.String(length=8), nullable=False,
                                   server_default="admin"))
        batch.add_column(sa.Column("projects", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("projects")
        batch.drop_column("access")
