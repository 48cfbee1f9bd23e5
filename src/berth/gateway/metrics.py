"""Gateway metrics: plain counters on the hot path, Prometheus families at scrape time; and
the autoscaler's stored decisions, read from the store off the event loop (service.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from berth.gateway.stats import DeploymentStats
from berth.gateway.table import Route, RoutingTable
from berth.store.autoscaler import ScaleRecord


@dataclass(frozen=True)
class NamedDecision:
    """A stored autoscaler decision with the names its deployment is shown under."""

    project: str
    deployment: str
    record: ScaleRecord


def named_decisions(records: Iterable[ScaleRecord], table: RoutingTable) -> list[NamedDecision]:
    """The decisions of the deployments `table` routes (a deleted one's are left out)."""
    named: list[NamedDecision] = []
    for r in records:
        route = table.by_id.get(r.deployment_id)
        if route is not None:
            named.append(NamedDecision(route.project, route.name, r))
    named.sort(key=lambda n: (n.project, n.deployment, n.record.region))
    return named


class GatewayMetrics:
    def __init__(self) -> None:
        self.stats: dict[str, DeploymentStats] = {}
        self.routes: dict[str, Route] = {}
        self.decisions: list[NamedDecision] = []  # replaced whole, never changed in place
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self.registry.register(_AutoscalerCollector(self))

    def of(self, route: Route) -> DeploymentStats:
        s = route.stats
        if s is None:
            s = self.stats.get(route.deployment_id)
            if s is None:
                s = self.stats[route.deployment_id] = DeploymentStats(route.project, route.name)
            self.routes[route.deployment_id] = route
            route.stats = s
        return s

    def queued(self, route: Route, delta: int) -> None:
        self.of(route).queued += delta

    def waited(self, route: Route, seconds: float) -> None:
        self.of(route).queue_wait.observe(seconds)

    def shed(self, route: Route, reason: str) -> None:
        s = self.of(route)
        s.shed[reason] = s.shed.get(reason, 0) + 1

    def retried(self, route: Route) -> None:
        self.of(route).retries += 1

    def cold_started(self, route: Route, seconds: float) -> None:
        self.of(route).cold_start.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "deployment"]
        requests = CounterMetricFamily("berth_gateway_requests", "Requests answered, by status",
                                       labels=[*labels, "code"])
        latency = HistogramMetricFamily("berth_gateway_request_duration_seconds",
                                        "Whole request duration", labels=labels)
        ttfb = HistogramMetricFamily("berth_gateway_time_to_first_byte_seconds",
                                     "Request start to response headers", labels=labels)
        wait = HistogramMetricFamily("berth_gateway_queue_wait_seconds",
                                     "Time waiting for a replica slot", labels=labels)
        cold = HistogramMetricFamily("berth_gateway_cold_start_seconds",
                                     "First request to a scaled-to-zero deployment: wait for a "
                                     "replica", labels=labels)
        shed = CounterMetricFamily("berth_gateway_shed", "Requests refused by the gateway",
                                   labels=[*labels, "reason"])
        retries = CounterMetricFamily("berth_gateway_retries",
                                      "Requests retried on another replica", labels=labels)
        inflight = GaugeMetricFamily("berth_gateway_inflight_requests",
                                     "Requests being served", labels=labels)
        queued = GaugeMetricFamily("berth_gateway_queued_requests",
                                   "Requests waiting for a replica", labels=labels)
        last = GaugeMetricFamily("berth_gateway_last_request_timestamp_seconds",
                                 "Unix time of the last request", labels=labels)
        replica = GaugeMetricFamily("berth_gateway_replica_inflight_requests",
                                    "Requests in flight per replica", labels=[*labels, "replica"])
        for d_id, s in list(self.metrics.stats.items()):
            values = [s.project, s.name]
            for code, count in sorted(s.responses.items()):
                requests.add_metric([*values, str(code)], count)
            for family, hist in ((latency, s.latency), (ttfb, s.ttfb), (wait, s.queue_wait),
                                 (cold, s.cold_start)):
                family.add_metric(values, hist.buckets(), hist.total)
            for reason, count in sorted(s.shed.items()):
                shed.add_metric([*values, reason], count)
            retries.add_metric(values, s.retries)
            queued.add_metric(values, s.queued)
            last.add_metric(values, s.last_request)
            route = self.metrics.routes.get(d_id)
            if route is not None:
                inflight.add_metric(values, route.balancer.inflight())
                for rid, n in route.balancer.inflight_by_replica().items():
                    replica.add_metric([*values, rid], n)
                for b in route.balancer.backends:
                    if not b.inflight:
                        replica.add_metric([*values, b.replica_id], 0)
        yield from (requests, latency, ttfb, wait, cold, shed, retries, inflight, queued, last,
                    replica)


class _AutoscalerCollector(Collector):
    """The autoscaler's latest decision per deployment region, as the store holds it."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "deployment", "region"]
        desired = GaugeMetricFamily("berth_autoscaler_desired_replicas",
                                    "Replicas the autoscaler decided on", labels=labels)
        current = GaugeMetricFamily("berth_autoscaler_current_replicas",
                                    "Replicas running or starting when it decided",
                                    labels=labels)
        panic = GaugeMetricFamily("berth_autoscaler_panic",
                                  "1 while the region is in panic mode", labels=labels)
        decided = GaugeMetricFamily("berth_autoscaler_decided_timestamp_seconds",
                                    "Unix time of the latest decision", labels=labels)
        scaled = GaugeMetricFamily("berth_autoscaler_last_scale_timestamp_seconds",
                                   "Unix time the count last changed", labels=labels)
        value = GaugeMetricFamily("berth_autoscaler_metric_value",
                                  "A trigger's window average, in its unit",
                                  labels=[*labels, "metric"])
        target = GaugeMetricFamily("berth_autoscaler_metric_target",
                                   "A trigger's per-replica target", labels=[*labels, "metric"])
        age = GaugeMetricFamily("berth_autoscaler_metric_age_seconds",
                                "Age of a trigger's newest sample when it decided",
                                labels=[*labels, "metric"])
        for n in self.metrics.decisions:
            r = n.record
            values = [n.project, n.deployment, r.region]
            desired.add_metric(values, r.desired)
            current.add_metric(values, r.current)
            panic.add_metric(values, 1 if r.panic else 0)
            decided.add_metric(values, r.decided_at)
            if r.last_scale_at is not None:
                scaled.add_metric(values, r.last_scale_at)
            for key, reading in sorted(r.metrics.items()):
                keyed = [*values, key]
                target.add_metric(keyed, float(reading.get("target") or 0.0))
                # No fresh sample (stale, unavailable): no value, rather than a made-up 0.
                if reading.get("value") is not None:
                    value.add_metric(keyed, float(reading["value"]))
                if reading.get("age_seconds") is not None:
                    age.add_metric(keyed, float(reading["age_seconds"]))
        yield from (desired, current, panic, decided, scaled, value, target, age)
