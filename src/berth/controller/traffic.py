"""What the gateways report, as one pure view the decisions read."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.domain.records import Replica
from berth.store.routing import GatewayReport

LIVE_SECONDS = 5.0  # a gateway not heard from for this long no longer holds drains back


@dataclass(frozen=True)
class TrafficView:
    acked_version: int | None = None  # routing version every live gateway serves; None: none
    inflight: dict[str, int] = field(default_factory=dict)  # replica id -> requests
    waiting: dict[str, int] = field(default_factory=dict)  # deployment id -> held requests
    last_request: dict[str, float] = field(default_factory=dict)  # deployment id -> unix time
    requests: dict[str, int] = field(default_factory=dict)  # deployment id -> answered, ever
    busy_seconds: dict[str, float] = field(default_factory=dict)  # deployment -> request-s
    reported_at: float | None = None  # unix time of the oldest live report: the data's age

    def released(self, r: Replica) -> bool:
        """No gateway routes to this draining replica any more, and none has a request on it."""
        if self.inflight.get(r.id, 0):
            return False
        if self.acked_version is None:
            return True
        return r.drain_version is not None and self.acked_version >= r.drain_version


def traffic_view(reports: list[GatewayReport], now: float) -> TrafficView:
    live = [g for g in reports if now - g.seen_at <= LIVE_SECONDS]
    if not live:
        return TrafficView()
    inflight: dict[str, int] = {}
    waiting: dict[str, int] = {}
    last: dict[str, float] = {}
    requests: dict[str, int] = {}
    busy: dict[str, float] = {}
    for g in live:
        for rid, n in g.inflight.items():
            inflight[rid] = inflight.get(rid, 0) + n
        for d_id, n in g.waiting.items():
            waiting[d_id] = waiting.get(d_id, 0) + n
        for d_id, at in g.last_request.items():
            last[d_id] = max(last.get(d_id, 0.0), at)
        for d_id, n in g.requests.items():
            requests[d_id] = requests.get(d_id, 0) + n
        for d_id, seconds in g.busy_seconds.items():
            busy[d_id] = busy.get(d_id, 0.0) + seconds
    return TrafficView(acked_version=min(g.version for g in live), inflight=inflight,
                       waiting=waiting, last_request=last, requests=requests, busy_seconds=busy,
                       reported_at=min(g.seen_at for g in live))
