"""Control tokens (stored as hashes) and controller leases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from berth.store.schema import leases as lt
from berth.store.schema import tokens as t


class TokenRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, token_id: str, name: str, kind: str, digest: str, at: datetime) -> None:
        self.conn.execute(t.delete().where(t.c.name == name))
        self.conn.execute(t.insert().values(id=token_id, name=name, kind=kind, hash=digest,
                                            created_at=at))

    def digests(self, kind: str) -> list[str]:
        return [r.hash for r in self.conn.execute(select(t.c.hash).where(t.c.kind == kind))]

    def digest_of(self, name: str) -> str | None:
        row = self.conn.execute(select(t.c.hash).where(t.c.name == name)).first()
        return str(row.hash) if row else None


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
