"""Builders for domain records used across unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from berth.domain.platform import Gpu, PlatformFacts, Region, machine_flavors
from berth.domain.records import ContainerStatus, Deployment, Replica
from berth.domain.status import DesiredState, ReplicaState
from berth.domain.validation import parse_spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def facts(gpus: tuple[Gpu, ...] = ()) -> PlatformFacts:
    return PlatformFacts(
        regions={"local": Region("local", "process")}, cpus=8, memory_bytes=32 * 2**30,
        gpus=gpus, catalog=frozenset({"catalog/echo"}), max_threads=64,
        flavors=machine_flavors(8, 32 * 2**30, gpus))


def deployment(replicas: int = 2, desired: DesiredState = DesiredState.RUNNING,
               **spec: Any) -> Deployment:
    data = {"name": "echo", "image": "catalog/echo",
            "containers": [{"region": "local", "scale": {"min": replicas, "max": replicas}}],
            **spec}
    return Deployment(id="d1", project="p", name="echo", spec=parse_spec(data), generation=1,
                      desired=desired, restart_nonce=0, created_at=T0, updated_at=T0,
                      containers=[ContainerStatus("local")])


def replica(d: Deployment, rid: str, state: ReplicaState = ReplicaState.RUNNING, *,
            ready: bool = True, template: str | None = None, created: float = 0,
            **kw: Any) -> Replica:
    return Replica(id=rid, deployment_id=d.id, region="local",
                   template=template or d.template, generation=d.generation, state=state,
                   reason="", since=at(created), created_at=at(created), ready=ready,
                   port=9000, pid=100, started_at=at(created), **kw)
