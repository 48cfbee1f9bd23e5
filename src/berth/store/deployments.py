"""Deployment rows."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Text, func, select, type_coerce

from berth.domain.records import ContainerStatus, Deployment
from berth.domain.spec import DeploymentSpec
from berth.domain.status import DeploymentStatus, DesiredState
from berth.store.schema import deployments as t


class SpecCache:
    """Parsed specs by (deployment id, generation): a spec never changes within a generation,
    so the controller's every-tick reads skip JSON decoding and validation."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._specs: dict[str, tuple[int, DeploymentSpec]] = {}

    def get(self, deployment_id: str, generation: int, raw: Any) -> DeploymentSpec:
        hit = self._specs.get(deployment_id)
        if hit is not None and hit[0] == generation:
            return hit[1]
        spec = DeploymentSpec.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
        if len(self._specs) >= self.limit:
            self._specs.clear()
        self._specs[deployment_id] = (generation, spec)
        return spec


_COLUMNS = [type_coerce(c, Text).label("spec") if c.name == "spec" else c for c in t.columns]


def _to_record(row: Any, specs: SpecCache) -> Deployment:
    return Deployment(
        id=row.id, project=row.project, name=row.name,
        spec=specs.get(row.id, row.generation, row.spec),
        generation=row.generation, desired=DesiredState(row.desired),
        restart_nonce=row.restart_nonce, created_at=row.created_at, updated_at=row.updated_at,
        status=DeploymentStatus(row.status), status_reason=row.status_reason,
        status_since=row.status_since, observed_generation=row.observed_generation,
        containers=[ContainerStatus(**c) for c in row.containers],
        halted_template=row.halted_template, halted_reason=row.halted_reason,
        last_request_at=row.last_request_at,
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
        "last_request_at": d.last_request_at,
    }


class DeploymentRepo:
    def __init__(self, conn: Connection, specs: SpecCache) -> None:
        self.conn = conn
        self.specs = specs

    def _rows(self, query: Select[Any]) -> list[Deployment]:
        return [_to_record(r, self.specs) for r in self.conn.execute(query)]

    def insert(self, d: Deployment) -> None:
        self.conn.execute(t.insert().values(**_to_row(d)))

    def save(self, d: Deployment) -> None:
        self.conn.execute(t.update().where(t.c.id == d.id).values(**_to_row(d)))

    def save_observed(self, d: Deployment) -> bool:
        """Write what the controller owns (status, rollout, last request), only if the row is
        still at the generation it reconciled: a change accepted meanwhile is never undone.
        False when it was not written (the next tick recomputes)."""
        row = _to_row(d)
        observed = {k: row[k] for k in ("status", "status_reason", "status_since",
                                        "observed_generation", "containers",
                                        "halted_template", "halted_reason",
                                        "last_request_at", "deleted_at")}
        result = self.conn.execute(t.update().where(
            t.c.id == d.id, t.c.generation == d.generation).values(**observed))
        return bool(result.rowcount)

    def get(self, deployment_id: str) -> Deployment | None:
        found = self._rows(select(*_COLUMNS).where(t.c.id == deployment_id))
        return found[0] if found else None

    def by_name(
        self, project: str, name: str, *, include_deleted: bool = False
    ) -> Deployment | None:
        """The live deployment of that name, else (if asked) the most recently deleted one."""
        query = select(*_COLUMNS).where(t.c.project == project, t.c.name == name)
        found = self._rows(query.where(t.c.deleted_at.is_(None)))
        if not found and include_deleted:
            found = self._rows(query.order_by(t.c.deleted_at.desc()).limit(1))
        return found[0] if found else None

    def page(
        self, project: str, *, limit: int | None = None, offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Deployment]:
        query = select(*_COLUMNS).where(t.c.project == project).order_by(t.c.created_at, t.c.id)
        if not include_deleted:
            query = query.where(t.c.deleted_at.is_(None))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return self._rows(query)

    def count(self, project: str, *, include_deleted: bool = False) -> int:
        query = select(func.count()).select_from(t).where(t.c.project == project)
        if not include_deleted:
            query = query.where(t.c.deleted_at.is_(None))
        return int(self.conn.execute(query).scalar_one())

    def active(self) -> list[Deployment]:
        """Every deployment the controller must look after (not yet DELETED)."""
        return self._rows(select(*_COLUMNS).where(t.c.deleted_at.is_(None))
                          .order_by(t.c.created_at))

    def purge_deleted(self, before: datetime) -> int:
        result = self.conn.execute(t.delete().where(t.c.deleted_at < before))
        return int(result.rowcount)
