from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from berth.controller.lifecycle import step_replica
from berth.controller.plan import desired_replicas
from berth.controller.policy import Policy
from berth.controller.traffic import TrafficView, traffic_view
from berth.domain.records import ApiKey
from berth.domain.status import DesiredState
from berth.domain.status import ReplicaState as S
from berth.gateway.table import build_table, unavailable_reason
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ProcessObservation
from berth.store.routing import GatewayReport
from tests.fakes.builders import T0, at, deployment, replica


def test_table_routes_only_ready_running_replicas_and_keeps_balancers() -> None:
    d = deployment(2, api_keys=["k1"], per_worker=3)
    rows = [replica(d, "a"), replica(d, "b", ready=False),
            replica(d, "c", S.DRAINING, ready=False)]
    key = ApiKey(id="1", project="p", name="k1", description="", digest="ab", prefix="bk_",
                 created_at=T0, expires_at=None)
    first = build_table(3, [d], rows, [key], None)
    route = first.routes[("p", "echo")]
    assert [b.replica_id for b in route.balancer.backends] == ["a"]
    assert route.keys == frozenset({"k1"}) and route.balancer.cap == 3
    assert first.keys["ab"].name == "k1" and first.version == 3
    slot = route.balancer.try_acquire()
    second = build_table(4, [d], [*rows[:1], replica(d, "b")], [], first)
    kept = second.routes[("p", "echo")].balancer
    assert kept is route.balancer and slot is not None and slot.inflight == 1
    assert second.keys == {}


def test_deleted_deployments_leave_the_table() -> None:
    d = deployment(1, desired=DesiredState.DELETED)
    assert build_table(1, [d], [], [], None).routes == {}


def test_min_zero_marks_scale_from_zero() -> None:
    d = deployment(0)
    route = build_table(1, [d], [], [], None).routes[("p", "echo")]
    assert route.from_zero and not route.needs_key


@pytest.mark.parametrize(("desired", "scales", "reason"), [
    (DesiredState.RUNNING, [(1, 1)], ""),
    (DesiredState.RUNNING, [(0, 2)], ""),  # scales from zero: a request wakes it
    (DesiredState.RUNNING, [(0, 0)], "deployment p/echo is scaled to max 0; no replica can "
                                     "serve it"),
    (DesiredState.STOPPED, [(1, 1)], "deployment p/echo is stopped; start it to serve requests"),
    (DesiredState.STOPPED, [(0, 0)], "deployment p/echo is stopped; start it to serve requests"),
])
def test_why_no_replica_can_come(desired: DesiredState, scales: list[tuple[int, int]],
                                 reason: str) -> None:
    containers: list[dict[str, Any]] = [
        {"region": f"r{i}", "scale": {"min": lo, "max": hi}} for i, (lo, hi) in enumerate(scales)]
    assert unavailable_reason(deployment(1, desired, containers=containers)) == reason


def test_traffic_view_merges_live_gateways_and_ignores_dead_ones() -> None:
    now = 1000.0
    reports = [
        GatewayReport("g1", 7, now - 1, inflight={"a": 2}, last_request={"d1": 990.0}),
        GatewayReport("g2", 5, now - 2, inflight={"a": 1, "b": 1}, waiting={"d1": 3},
                      last_request={"d1": 995.0}),
        GatewayReport("dead", 1, now - 60, inflight={"a": 9}),
    ]
    view = traffic_view(reports, now)
    assert view.acked_version == 5
    assert view.inflight == {"a": 3, "b": 1} and view.waiting == {"d1": 3}
    assert view.last_request == {"d1": 995.0}
    assert traffic_view([], now) == TrafficView()


def test_drain_waits_for_every_gateway_and_in_flight_requests() -> None:
    d = deployment(1)
    r = replica(d, "a", S.DRAINING, ready=False, drain_version=8, state_deadline=at(60))
    alive = ProcessObservation("a", alive=True)
    verdict = ProbeVerdict(True, False)
    policy = Policy(drain_seconds=0)
    for view in (TrafficView(acked_version=7), TrafficView(acked_version=8, inflight={"a": 1})):
        step = step_replica(r, alive, verdict, policy, at(1), released=view.released(r))
        assert step.replica.state == S.DRAINING
    done = TrafficView(acked_version=8)
    step = step_replica(r, alive, verdict, policy, at(1), released=done.released(r))
    assert step.replica.state == S.STOPPING
    late = step_replica(r, alive, verdict, policy, at(61), released=False)  # grace is over
    assert late.replica.state == S.STOPPING
    assert TrafficView().released(r)  # no gateway at all: nothing to wait for


def test_scale_from_zero_and_back_after_the_idle_timeout() -> None:
    d = deployment(0, timeout=60,
                   containers=[{"region": "local", "scale": {"min": 0, "max": 3}}])
    assert desired_replicas(d, 0, at(0)) == {"local": 0}
    assert desired_replicas(d, 2, at(0)) == {"local": 1}  # requests are waiting
    busy = replace(d, last_request_at=at(100))
    assert desired_replicas(busy, 0, at(159)) == {"local": 1}
    assert desired_replicas(busy, 0, at(161)) == {"local": 0}
    assert desired_replicas(deployment(0), 4, at(0)) == {"local": 0}  # max 0: stays off
    fixed = deployment(2)
    assert desired_replicas(fixed, 5, T0 + timedelta(hours=1)) == {"local": 2}
