"""replica facts as typed columns: how its last run ended, SIGKILL sent, why unschedulable

Until 0006 these facts were read from message text (`last_error` starting "exited with",
`reason` starting "grace" or "Unschedulable"); rows written then are translated once here.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# How the controller wrote each fact into text before this revision, oldest rows first.
_FAILURE_FROM_TEXT = """
UPDATE replicas SET failure = CASE
    WHEN last_error = '' THEN NULL
    WHEN last_error LIKE 'exited with code %' THEN 'EXITED'
    WHEN last_error = 'process lost' THEN 'LOST'
    WHEN last_error LIKE 'could not start: %' THEN 'START_FAILED'
    WHEN exit_code IN (126, 127) OR last_error LIKE 'command not found: %'
         OR last_error LIKE 'permission denied: %' OR last_error LIKE 'cannot execute %'
         THEN 'NOT_EXECUTABLE'
    ELSE 'UNHEALTHY'
END
"""
_KILL_FROM_TEXT = ("UPDATE replicas SET kill_sent = :yes "
                   "WHERE state = 'STOPPING' AND reason LIKE 'grace period over%'")
_UNSCHEDULABLE_FROM_TEXT = ("UPDATE replicas SET unschedulable = substr(reason, 16) "
                            "WHERE state = 'PENDING' AND reason LIKE 'Unschedulable: %'")


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("failure", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("kill_sent", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("unschedulable", sa.Text(), nullable=False,
                                   server_default=""))
    op.execute(sa.text(_FAILURE_FROM_TEXT))
    op.execute(sa.text(_KILL_FROM_TEXT).bindparams(yes=True))
    op.execute(sa.text(_UNSCHEDULABLE_FROM_TEXT))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("unschedulable")
        batch.drop_column("kill_sent")
        batch.drop_column("failure")
