"""The routing table: what a gateway serves, built from the store and versioned."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from berth.domain.records import ApiKey, Deployment, Replica
from berth.domain.spec import AsyncConfig
from berth.domain.status import DesiredState
from berth.gateway.balancer import Balancer
from berth.gateway.stats import DeploymentStats


@dataclass(frozen=True)
class KeyEntry:
    project: str
    name: str
    expires_at: float | None
    log_name: str  # its name as a JSON string, for the access log


@dataclass(eq=False)
class Route:
    deployment_id: str
    project: str
    name: str
    balancer: Balancer
    keys: frozenset[str] | None = None  # allowed key names; None with auth_any: any of project
    auth_any: bool = False
    first_byte: float = 300.0
    idle: float = 120.0
    total: float = 1800.0
    queue_timeout: float = 60.0
    from_zero: bool = False  # some region may scale to zero: hold requests and wake it
    flush_all: bool = False  # ingress.disable_response_buffering
    stats: DeploymentStats | None = None  # the metrics of this deployment (set on first use)
    log_names: str = ""  # its access-log fields, formatted once
    invocations: AsyncConfig | None = None  # spec.async: the async intake's settings

    def __post_init__(self) -> None:
        self.log_names = f'"project":"{self.project}","deployment":"{self.name}"'

    @property
    def needs_key(self) -> bool:
        return self.auth_any or self.keys is not None


@dataclass(eq=False)
class RoutingTable:
    version: int = 0
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    by_bytes: dict[tuple[bytes, bytes], Route] = field(default_factory=dict)  # wire lookups
    by_id: dict[str, Route] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)  # secret digest -> key
    # Filled as requests come (service.py), and dropped with the table on any change:
    by_path: dict[bytes, tuple[Route, bytes]] = field(default_factory=dict)  # path -> route
    by_auth: dict[bytes, KeyEntry] = field(default_factory=dict)  # Authorization value -> key
    by_api_key: dict[bytes, KeyEntry] = field(default_factory=dict)  # X-Api-Key value -> key


def build_table(version: int, deployments: list[Deployment], replicas: list[Replica],
                keys: list[ApiKey], previous: RoutingTable | None) -> RoutingTable:
    """A new table; each deployment keeps its balancer (and so its in-flight counts)."""
    old = previous.by_id if previous else {}
    ready: dict[str, list[tuple[str, str, int]]] = {}
    for r in replicas:
        if r.routable:
            assert r.port is not None
            ready.setdefault(r.deployment_id, []).append((r.id, "127.0.0.1", r.port))
    table = RoutingTable(version=version)
    for d in deployments:
        if d.desired == DesiredState.DELETED:
            continue
        spec = d.spec
        prior = old.get(d.id)
        balancer = prior.balancer if prior else Balancer()
        balancer.update(sorted(ready.get(d.id, [])), spec.per_worker, spec.max_queued_requests,
                        unavailable_reason(d))
        route = Route(
            deployment_id=d.id, project=d.project, name=d.name, balancer=balancer,
            keys=frozenset(spec.api_keys) if spec.api_keys is not None else None,
            auth_any=bool(spec.auth_enabled), first_byte=spec.timeouts.first_byte,
            idle=spec.timeouts.idle, total=spec.timeouts.total, queue_timeout=spec.queue_timeout,
            from_zero=d.desired == DesiredState.RUNNING
            and any(c.scale.min == 0 for c in spec.containers),
            flush_all=spec.ingress.disable_response_buffering, invocations=spec.async_,
        )
        table.routes[(d.project, d.name)] = route
        table.by_bytes[(d.project.encode(), d.name.encode())] = route
        table.by_id[d.id] = route
    for d_id, route in old.items():
        if d_id not in table.by_id:
            route.balancer.update([], None, 0, f"deployment {route.project}/{route.name} "
                                  "was deleted")  # gone: its waiters are answered
    for k in keys:
        table.keys[k.digest] = KeyEntry(k.project, k.name, _ts(k.expires_at),
                                           f'"{k.name}"')
    return table


def unavailable_reason(d: Deployment) -> str:
    """Why no replica of `d` can ever come (so a request is answered at once), or ""."""
    if d.desired == DesiredState.STOPPED:
        return f"deployment {d.project}/{d.name} is stopped; start it to serve requests"
    if all(c.scale.max == 0 for c in d.spec.containers):
        return f"deployment {d.project}/{d.name} is scaled to max 0; no replica can serve it"
    return ""


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None
