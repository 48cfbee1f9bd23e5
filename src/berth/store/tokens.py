"""Control tokens (stored as hashes, with their scopes) and controller leases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from berth.domain.records import ControlToken
from berth.store.schema import leases as lt
from berth.store.schema import tokens as t


def _token(row: Any) -> ControlToken:
    return ControlToken(id=row.id, name=row.name, kind=row.kind, digest=row.hash,
                        access=row.access, projects=row.projects, created_at=row.created_at)


class TokenRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, token: ControlToken) -> None:
        self.conn.execute(t.delete().where(t.c.name == token.name))
        self.conn.execute(t.insert().values(
            id=token.id, name=token.name, kind=token.kind, hash=token.digest,
            created_at=token.created_at, access=token.access, projects=token.projects))

    def by_digest(self, digest: str) -> ControlToken | None:
        row = self.conn.execute(select(t).where(t.c.hash == digest)).first()
        return _token(row) if row else None

    def by_name(self, name: str) -> ControlToken | None:
        row = self.conn.execute(select(t).where(t.c.name == name)).first()
        return _token(row) if row else None

    def all(self) -> list[ControlToken]:
        return [_token(r) for r in self.conn.execute(select(t).order_by(t.c.created_at))]

    def delete(self, name: str) -> bool:
        return bool(self.conn.execute(t.delete().where(t.c.name == name)).rowcount)


class LeaseRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def acquire(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Take or renew the lease if it is free, expired, or already ours."""
        row = self.conn.execute(select(lt).where(lt.c.name == name)).first()
        if row is None:
            self.conn.execute(lt.insert().values(name=name, holder=holder, expires_at=now + ttl))
            return True
        if row.holder == holder or row.expires_at < now:
            self.conn.execute(lt.update().where(lt.c.name == name)
                              .values(holder=holder, expires_at=now + ttl))
            return True
        return False

    def holder(self, name: str) -> str | None:
        row = self.conn.execute(select(lt.c.holder).where(lt.c.name == name)).first()
        return str(row.holder) if row else None

    def take(self, name: str, holder: str, now: float, ttl: float) -> None:
        self.conn.execute(lt.update().where(lt.c.name == name)
                          .values(holder=holder, expires_at=now + ttl))

    def release(self, name: str, holder: str) -> None:
        self.conn.execute(lt.delete().where(lt.c.name == name, lt.c.holder == holder))
