"""The autoscaler loop: read metrics, decide, store the decision and its events. Thin.

It acts only while this process holds the controller's lease, so two servers never write
one deployment's count; the controller reads the stored count (`tx.autoscaler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from berth.autoscaler.decide import Decision, Observed, Sample, ScaleState, decide
from berth.autoscaler.policy import ScalePolicy, TriggerKind, policy_for
from berth.autoscaler.sources import (
    GatewayMeters,
    custom_samples,
    gateway_samples,
    gpu_samples,
    requested,
    resource_samples,
    serving_replicas,
)
from berth.controller.traffic import LIVE_SECONDS, TrafficView, traffic_view
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Event, Replica
from berth.domain.status import DesiredState
from berth.runtime.base import Runtime
from berth.runtime.nvml import GpuUsage
from berth.store.autoscaler import ScaleRecord
from berth.store.engine import Store, Tx

log = logging.getLogger("berth.autoscaler")
Key = tuple[str, str]  # deployment id, region


class GpuMeter(Protocol):
    def usage(self) -> dict[int, GpuUsage] | str: ...


class QueueBacklog:
    """Async invocations waiting or running per deployment, as the last tick read them."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def read(self, tx: Tx) -> None:
        self.counts = {d_id: b.pending for d_id, b in tx.invocations.backlog().items()}

    def backlog(self, deployment_id: str) -> int:
        return self.counts.get(deployment_id, 0)


@dataclass(frozen=True)
class Polled:
    deployment: Deployment
    region: str
    policy: ScalePolicy
    decision: Decision
    observed: Observed


def record_of(p: Polled, now: float) -> ScaleRecord:
    d = p.decision
    metrics = {key: {"value": r.value, "target": r.target, "age_seconds": r.age,
                     "wants": r.wants, "status": r.status} for key, r in d.metrics.items()}
    return ScaleRecord(deployment_id=p.deployment.id, region=p.region, desired=d.desired,
                       current=p.observed.current, panic=d.panic, decided_at=now,
                       last_scale_at=d.state.last_scale_at, reasons=list(d.reasons),
                       metrics=metrics)


def events_of(p: Polled, before: Decision | None, now: float) -> list[Event]:
    d, at = p.decision, _datetime(now)
    out: list[Event] = []
    if d.change is not None:
        out.append(Event(deployment_id=p.deployment.id, at=at, kind="Autoscaler",
                         reason=d.change.kind, message=f"{p.region}: {d.change.message}"))
    for key, r in d.metrics.items():
        was = before.metrics.get(key) if before is not None else None
        if r.status.startswith("unavailable") and (was is None or was.status != r.status):
            out.append(Event(deployment_id=p.deployment.id, at=at, kind="Autoscaler",
                             reason="TriggerUnavailable",
                             message=f"{p.region}: trigger {key} {r.status}"))
    return out


def _datetime(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class Autoscaler:
    def __init__(self, store: Store, runtime: Runtime, facts: PlatformFacts,
                 holds_lease: Callable[[], bool], *, gpus: GpuMeter,
                 queue: QueueBacklog | None = None, tick_seconds: float = 0.25,
                 clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store, self.runtime, self.facts = store, runtime, facts
        self.holds_lease, self.gpus = holds_lease, gpus
        self.queue = queue or QueueBacklog()
        self.tick_seconds, self.clock, self.on_change = tick_seconds, clock, on_change
        self.states: dict[Key, ScaleState] = {}
        self.last: dict[Key, Decision] = {}
        self.polled_at: dict[Key, float] = {}
        self.policies: dict[Key, tuple[int, ScalePolicy]] = {}  # by spec generation
        self.meters = GatewayMeters()
        self._http: httpx.AsyncClient | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        self._http = httpx.AsyncClient(follow_redirects=False)
        try:
            while not stopping.is_set():
                try:
                    await self.tick()
                except Exception:
                    log.exception("autoscaler tick failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.tick_seconds):
                        await stopping.wait()
        finally:
            await self._http.aclose()

    async def tick(self) -> None:
        if not self.holds_lease():
            self.states.clear()  # another server decides now; its history is its own
            self.last.clear()
            self.polled_at.clear()
            self.policies.clear()
            return
        now = self.clock()
        with self.store.read() as tx:
            deployments = tx.deployments.active()
            rows = tx.replicas.all()
            traffic = traffic_view(tx.routing.gateways(now - LIVE_SECONDS), now)
            stored = {(r.deployment_id, r.region): r for r in tx.autoscaler.all()}
            self.queue.read(tx)
        by_deployment: dict[str, list[Replica]] = {}
        for r in rows:
            by_deployment.setdefault(r.deployment_id, []).append(r)
        running = [d for d in deployments if d.desired == DesiredState.RUNNING]
        polled: list[Polled] = []
        for d in running:
            for i, c in enumerate(d.spec.containers):
                key = (d.id, c.region)
                known = self.policies.get(key)
                fresh = known is None or known[0] != d.generation
                policy = policy_for(d.spec, c) if fresh or known is None else known[1]
                replicas = serving_replicas(d, by_deployment.get(d.id, []), c.region)
                cold = not replicas and (traffic.waiting.get(d.id, 0) > 0
                                         or self.queue.backlog(d.id) > 0)
                due = (now - self.polled_at.get(key, -float("inf")) >= policy.polling_interval
                       or fresh)  # a spec change: decide now
                if not (due or cold):
                    continue
                self.polled_at[key], self.policies[key] = now, (d.generation, policy)
                try:
                    here = [r for r in by_deployment.get(d.id, []) if r.region == c.region]
                    observed = await self._observe(d, replicas, here, policy, traffic, i == 0,
                                                   now)
                except Exception:
                    log.exception("reading the metrics of %s/%s failed", d.project, d.name)
                    continue
                state = self.states.get(key) or _restored(stored.get(key))
                decision = decide(policy, observed, state, now)
                self.states[key] = decision.state
                polled.append(Polled(d, c.region, policy, decision, observed))
        keep = {(d.id, c.region) for d in running for c in d.spec.containers}
        gone = {key for key in stored if key not in keep}
        for key in set(self.states) - keep:
            self.states.pop(key, None)
            self.last.pop(key, None)
            self.polled_at.pop(key, None)
            self.policies.pop(key, None)
        self.meters.forget({d.id for d in running})
        changed = False
        if polled or gone:
            with self.store.write(notify=False) as tx:
                tx.autoscaler.save_all(record_of(p, now) for p in polled)
                for p in polled:
                    key = (p.deployment.id, p.region)
                    for e in events_of(p, self.last.get(key), now):
                        tx.events.add(e)
                    before = stored.get(key)
                    changed |= before is None or before.desired != p.decision.desired
                for d_id, region in gone:
                    tx.autoscaler.delete(d_id, [region])
        for p in polled:
            self.last[(p.deployment.id, p.region)] = p.decision
        if changed and self.on_change is not None:
            self.on_change()

    async def _observe(self, d: Deployment, replicas: list[Replica], here: list[Replica],
                       policy: ScalePolicy, traffic: TrafficView, first_region: bool,
                       now: float) -> Observed:
        """`replicas` count (the current spec's); `here` is every replica of the region:
        old ones in a rollout and draining ones carry load too."""
        kinds = {t.kind for t in policy.triggers}
        samples: list[Sample] = gateway_samples(
            d, here, traffic, self.meters, first_region, len(d.spec.containers) == 1)
        unavailable: dict[str, str] = {}
        if kinds & {TriggerKind.CPU, TriggerKind.MEMORY}:
            cores, memory = requested(d, self.facts)
            samples += await resource_samples(self.runtime, replicas, cores, memory, now)
        if kinds & {TriggerKind.GPU_UTILIZATION, TriggerKind.GPU_MEMORY}:
            got, why = gpu_samples(await asyncio.to_thread(self.gpus.usage), replicas, now)
            samples += got
            if why:
                unavailable.update({TriggerKind.GPU_UTILIZATION: why,
                                    TriggerKind.GPU_MEMORY: why})
        custom = [t for t in policy.triggers if t.kind is TriggerKind.CUSTOM]
        if custom:
            assert self._http is not None
            got_custom, missing = await custom_samples(self._http, replicas, custom, now)
            samples += got_custom
            unavailable.update(missing)
        if TriggerKind.QUEUE in kinds and first_region:
            samples.append(Sample(TriggerKind.QUEUE, float(self.queue.backlog(d.id)), now))
        last = traffic.last_request.get(d.id)
        if last is None and d.last_request_at is not None:
            last = d.last_request_at.timestamp()
        return Observed(
            current=len(replicas), ready=sum(r.ready for r in replicas),
            inflight=sum(traffic.inflight.get(r.id, 0) for r in here),
            waiting=traffic.waiting.get(d.id, 0) if first_region else 0,
            queued=self.queue.backlog(d.id) if first_region else 0,
            last_request_at=last, samples=tuple(samples), unavailable=unavailable)


def _restored(record: ScaleRecord | None) -> ScaleState:
    """After a restart: no history, but the last decision and scale time are kept, so the
    cooldown holds across restarts."""
    if record is None:
        return ScaleState()
    return ScaleState(desired=record.desired, last_scale_at=record.last_scale_at)
