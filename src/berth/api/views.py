"""Domain records -> native wire models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from berth.api.v1.models import (
    AutoscalerMetricOut,
    AutoscalerOut,
    AutoscalerRegionOut,
    DeploymentOut,
    EventOut,
    FlavorOut,
    GpuOut,
    LogLineOut,
    RegionOut,
    ReplicaOut,
    ReplicaStatsOut,
    TaskOut,
)
from berth.autoscaler.sources import serving_replicas
from berth.domain.platform import Flavor, PlatformFacts, Region
from berth.domain.records import Deployment, Event, Replica, Task
from berth.domain.status import DesiredState
from berth.domain.units import format_size
from berth.runtime.base import LogLine, ReplicaStats
from berth.store.autoscaler import ScaleRecord


def deployment_body(d: Deployment, address: str | None = None,
                    decisions: list[ScaleRecord] | None = None) -> dict[str, Any]:
    """The `DeploymentOut` shape as plain JSON data, built without re-validating the spec.
    `decisions`: the autoscaler's, for each container's `desired`."""
    body = d.spec.model_dump(mode="json", by_alias=True)
    status_by_region = {c.region: c for c in d.containers}
    desired = desired_counts(d, decisions or [])
    for container in body["containers"]:
        st = status_by_region.get(container["region"])
        container["deploy_status"] = {"ready": st.ready if st else 0,
                                      "total": st.total if st else 0}
        container["error_message"] = st.error if st else ""
        container["desired"] = desired.get(container["region"])
    body.update(id=d.id, project=d.project, generation=d.generation,
                observed_generation=d.observed_generation, desired_state=d.desired.value,
                status=d.status.value, status_reason=d.status_reason,
                status_since=_iso(d.status_since), address=address,
                created_at=_iso(d.created_at), updated_at=_iso(d.updated_at))
    return body


def deployment_out(d: Deployment, address: str | None = None,
                   decisions: list[ScaleRecord] | None = None) -> DeploymentOut:
    return DeploymentOut.model_validate(deployment_body(d, address, decisions))


def desired_counts(d: Deployment, records: list[ScaleRecord]) -> Mapping[str, int]:
    """Region -> the count the controller runs: the stored decision within the spec's
    [min, max] (the spec may have changed since). A deployment not running has none."""
    if d.desired != DesiredState.RUNNING:
        return {}
    by_region = {r.region: r for r in records}
    counts: dict[str, int] = {}
    for c in d.spec.containers:
        rec = by_region.get(c.region)
        if rec is not None:
            counts[c.region] = min(max(rec.desired, c.scale.min), c.scale.max)
    return counts


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def task_out(t: Task) -> TaskOut:
    return TaskOut(id=t.id, kind=t.kind, state=t.state, project=t.project,
                   deployment=t.deployment_name, deployment_id=t.deployment_id,
                   generation=t.generation, error=t.error, message=t.message,
                   created_at=t.created_at, updated_at=t.updated_at)


def replica_out(r: Replica, stats: ReplicaStats | None) -> ReplicaOut:
    return ReplicaOut(
        id=r.id, region=r.region, state=r.state, reason=r.reason, ready=r.ready, port=r.port,
        pid=r.pid, restarts=r.restarts, generation=r.generation, gpus=r.gpus,
        started_at=r.started_at, exit_code=r.exit_code, last_error=r.last_error,
        stats=ReplicaStatsOut(cpu_percent=stats.cpu_percent, memory_bytes=stats.memory_bytes,
                              processes=stats.processes) if stats else None)


def event_out(e: Event) -> EventOut:
    return EventOut(id=e.id, at=e.at, kind=e.kind, reason=e.reason, message=e.message,
                    replica_id=e.replica_id)


def log_out(line: LogLine) -> LogLineOut:
    return LogLineOut(ts=datetime.fromtimestamp(line.ts, UTC), replica_id=line.replica_id,
                      stream=line.stream, line=line.line)


def flavor_out(f: Flavor) -> FlavorOut:
    return FlavorOut(name=f.name, cpu=f.cpu, memory=format_size(f.memory_bytes),
                     memory_bytes=f.memory_bytes, gpus=f.gpus, gpu_model=f.gpu_model,
                     gpu_memory_mib=f.gpu_memory_mib,
                     gpu_compute_capability=f.gpu_compute_capability,
                     description=f.description)


def region_out(r: Region, facts: PlatformFacts) -> RegionOut:
    return RegionOut(name=r.name, runtime=r.runtime, runs_images=r.runs_images,
                     cpus=facts.cpus, memory_bytes=facts.memory_bytes,
                     gpus=[GpuOut(index=g.index, model=g.model, memory_mib=g.memory_mib)
                           for g in facts.gpus])


def autoscaler_out(d: Deployment, records: list[ScaleRecord],
                   replicas: list[Replica]) -> AutoscalerOut:
    """Per region of the spec: the stored decision, or (not decided yet, or the deployment
    is not running) the count the controller falls back to."""
    by_region = {r.region: r for r in records}
    regions: list[AutoscalerRegionOut] = []
    for c in d.spec.containers:
        current = len(serving_replicas(d, replicas, c.region))
        rec = by_region.get(c.region)
        if rec is None:
            running = d.desired == DesiredState.RUNNING
            why = "not decided yet" if running else f"deployment {d.desired.value}"
            regions.append(AutoscalerRegionOut(
                region=c.region, current=current, desired=c.scale.min if running else 0,
                min=c.scale.min,
                max=c.scale.max, panic=False, reasons=[why], metrics={}))
            continue
        regions.append(AutoscalerRegionOut(
            region=c.region, current=current,
            desired=min(max(rec.desired, c.scale.min), c.scale.max),
            min=c.scale.min, max=c.scale.max, panic=rec.panic, reasons=rec.reasons,
            metrics={k: AutoscalerMetricOut.model_validate(v) for k, v in rec.metrics.items()},
            last_scale_at=_at(rec.last_scale_at), decided_at=_at(rec.decided_at)))
    return AutoscalerOut(regions=regions)


def _at(unix: float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)
