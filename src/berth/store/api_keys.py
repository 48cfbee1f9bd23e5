"""API key rows (secrets stored as SHA-256 digests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, select

from berth.domain.records import ApiKey
from berth.store.schema import api_keys as t


def _to_record(row: Any) -> ApiKey:
    return ApiKey(id=row.id, project=row.project, name=row.name, description=row.description,
                  digest=row.digest, prefix=row.prefix, created_at=row.created_at,
                  expires_at=row.expires_at)


class ApiKeyRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, query: Select[Any]) -> list[ApiKey]:
        return [_to_record(r) for r in self.conn.execute(query)]

    def insert(self, key: ApiKey) -> None:
        self.conn.execute(t.insert().values(
            id=key.id, project=key.project, name=key.name, description=key.description,
            digest=key.digest, prefix=key.prefix, created_at=key.created_at,
            expires_at=key.expires_at))

    def get(self, project: str, name: str) -> ApiKey | None:
        found = self._rows(select(t).where(t.c.project == project, t.c.name == name))
        return found[0] if found else None

    def of_project(self, project: str) -> list[ApiKey]:
        return self._rows(select(t).where(t.c.project == project)
                          .order_by(t.c.created_at, t.c.name))

    def describe(self, project: str, name: str, description: str) -> bool:
        result = self.conn.execute(t.update().where(t.c.project == project, t.c.name == name)
                                   .values(description=description))
        return bool(result.rowcount)

    def delete(self, project: str, name: str) -> bool:
        done = self.conn.execute(t.delete().where(t.c.project == project, t.c.name == name))
        return done.rowcount > 0

    def by_digest(self, digest: str) -> ApiKey | None:
        found = self._rows(select(t).where(t.c.digest == digest))
        return found[0] if found else None

    def all(self) -> list[ApiKey]:
        """Every key of every project (the gateway's routing table holds them)."""
        return self._rows(select(t).order_by(t.c.project, t.c.name))
