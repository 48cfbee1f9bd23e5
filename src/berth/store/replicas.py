"""Replica rows: the controller's record of each replica it runs."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from berth.domain.records import Replica
from berth.domain.status import FailureKind, ReplicaState
from berth.store.schema import replicas as t

_FIELDS = [f.name for f in fields(Replica)]
# The user's, not the controller's: `save` leaves it alone (see `request_restart`).
_REQUESTED = "restart_requested_at"


def _to_record(row: Any) -> Replica:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["state"] = ReplicaState(values["state"])
    values["failure"] = FailureKind(values["failure"]) if values["failure"] else None
    values["gpus"] = list(values["gpus"] or [])
    return Replica(**values)


def _to_row(r: Replica) -> dict[str, Any]:
    row = asdict(r)
    row["state"] = r.state.value
    row["failure"] = r.failure.value if r.failure is not None else None
    return row


class ReplicaRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, r: Replica) -> None:
        self.conn.execute(t.insert().values(**_to_row(r)))

    def save(self, r: Replica) -> None:
        """The controller's write of a whole row, except the restart request: a request
        written while a tick ran must survive that tick's save."""
        row = _to_row(r)
        del row[_REQUESTED]
        self.conn.execute(t.update().where(t.c.id == r.id).values(**row))

    def request_restart(self, replica_id: str, at: datetime) -> None:
        """Ask the controller to replace this replica (kept until the row is gone)."""
        self.conn.execute(t.update().where(t.c.id == replica_id, t.c[_REQUESTED].is_(None))
                          .values(**{_REQUESTED: at}))

    def delete(self, replica_id: str) -> None:
        self.conn.execute(t.delete().where(t.c.id == replica_id))

    def get(self, replica_id: str) -> Replica | None:
        row = self.conn.execute(select(t).where(t.c.id == replica_id)).first()
        return _to_record(row) if row else None

    def of(self, deployment_id: str) -> list[Replica]:
        query = select(t).where(t.c.deployment_id == deployment_id).order_by(t.c.created_at, t.c.id)
        return [_to_record(r) for r in self.conn.execute(query)]

    def all(self) -> list[Replica]:
        return [_to_record(r) for r in self.conn.execute(select(t).order_by(t.c.created_at))]
