"""The autoscaler's stored decisions on the gateway's /metrics: names, labels, values."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from berth.gateway.balancer import Balancer
from berth.gateway.metrics import GatewayMetrics, named_decisions
from berth.gateway.service import Gateway
from berth.gateway.table import Route, RoutingTable, build_table
from berth.store.autoscaler import ScaleRecord
from berth.store.engine import Store
from tests.fakes.builders import deployment

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes) -> Samples:
    """Each sample of the exposition, keyed by its name and sorted labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def table(*routes: tuple[str, str, str]) -> RoutingTable:
    t = RoutingTable(version=1)
    for d_id, project, name in routes:
        t.by_id[d_id] = Route(deployment_id=d_id, project=project, name=name,
                              balancer=Balancer())
    return t


def record(d_id: str = "d1", region: str = "local", **kw: object) -> ScaleRecord:
    data: dict[str, object] = {
        "desired": 3, "current": 2, "panic": True, "decided_at": 1700000010.0,
        "last_scale_at": 1700000005.0, "reasons": ["concurrency 5.0 / target 2 wants 3"],
        "metrics": {
            "concurrency": {"value": 5.0, "target": 2.0, "age_seconds": 0.5, "wants": 3,
                            "status": "ok"},
            "gpu_utilization": {"value": None, "target": 80.0, "age_seconds": None,
                                "wants": None, "status": "unavailable: no NVML"},
        },
    }
    data.update(kw)
    return ScaleRecord(deployment_id=d_id, region=region, **data)  # type: ignore[arg-type]


def test_each_decision_is_a_set_of_gauges_labelled_by_deployment_and_region() -> None:
    m = GatewayMetrics()
    m.decisions = named_decisions([record()], table(("d1", "team", "echo")))
    got = samples(m.render())
    base = (("deployment", "echo"), ("project", "team"), ("region", "local"))
    assert got[("berth_autoscaler_desired_replicas", base)] == 3
    assert got[("berth_autoscaler_current_replicas", base)] == 2
    assert got[("berth_autoscaler_panic", base)] == 1
    assert got[("berth_autoscaler_decided_timestamp_seconds", base)] == 1700000010.0
    assert got[("berth_autoscaler_last_scale_timestamp_seconds", base)] == 1700000005.0
    conc = tuple(sorted((*base, ("metric", "concurrency"))))
    gpu = tuple(sorted((*base, ("metric", "gpu_utilization"))))
    assert got[("berth_autoscaler_metric_value", conc)] == 5.0
    assert got[("berth_autoscaler_metric_target", conc)] == 2.0
    assert got[("berth_autoscaler_metric_age_seconds", conc)] == 0.5
    # An unavailable trigger has its target, and no made-up value or age.
    assert got[("berth_autoscaler_metric_target", gpu)] == 80.0
    assert ("berth_autoscaler_metric_value", gpu) not in got
    assert ("berth_autoscaler_metric_age_seconds", gpu) not in got


def test_not_in_panic_is_0_and_never_scaled_has_no_last_scale() -> None:
    m = GatewayMetrics()
    m.decisions = named_decisions([record(panic=False, last_scale_at=None, metrics={})],
                                  table(("d1", "p", "echo")))
    got = samples(m.render())
    base = (("deployment", "echo"), ("project", "p"), ("region", "local"))
    assert got[("berth_autoscaler_panic", base)] == 0
    assert not [k for k in got if k[0] == "berth_autoscaler_last_scale_timestamp_seconds"]
    assert not [k for k in got if k[0].startswith("berth_autoscaler_metric_")]


def test_decisions_of_deployments_no_longer_routed_are_left_out() -> None:
    named = named_decisions([record("gone"), record("d1", "b"), record("d1", "a")],
                            table(("d1", "p", "echo")))
    assert [(n.deployment, n.record.region) for n in named] == [("echo", "a"), ("echo", "b")]


def test_label_values_are_escaped() -> None:
    odd = 'we"ird\\name\nx'
    m = GatewayMetrics()
    m.decisions = named_decisions([record(region=odd)], table(("d1", "p", "echo")))
    text = m.render()
    assert b'region="we\\"ird\\\\name\\nx"' in text
    got = samples(text)
    assert got[("berth_autoscaler_desired_replicas",
                (("deployment", "echo"), ("project", "p"), ("region", odd)))] == 3


def test_the_gateway_reads_the_stored_decisions_off_the_event_loop(store: Store) -> None:
    d = deployment(1)
    with store.write() as tx:
        tx.deployments.insert(d)
        tx.autoscaler.save(record(d.id))

    async def read() -> Gateway:
        gw = Gateway(store)
        gw.loop = asyncio.get_running_loop()
        gw.table = build_table(1, [d], [], [], None)
        await gw.refresh_decisions()
        return gw

    gw = asyncio.run(read())
    got = samples(gw.metrics.render())
    base = (("deployment", d.name), ("project", d.project), ("region", "local"))
    assert got[("berth_autoscaler_desired_replicas", base)] == 3
