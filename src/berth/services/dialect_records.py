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


@dataclass(frozen=True)
class RecordClaim:
    """Write `lock` (taking its key) with the change, unless a record of (dialect, kind) in
    the lock's project whose data has the `match` values still holds what it locks:
    `holds(other, other's deployment or None)`, the deployment named by its data field
    `deployment_field`. Then the whole change is refused with `refused(other)`. The check and
    the write are in the change's transaction (serialised on SQLite; on PostgreSQL concurrent
    claims collide on the lock's key)."""

    lock: RecordWrite
    match: dict[str, Any]
    holds: Callable[[DialectRecord, Deployment | None], bool]
    refused: Callable[[DialectRecord], Exception]
    kind: str = ""  # the kind of the records that may hold it; "": the lock's own kind
    deployment_field: str = "name"


RecordChange = RecordWrite | RecordDelete | RecordClaim


def apply_records(tx: Tx, changes: Sequence[RecordChange], d: Deployment, task: Task,
                  now: datetime) -> list[DialectRecord]:
    """Apply a change's record items inside its transaction; the records written."""
    written: list[DialectRecord] = []
    for change in changes:
        if isinstance(change, RecordDelete):
            tx.dialect_records.delete(change.dialect, change.kind, change.key)
            continue
        item = change.lock if isinstance(change, RecordClaim) else change
        if isinstance(change, RecordClaim):
            project = item.project or d.project
            for other in tx.dialect_records.find(item.dialect, change.kind or item.kind,
                                                 project=project, **change.match):
                name = other.data.get(change.deployment_field)
                held = tx.deployments.by_name(project, name) if name else None
                if change.holds(other, held):
                    raise change.refused(other)
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
