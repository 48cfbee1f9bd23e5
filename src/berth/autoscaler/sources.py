"""Where the autoscaler's samples come from: the gateways' reports, the runtime's stats, the
GPUs (NVML) and the replicas' own Prometheus endpoints. Each sample carries the time its
source measured it; a source that cannot be read says why instead."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from berth.autoscaler.decide import Sample
from berth.autoscaler.policy import Trigger, TriggerKind
from berth.controller.traffic import TrafficView
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Replica
from berth.domain.spec import Resources
from berth.domain.status import ReplicaState
from berth.runtime.base import Runtime
from berth.runtime.nvml import GpuUsage

S = ReplicaState
SCRAPE_SECONDS = 1.0
SCRAPE_BYTES = 1 << 20  # a metrics page larger than this is refused, not parsed


def serving_replicas(d: Deployment, rows: Iterable[Replica], region: str) -> list[Replica]:
    """The region's replicas of the current spec that count: starting ones too, not those
    leaving or asked to restart (their replacements count instead)."""
    return [r for r in rows if r.region == region and r.template == d.template
            and r.state in S.live() and r.restart_requested_at is None]


@dataclass
class CounterRate:
    """A per-second rate from a counter the gateways sum (answered requests; request-seconds
    in flight, whose rate is the mean concurrency). A counter that went down — a gateway
    restarted or stopped reporting — only starts a new baseline: no sample, never a spike."""

    source: str
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)  # deployment -> n, at

    def sample(self, deployment_id: str, count: float, at: float) -> Sample | None:
        before = self.seen.get(deployment_id)
        self.seen[deployment_id] = (count, at)
        if before is None or at <= before[1] or count < before[0]:
            return None
        return Sample(self.source, (count - before[0]) / (at - before[1]), at)

    def forget(self, keep: set[str]) -> None:
        for d_id in set(self.seen) - keep:
            del self.seen[d_id]


@dataclass
class GatewayMeters:
    requests: CounterRate = field(
        default_factory=lambda: CounterRate(TriggerKind.REQUEST_RATE))
    busy: CounterRate = field(default_factory=lambda: CounterRate(TriggerKind.CONCURRENCY))

    def forget(self, keep: set[str]) -> None:
        self.requests.forget(keep)
        self.busy.forget(keep)


def gateway_samples(d: Deployment, here: list[Replica], traffic: TrafficView,
                    meters: GatewayMeters, first_region: bool, single_region: bool
                    ) -> list[Sample]:
    """Concurrency (in flight + waiting) and the request rate. Concurrency is the mean since
    the last poll where the gateways integrate it for the deployment (one region), else the
    instant of the report, summed over every replica `here` in the region (old ones in a
    rollout and draining ones carry load too). Waiting requests are the deployment's: they
    count in its first region."""
    at = traffic.reported_at
    if at is None:
        return []
    out: list[Sample] = []
    busy = traffic.busy_seconds.get(d.id)
    mean = meters.busy.sample(d.id, busy, at) if single_region and busy is not None else None
    if mean is not None:
        out.append(mean)
    else:
        inflight = sum(traffic.inflight.get(r.id, 0) for r in here)
        waiting = traffic.waiting.get(d.id, 0) if first_region else 0
        out.append(Sample(TriggerKind.CONCURRENCY, float(inflight + waiting), at))
    if first_region:
        measured = meters.requests.sample(d.id, traffic.requests.get(d.id, 0), at)
        if measured is not None:
            out.append(measured)
    return out


def requested(d: Deployment, facts: PlatformFacts) -> tuple[float, int]:
    """Cores and bytes of memory one replica asked for (its flavor's, else its resources')."""
    if d.spec.flavor is not None:
        flavor = facts.flavor(d.spec.flavor)
        if flavor is not None:
            return flavor.cpu, flavor.memory_bytes
    r = d.spec.resources or Resources()
    return r.cpu, r.memory_bytes


async def resource_samples(runtime: Runtime, replicas: list[Replica], cores: float,
                           memory: int, now: float) -> list[Sample]:
    """CPU and memory as percent of what each replica requested, summed over the replicas
    whose process runs (a replica not yet started uses nothing)."""
    cpu = mem = 0.0
    for r in replicas:
        if r.state not in (S.STARTING, S.RUNNING):
            continue
        stats = await runtime.stats(r.id)
        if stats is None:
            continue
        cpu += stats.cpu_percent / cores
        mem += 100.0 * stats.memory_bytes / memory
    return [Sample(TriggerKind.CPU, cpu, now), Sample(TriggerKind.MEMORY, mem, now)]


def gpu_samples(usage: dict[int, GpuUsage] | str, replicas: list[Replica],
                now: float) -> tuple[list[Sample], str]:
    """Per replica the mean over its GPUs, summed; or why GPU load cannot be read here."""
    if isinstance(usage, str):
        return [], usage
    holding = [r for r in replicas if r.gpus and r.state in (S.STARTING, S.RUNNING)]
    if not holding and not any(r.gpus for r in replicas):
        return [], "the replicas hold no GPUs"
    util = mem = 0.0
    for r in holding:
        known = [usage[i] for i in r.gpus if i in usage]
        if len(known) != len(r.gpus):
            missing = sorted(set(r.gpus) - set(usage))
            return [], f"NVML does not see GPU {', '.join(map(str, missing))}"
        util += sum(u.utilization for u in known) / len(known)
        mem += sum(100.0 * u.memory_used / u.memory_total for u in known
                   if u.memory_total) / len(known)
    return [Sample(TriggerKind.GPU_UTILIZATION, util, now),
            Sample(TriggerKind.GPU_MEMORY, mem, now)], ""


def parse_gauge(text: str, name: str) -> float | None:
    """The sum of a metric's samples in a Prometheus text page (all label sets); None when
    the page does not have it. Raises ValueError on a page that is not Prometheus text."""
    total, found = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and math.isfinite(sample.value):
                total += sample.value
                found = True
    return total if found else None


async def scrape_gauge(client: httpx.AsyncClient, r: Replica, trigger: Trigger) -> float | str:
    """One replica's gauge, or why it could not be read."""
    url = f"http://127.0.0.1:{r.port}{trigger.path}"
    try:
        async with asyncio.timeout(SCRAPE_SECONDS):
            answer = await client.get(url)
    except (httpx.HTTPError, TimeoutError) as exc:
        return f"{url}: {type(exc).__name__}"
    if answer.status_code != 200:
        return f"{url} answered {answer.status_code}"
    if len(answer.content) > SCRAPE_BYTES:
        return f"{url}: the page is over {SCRAPE_BYTES} bytes"
    try:
        value = parse_gauge(answer.text, trigger.metric_name)
    except ValueError as exc:
        return f"{url}: not Prometheus text ({exc})"
    if value is None:
        return f"{url} has no {trigger.metric_name}"
    return value


async def custom_samples(client: httpx.AsyncClient, replicas: list[Replica],
                         triggers: list[Trigger], now: float
                         ) -> tuple[list[Sample], dict[str, str]]:
    """Each custom gauge summed over the ready replicas; a gauge no replica gives is
    unavailable, with the first replica's reason."""
    ready = [r for r in replicas if r.routable]
    samples: list[Sample] = []
    missing: dict[str, str] = {}
    for t in triggers:
        if not ready:
            continue  # nothing to read yet: the trigger goes stale, not unavailable
        got = await asyncio.gather(*(scrape_gauge(client, r, t) for r in ready))
        values = [v for v in got if isinstance(v, float)]
        if values:
            samples.append(Sample(t.source, sum(values), now))
        else:
            missing[t.source] = str(got[0])
    return samples, missing
