"""The async queue on the gateway's /metrics: the backlog as the dispatcher last read it
(every gateway reads the same store), and what this gateway accepted and dispatched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from berth.store.invocations import Backlog

if TYPE_CHECKING:
    from berth.gateway.service import Gateway


class AsyncCollector(Collector):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "deployment"]
        queued = GaugeMetricFamily("berth_async_queued_requests",
                                   "Async requests waiting to be sent", labels=labels)
        running = GaugeMetricFamily("berth_async_running_requests",
                                    "Async requests being sent (leased)", labels=labels)
        oldest = GaugeMetricFamily("berth_async_oldest_request_age_seconds",
                                   "Age of the oldest waiting or running request",
                                   labels=labels)
        dispatched = CounterMetricFamily("berth_async_dispatched",
                                         "Tries sent to a replica by this gateway",
                                         labels=labels)
        retried = CounterMetricFamily("berth_async_retried",
                                      "Tries that failed and were queued again", labels=labels)
        ended = CounterMetricFamily("berth_async_completed",
                                    "Requests finished by this gateway, by status",
                                    labels=[*labels, "status"])
        accepted = CounterMetricFamily("berth_async_accepted",
                                       "Async requests stored by this gateway's intake")
        refused = CounterMetricFamily("berth_async_refused",
                                      "Async requests this gateway's intake refused")
        table = self.gw.table.by_id
        now = time.time()
        dispatcher = self.gw.dispatcher
        backlog = dispatcher.backlog
        for d_id, route in sorted(table.items()):
            if d_id not in backlog and not (route.invocations and route.invocations.enabled):
                continue
            b = backlog.get(d_id, Backlog())
            values = [route.project, route.name]
            queued.add_metric(values, b.queued)
            running.add_metric(values, b.running)
            if b.oldest_at is not None:
                oldest.add_metric(values, max(0.0, now - b.oldest_at))
        for d_id, c in sorted(dispatcher.counters.items()):
            counted = table.get(d_id)
            if counted is None:
                continue
            values = [counted.project, counted.name]
            dispatched.add_metric(values, c.dispatched)
            retried.add_metric(values, c.retried)
            for status, n in sorted(c.ended.items()):
                ended.add_metric([*values, status], n)
        accepted.add_metric([], self.gw.intake.accepted)
        refused.add_metric([], self.gw.intake.refused)
        yield from (queued, running, oldest, dispatched, retried, ended, accepted, refused)
