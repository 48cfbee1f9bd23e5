"""Gateway metrics: plain counters on the hot path, Prometheus families at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from berth.gateway.stats import DeploymentStats
from berth.gateway.table import Route


class GatewayMetrics:
    def __init__(self) -> None:
        self.stats: dict[str, DeploymentStats] = {}
        self.routes: dict[str, Route] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

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
