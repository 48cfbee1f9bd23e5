"""Registry credential and secret rows. Their values arrive sealed (see services/vault.py);
this module never sees a plaintext password or secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from berth.domain.records import RegistryCredential, Secret
from berth.store.schema import registry_credentials as rc
from berth.store.schema import secrets as sc


def _credential(row: Any) -> RegistryCredential:
    return RegistryCredential(id=row.id, project=row.project, name=row.name,
                              registry_url=row.registry_url, username=row.username,
                              sealed_password=row.password_sealed, created_at=row.created_at,
                              updated_at=row.updated_at)


def _secret(row: Any) -> Secret:
    return Secret(id=row.id, project=row.project, name=row.name, type=row.type,
                  public=dict(row.public), sealed_data=row.data_sealed,
                  created_at=row.created_at, updated_at=row.updated_at)


class RegistryCredentialRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, c: RegistryCredential) -> None:
        self.conn.execute(rc.insert().values(
            id=c.id, project=c.project, name=c.name, registry_url=c.registry_url,
            username=c.username, password_sealed=c.sealed_password, created_at=c.created_at,
            updated_at=c.updated_at))

    def update(self, c: RegistryCredential) -> bool:
        """Write every changeable field of the row with `c`'s project and name."""
        done = self.conn.execute(
            rc.update().where(rc.c.project == c.project, rc.c.name == c.name).values(
                registry_url=c.registry_url, username=c.username,
                password_sealed=c.sealed_password, updated_at=c.updated_at))
        return done.rowcount > 0

    def get(self, project: str, name: str) -> RegistryCredential | None:
        row = self.conn.execute(
            select(rc).where(rc.c.project == project, rc.c.name == name)).first()
        return None if row is None else _credential(row)

    def of_project(self, project: str) -> list[RegistryCredential]:
        rows = self.conn.execute(select(rc).where(rc.c.project == project)
                                 .order_by(rc.c.created_at, rc.c.name))
        return [_credential(r) for r in rows]

    def delete(self, project: str, name: str) -> bool:
        done = self.conn.execute(rc.delete().where(rc.c.project == project, rc.c.name == name))
        return done.rowcount > 0


class SecretRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, s: Secret) -> None:
        self.conn.execute(sc.insert().values(
            id=s.id, project=s.project, name=s.name, type=s.type, public=s.public,
            data_sealed=s.sealed_data, created_at=s.created_at, updated_at=s.updated_at))

    def update(self, s: Secret) -> bool:
        done = self.conn.execute(
            sc.update().where(sc.c.project == s.project, sc.c.name == s.name).values(
                type=s.type, public=s.public, data_sealed=s.sealed_data,
                updated_at=s.updated_at))
        return done.rowcount > 0

    def get(self, project: str, name: str) -> Secret | None:
        row = self.conn.execute(
            select(sc).where(sc.c.project == project, sc.c.name == name)).first()
        return None if row is None else _secret(row)

    def of_project(self, project: str) -> list[Secret]:
        rows = self.conn.execute(select(sc).where(sc.c.project == project)
                                 .order_by(sc.c.created_at, sc.c.name))
        return [_secret(r) for r in rows]

    def delete(self, project: str, name: str) -> bool:
        done = self.conn.execute(sc.delete().where(sc.c.project == project, sc.c.name == name))
        return done.rowcount > 0
