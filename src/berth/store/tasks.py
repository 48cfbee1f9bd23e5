"""Task and event rows."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import Connection, select

from berth.domain.records import Event, Task
from berth.domain.status import TaskKind, TaskState
from berth.store.schema import events as e
from berth.store.schema import tasks as t

_TASK_FIELDS = [f.name for f in fields(Task)]


def _task(row: Any) -> Task:
    values = {name: getattr(row, name) for name in _TASK_FIELDS}
    values["kind"] = TaskKind(values["kind"])
    values["state"] = TaskState(values["state"])
    return Task(**values)


class TaskRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, task: Task) -> None:
        row = asdict(task)
        row.update(kind=task.kind.value, state=task.state.value)
        self.conn.execute(t.insert().values(**row))

    def save(self, task: Task) -> None:
        self.conn.execute(t.update().where(t.c.id == task.id).values(
            state=task.state.value, updated_at=task.updated_at, error=task.error,
            message=task.message))

    def get(self, task_id: str) -> Task | None:
        row = self.conn.execute(select(t).where(t.c.id == task_id)).first()
        return _task(row) if row else None

    def open(self) -> list[Task]:
        query = select(t).where(t.c.state.in_([TaskState.NEW.value, TaskState.RUNNING.value]))
        return [_task(r) for r in self.conn.execute(query.order_by(t.c.created_at))]


class EventRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, event: Event) -> None:
        self.conn.execute(e.insert().values(
            deployment_id=event.deployment_id, at=event.at, kind=event.kind,
            reason=event.reason, message=event.message, replica_id=event.replica_id,
            data=event.data))

    def of(self, deployment_id: str, *, limit: int = 100, after_id: int = 0) -> list[Event]:
        """The newest `limit` events after `after_id`, oldest first."""
        query = (select(e).where(e.c.deployment_id == deployment_id, e.c.id > after_id)
                 .order_by(e.c.id.desc()).limit(limit))
        rows = list(self.conn.execute(query))
        return [Event(id=r.id, deployment_id=r.deployment_id, at=r.at, kind=r.kind,
                      reason=r.reason, message=r.message, replica_id=r.replica_id,
                      data=r.data) for r in reversed(rows)]
