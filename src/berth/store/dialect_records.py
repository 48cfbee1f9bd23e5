"""What a dialect keeps of its own: its ids for Berth objects, its own objects (models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from berth.store import counters
from berth.store.schema import dialect_records as t


@dataclass(frozen=True)
class DialectRecord:
    dialect: str
    kind: str
    key: str
    project: str
    data: dict[str, Any]
    created_at: datetime


def _record(row: Any) -> DialectRecord:
    return DialectRecord(row.dialect, row.kind, row.key, row.project, dict(row.data),
                         row.created_at)


class DialectRecordRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, r: DialectRecord) -> None:
        """Insert or replace the record (dialect, kind, key)."""
        self.delete(r.dialect, r.kind, r.key)
        self.conn.execute(t.insert().values(dialect=r.dialect, kind=r.kind, key=r.key,
                                            project=r.project, data=r.data,
                                            created_at=r.created_at))

    def get(self, dialect: str, kind: str, key: str) -> DialectRecord | None:
        row = self.conn.execute(select(t).where(t.c.dialect == dialect, t.c.kind == kind,
                                                t.c.key == key)).first()
        return _record(row) if row else None

    def find(self, dialect: str, kind: str, *, project: str | None = None,
             **data: Any) -> list[DialectRecord]:
        """Records of a kind (in a project), optionally those whose data has these values."""
        query = select(t).where(t.c.dialect == dialect, t.c.kind == kind)
        if project is not None:
            query = query.where(t.c.project == project)
        found = [_record(r) for r in self.conn.execute(query.order_by(t.c.created_at))]
        return [r for r in found if all(r.data.get(k) == v for k, v in data.items())]

    def delete(self, dialect: str, kind: str, key: str) -> bool:
        result = self.conn.execute(t.delete().where(t.c.dialect == dialect, t.c.kind == kind,
                                                    t.c.key == key))
        return bool(result.rowcount)

    def next_number(self, dialect: str, kind: str) -> int:
        """1 + the number of records of this kind ever kept: for integer ids."""
        return counters.increment(self.conn, f"{dialect}:{kind}")

    def count(self, dialect: str, kind: str) -> int:
        query = select(func.count()).select_from(t).where(t.c.dialect == dialect,
                                                            t.c.kind == kind)
        return int(self.conn.execute(query).scalar_one())
