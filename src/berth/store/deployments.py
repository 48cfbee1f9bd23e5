"""Deployment rows."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from berth.domain.records import ContainerStatus, Deployment
from berth.domain.spec import DeploymentSpec
from berth.domain.status import DeploymentStatus, DesiredState
from berth.store.schema import deployments as t


def _to_record(row: Any) -> Deployment:
    return Deployment(
        id=row.id, project=row.project, name=row.name,
        spec=DeploymentSpec.model_validate(row.spec),
        generation=row.generation, desired=DesiredState(row.desired),
        restart_nonce=row.restart_nonce, created_at=row.created_at, updated_at=row.updated_at,
        status=DeploymentStatus(row.status), status_reason=row.status_reason,
        status_since=row.status_since, observed_generation=row.observed_generation,
        containers=[ContainerStatus(**c) for c in row.containers],
        halted_template=row.halted_template, halted_reason=row.halted_reason,
    )


def _to_row(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id, "project": d.project, "name": d.name,
        "spec": d.spec.model_dump(mode="json", by_alias=True),
        "generation": d.generation, "desired": d.desired.value,
        "restart_nonce": d.restart_nonce, "status": d.status.value,
        "status_reason": d.status_reason, "status_since": d.status_since,
        "observed_generation": d.observed_generation,
        "containers": [asdict(c) for c in d.containers],
        "halted_template": d.halted_template, "halted_reason": d.halted_reason,
        "created_at": d.created_at, "updated_at": d.updated_at,
        "deleted_at": d.updated_at if d.status == DeploymentStatus.DELETED else None,
    }


class DeploymentRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, d: Deployment) -> None:
        self.conn.execute(t.insert().values(**_to_row(d)))

    def save(self, d: Deployment) -> None:
        self.conn.execute(t.update().where(t.c.id == d.id).values(**_to_row(d)))

    def get(self, deployment_id: str) -> Deployment | None:
        row = self.conn.execute(select(t).where(t.c.id == deployment_id)).first()
        return _to_record(row) if row else None

    def by_name(
        self, project: str, name: str, *, include_deleted: bool = False
    ) -> Deployment | None:
        """The live deployment of that name, else (if asked) the most recently deleted one."""
        query = select(t).where(t.c.project == project, t.c.name == name)
        row = self.conn.execute(query.where(t.c.deleted_at.is_(None))).first()
        if row is None and include_deleted:
            row = self.conn.execute(query.order_by(t.c.deleted_at.desc()).limit(1)).first()
        return _to_record(row) if row else None

    def list(
        self, project: str, *, limit: int | None = None, offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Deployment]:
        query = select(t).where(t.c.project == project).order_by(t.c.created_at, t.c.id)
        if not include_deleted:
            query = query.where(t.c.deleted_at.is_(None))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [_to_record(r) for r in self.conn.execute(query)]

    def count(self, project: str, *, include_deleted: bool = False) -> int:
        query = select(func.count()).select_from(t).where(t.c.project == project)
        if not include_deleted:
            query = query.where(t.c.deleted_at.is_(None))
        return int(self.conn.execute(query).scalar_one())

    def active(self) -> list[Deployment]:
        """Every deployment the controller must look after (not yet DELETED)."""
        query = select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.created_at)
        return [_to_record(r) for r in self.conn.execute(query)]

    def purge_deleted(self, before: datetime) -> int:
        result = self.conn.execute(t.delete().where(t.c.deleted_at < before))
        return int(result.rowcount)
