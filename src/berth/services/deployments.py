"""Deployment use cases: create, replace, patch, start, stop, restart, delete, and reads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from berth.domain.errors import Conflict, NotFound, PreconditionFailed, SpecInvalid, Violation
from berth.domain.merge_patch import merge_patch
from berth.domain.platform import PlatformFacts
from berth.domain.records import ContainerStatus, Deployment, Event, Replica, Task
from berth.domain.spec import DeploymentSpec
from berth.domain.status import (
    DeploymentStatus,
    DesiredState,
    ReplicaState,
    TaskKind,
    TaskState,
)
from berth.domain.validation import validate
from berth.services.dialect_records import RecordChange, apply_records
from berth.store.autoscaler import ScaleRecord
from berth.store.dialect_records import DialectRecord
from berth.store.engine import Store, Tx

PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Fields of the read shape that a client may send back on PUT; they are not spec.
READ_ONLY = ("id", "project", "generation", "observed_generation", "desired_state", "status",
             "status_reason", "status_since", "address", "created_at", "updated_at")
CONTAINER_READ_ONLY = ("deploy_status", "error_message", "desired")


@dataclass(frozen=True)
class Change:
    deployment: Deployment
    task: Task
    records: list[DialectRecord] = field(default_factory=list)  # written with the change


def check_project(project: str) -> None:
    if not PROJECT_RE.match(project):
        raise SpecInvalid([Violation(
            "project", "pattern", "must be 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit")])


def strip_read_only(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    clean = {k: v for k, v in data.items() if k not in READ_ONLY}
    if isinstance(clean.get("containers"), list):
        clean["containers"] = [
            {k: v for k, v in c.items() if k not in CONTAINER_READ_ONLY} if isinstance(c, dict)
            else c
            for c in clean["containers"]
        ]
    return clean


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: 3`, `"3"` or `W/"3"` -> 3; `*` or absent -> None."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise SpecInvalid([Violation("If-Match", "generation",
                                     f"must be a deployment generation number, got {value!r}")])
    return int(text)


class DeploymentService:
    def __init__(self, store: Store, facts: PlatformFacts, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.facts = facts
        self.clock = clock

    # ---- reads -------------------------------------------------------------------------

    def get(self, project: str, name: str) -> Deployment:
        with self.store.read() as tx:
            return self._find(tx, project, name, include_deleted=True)

    def by_id(self, deployment_id: str) -> Deployment | None:
        """The deployment with this id (deleted ones too), else None."""
        with self.store.read() as tx:
            return tx.deployments.get(deployment_id)

    def gpus_in_use(self) -> set[int]:
        """The GPU indexes held by any replica, of every project."""
        with self.store.read() as tx:
            return {i for r in tx.replicas.all() for i in r.gpus}

    def page(
        self, project: str, *, limit: int | None = None, offset: int = 0,
        include_deleted: bool = False,
    ) -> tuple[list[Deployment], int]:
        check_project(project)
        with self.store.read() as tx:
            items = tx.deployments.page(project, limit=limit, offset=offset,
                                        include_deleted=include_deleted)
            return items, tx.deployments.count(project, include_deleted=include_deleted)

    def replicas(self, project: str, name: str) -> tuple[Deployment, list[Replica]]:
        with self.store.read() as tx:
            d = self._find(tx, project, name, include_deleted=True)
            return d, tx.replicas.of(d.id)

    def events(self, project: str, name: str, *, limit: int = 100,
               after_id: int = 0) -> list[Event]:
        with self.store.read() as tx:
            d = self._find(tx, project, name, include_deleted=True)
            return tx.events.of(d.id, limit=limit, after_id=after_id)

    def autoscaler(self, project: str, name: str
                   ) -> tuple[Deployment, list[ScaleRecord], list[Replica]]:
        """The deployment, the autoscaler's latest decision per region, and its replicas."""
        with self.store.read() as tx:
            d = self._find(tx, project, name, include_deleted=True)
            return d, tx.autoscaler.of(d.id), tx.replicas.of(d.id)

    def decisions(self, deployment_ids: Iterable[str]) -> dict[str, list[ScaleRecord]]:
        """The autoscaler's latest decisions of these deployments, by deployment id."""
        ids = set(deployment_ids)
        if not ids:
            return {}
        with self.store.read() as tx:
            if len(ids) == 1:  # one deployment's GET: its rows only
                records = tx.autoscaler.of(next(iter(ids)))
            else:
                records = [r for r in tx.autoscaler.all() if r.deployment_id in ids]
        found: dict[str, list[ScaleRecord]] = {}
        for r in records:
            found.setdefault(r.deployment_id, []).append(r)
        return found

    # ---- changes -----------------------------------------------------------------------

    # Each change takes `records`: a dialect's records to write or delete in the same
    # transaction (berth.services.dialect_records); the change's `records` are those written.

    def create(self, project: str, data: Any, records: Sequence[RecordChange] = ()) -> Change:
        check_project(project)
        spec = validate(strip_read_only(data), self.facts)
        now = self.clock()
        d = Deployment(
            id=str(uuid.uuid4()), project=project, name=spec.name, spec=spec, generation=1,
            desired=DesiredState.RUNNING, restart_nonce=0, created_at=now, updated_at=now,
            status=DeploymentStatus.NEW, status_reason="accepted; waiting for the controller",
            status_since=now,
            containers=[ContainerStatus(region=c.region) for c in spec.containers],
        )
        with self.store.write() as tx:
            if tx.deployments.by_name(project, spec.name) is not None:
                raise Conflict(f"deployment {spec.name!r} already exists in project {project!r}",
                               name=spec.name, project=project)
            tx.deployments.insert(d)
            return self._record(tx, d, TaskKind.CREATE, "Created",
                                f"generation 1 accepted: {spec.image}", records)

    def replace(self, project: str, name: str, data: Any, if_match: int | None = None,
                records: Sequence[RecordChange] = ()) -> Change:
        clean = strip_read_only(data)
        if isinstance(clean, dict):
            clean.setdefault("name", name)
        spec = validate(clean, self.facts)
        return self._update(project, name, lambda _old: spec, if_match, records)

    def patch(self, project: str, name: str, patch: Any, if_match: int | None = None,
              records: Sequence[RecordChange] = ()) -> Change:
        if not isinstance(patch, dict):
            raise SpecInvalid([Violation("body", "type", "a merge patch must be a JSON object")])

        def apply(old: DeploymentSpec) -> DeploymentSpec:
            current = old.model_dump(mode="json", by_alias=True, exclude_none=True)
            return validate(merge_patch(current, strip_read_only(patch)), self.facts)

        return self._update(project, name, apply, if_match, records)

    def start(self, project: str, name: str, records: Sequence[RecordChange] = ()) -> Change:
        return self._act(project, name, TaskKind.START, DesiredState.RUNNING, records)

    def stop(self, project: str, name: str, records: Sequence[RecordChange] = ()) -> Change:
        return self._act(project, name, TaskKind.STOP, DesiredState.STOPPED, records)

    def restart(self, project: str, name: str, records: Sequence[RecordChange] = ()) -> Change:
        return self._act(project, name, TaskKind.RESTART, DesiredState.RUNNING, records)

    def delete(self, project: str, name: str, records: Sequence[RecordChange] = ()) -> Change:
        return self._act(project, name, TaskKind.DELETE, DesiredState.DELETED, records)

    def restart_replica(self, project: str, name: str, replica_id: str) -> Change:
        """Replace one replica: the controller surges a new one, then drains this one. The
        spec and generation stay; the task finishes when the replacement has taken over."""
        with self.store.write() as tx:
            d = self._live(tx, project, name)
            if d.desired != DesiredState.RUNNING:
                raise Conflict(f"deployment {name!r} is stopped; start it instead",
                               name=name, project=project)
            r = tx.replicas.get(replica_id)
            if r is None or r.deployment_id != d.id or r.state == ReplicaState.STOPPED:
                raise NotFound(f"replica {replica_id!r} not found in deployment {name!r}",
                               name=name, project=project, replica=replica_id)
            tx.replicas.request_restart(r.id, self.clock())
            return self._record(tx, d, TaskKind.RESTART, "ReplicaRestartRequested",
                                f"replica {r.id} will be replaced")

    # ---- internals ---------------------------------------------------------------------

    def _find(self, tx: Tx, project: str, name: str, *, include_deleted: bool = False
              ) -> Deployment:
        check_project(project)
        d = tx.deployments.by_name(project, name, include_deleted=include_deleted)
        if d is None:
            raise NotFound(f"deployment {name!r} not found in project {project!r}",
                           name=name, project=project)
        return d

    def _live(self, tx: Tx, project: str, name: str) -> Deployment:
        d = self._find(tx, project, name)
        if d.desired == DesiredState.DELETED:
            raise Conflict(f"deployment {name!r} is being deleted", name=name, project=project)
        return d

    def _update(
        self, project: str, name: str, build: Callable[[DeploymentSpec], DeploymentSpec],
        if_match: int | None, records: Sequence[RecordChange],
    ) -> Change:
        with self.store.write() as tx:
            d = self._live(tx, project, name)
            if if_match is not None and if_match != d.generation:
                raise PreconditionFailed(
                    f"deployment {name!r} is at generation {d.generation}, not {if_match}",
                    generation=d.generation, if_match=if_match)
            spec = build(d.spec)
            if spec.name != d.name:
                raise SpecInvalid([Violation("name", "immutable",
                                             f"cannot rename {d.name!r} to {spec.name!r}")])
            changed = spec != d.spec
            if changed:
                d.spec = spec
                d.generation += 1
                d.updated_at = self.clock()
                d.containers = _resize_containers(d.containers, spec)
                tx.deployments.save(d)
            message = (f"generation {d.generation} accepted" if changed
                       else f"no change; generation stays {d.generation}")
            return self._record(tx, d, TaskKind.UPDATE, "Updated", message, records)

    def _act(self, project: str, name: str, kind: TaskKind, desired: DesiredState,
             records: Sequence[RecordChange]) -> Change:
        with self.store.write() as tx:
            d = self._live(tx, project, name)
            if kind == TaskKind.RESTART and d.desired != DesiredState.RUNNING:
                raise Conflict(f"deployment {name!r} is stopped; start it instead",
                               name=name, project=project)
            if d.desired != desired or kind == TaskKind.RESTART:
                d.desired = desired
                d.restart_nonce += kind == TaskKind.RESTART
                d.generation += 1
                d.updated_at = self.clock()
                tx.deployments.save(d)
            reason = {TaskKind.START: "StartRequested", TaskKind.STOP: "StopRequested",
                      TaskKind.RESTART: "RestartRequested", TaskKind.DELETE: "DeleteRequested"}
            return self._record(tx, d, kind, reason[kind],
                                f"generation {d.generation}: {desired.value}", records)

    def _record(self, tx: Tx, d: Deployment, kind: TaskKind, reason: str, message: str,
                records: Sequence[RecordChange] = ()) -> Change:
        """Every change: a task, an event, a new routing version for the gateways, and the
        dialect's records of it."""
        tx.routing.bump()
        now = self.clock()
        task = Task(id=str(uuid.uuid4()), kind=kind, project=d.project, deployment_id=d.id,
                    deployment_name=d.name, generation=d.generation, state=TaskState.NEW,
                    created_at=now, updated_at=now)
        tx.tasks.insert(task)
        tx.events.add(Event(deployment_id=d.id, at=now, kind="Spec", reason=reason,
                            message=message, data={"task_id": task.id}))
        return Change(d, task, apply_records(tx, records, d, task, now))


def _resize_containers(old: list[ContainerStatus], spec: DeploymentSpec) -> list[ContainerStatus]:
    by_region = {c.region: c for c in old}
    return [by_region.get(c.region, ContainerStatus(region=c.region)) for c in spec.containers]
