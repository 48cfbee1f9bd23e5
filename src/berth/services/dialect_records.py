"""What a dialect keeps of its own (its ids for Berth objects, its own objects), through a
service: dialects never reach into the store.

A record that belongs to a deployment change is not written on its own: the dialect passes
`RecordWrite` / `RecordDelete` items to the DeploymentService operation, which applies them in
the same transaction as the change, so a dialect can never see a deployment without its record
or keep a record of a change that was refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from berth.domain.records import Deployment, Task
from berth.store.dialect_records import DialectRecord
from berth.store.engine import Store, Tx

RecordData = dict[str, Any] | Callable[[Deployment, Task], dict[str, Any]]


@dataclass(frozen=True)
class RecordWrite:
    """Insert or replace the record (dialect, kind, key) with the change.

    `key=None` takes the next integer of (dialect, kind) (an atomic counter). `data` may be a
    function of the changed deployment and its task, for what is known only once the change is
    made (the deployment's id, the task id). `project=None`: the deployment's project."""

    dialect: str
    kind: str
    data: RecordData
    key: str | None = None
    project: str | None = None
    created_at: datetime | None = None  # None: now; keep the original on a replace


@dataclass(frozen=True)
class RecordDelete:
    dialect: str
    kind: str
    key: str


RecordChange = RecordWrite | RecordDelete


def apply_records(tx: Tx, changes: Sequence[RecordChange], d: Deployment, task: Task,
                  now: datetime) -> list[DialectRecord]:
    """Apply a change's record items inside its transaction; the records written."""
    written: list[DialectRecord] = []
    for item in changes:
        if isinstance(item, RecordDelete):
            tx.dialect_records.delete(item.dialect, item.kind, item.key)
            continue
        key = item.key if item.key is not None else str(
            tx.dialect_records.next_number(item.dialect, item.kind))
        data = item.data(d, task) if callable(item.data) else item.data
        record = DialectRecord(item.dialect, item.kind, key, item.project or d.project,
                               dict(data), item.created_at or now)
        tx.dialect_records.put(record)
        written.append(record)
    return written


class DialectRecordService:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def get(self, dialect: str, kind: str, key: str) -> DialectRecord | None:
        with self.store.read() as tx:
            return tx.dialect_records.get(dialect, kind, key)

    def find(self, dialect: str, kind: str, *, project: str | None = None,
             **data: Any) -> list[DialectRecord]:
        """Records of a kind (in a project), oldest first, optionally those whose data has
        these values."""
        with self.store.read() as tx:
            return tx.dialect_records.find(dialect, kind, project=project, **data)

    def put(self, records: Iterable[DialectRecord]) -> None:
        """Insert or replace records that belong to no deployment change, all in one
        transaction."""
        with self.store.write() as tx:
            for record in records:
                tx.dialect_records.put(record)

    def delete(self, dialect: str, kind: str, key: str) -> bool:
        with self.store.write() as tx:
            return tx.dialect_records.delete(dialect, kind, key)
