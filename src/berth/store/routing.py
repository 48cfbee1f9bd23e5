"""The routing version and the gateways' reports.

Every change that alters what a gateway must route (a replica becoming ready or leaving, a
spec or key change) bumps one counter; gateways rebuild their table when it moves and report
the version they serve, their in-flight requests per replica and the last request time per
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from berth.store import counters
from berth.store.schema import gateways as g

ROUTING = "routing"


@dataclass(frozen=True)
class GatewayReport:
    id: str
    version: int
    seen_at: float
    inflight: dict[str, int] = field(default_factory=dict)  # replica id -> requests
    last_request: dict[str, float] = field(default_factory=dict)  # deployment id -> unix time
    waiting: dict[str, int] = field(default_factory=dict)  # deployment id -> queued requests
    requests: dict[str, int] = field(default_factory=dict)  # deployment id -> answered, ever
    # deployment id -> in-flight + waiting requests integrated over time (request-seconds)
    busy_seconds: dict[str, float] = field(default_factory=dict)


class RoutingRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def version(self) -> int:
        return counters.value(self.conn, ROUTING)

    def bump(self) -> int:
        """Advance the routing version (inside the writer's transaction) and return it."""
        return counters.increment(self.conn, ROUTING)

    def report(self, r: GatewayReport) -> None:
        body: dict[str, Any] = {"inflight": r.inflight, "last_request": r.last_request,
                                "waiting": r.waiting, "requests": r.requests,
                                "busy_seconds": r.busy_seconds}
        updated = self.conn.execute(g.update().where(g.c.id == r.id).values(
            version=r.version, seen_at=r.seen_at, report=body))
        if updated.rowcount == 0:
            self.conn.execute(g.insert().values(id=r.id, version=r.version, seen_at=r.seen_at,
                                                report=body))

    def gateways(self, since: float) -> list[GatewayReport]:
        """Gateways heard from after `since` (unix time)."""
        rows = self.conn.execute(select(g).where(g.c.seen_at >= since))
        return [GatewayReport(id=r.id, version=r.version, seen_at=r.seen_at,
                              inflight=dict(r.report.get("inflight", {})),
                              last_request=dict(r.report.get("last_request", {})),
                              waiting=dict(r.report.get("waiting", {})),
                              requests=dict(r.report.get("requests", {})),
                              busy_seconds=dict(r.report.get("busy_seconds", {})))
                for r in rows]

    def forget(self, gateway_id: str) -> None:
        self.conn.execute(g.delete().where(g.c.id == gateway_id))
