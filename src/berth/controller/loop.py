"""The control loop: read desired and observed state, reconcile, apply. Thin I/O only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

import httpx
import psutil

from berth.controller.launch import (
    PullAuth,
    effective_probes,
    launch_spec,
    replica_envs,
    runs_in_container,
)
from berth.controller.lifecycle import Signal, crash, move
from berth.controller.policy import Policy
from berth.controller.reconcile import Reconciliation, reconcile_deployment
from berth.controller.traffic import LIVE_SECONDS, traffic_view
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Event, Replica, Task
from berth.domain.status import DeploymentStatus, FailureKind, ReplicaState
from berth.probes.checks import ProbeTarget
from berth.probes.prober import ReplicaProber
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ImageUnavailable, LaunchSpec, LogPolicy, Runtime
from berth.store.engine import Store

log = logging.getLogger("berth.controller")


class Prober(Protocol):
    def verdict(self) -> ProbeVerdict: ...
    def start(self) -> None: ...
    async def stop(self) -> None: ...


ProberFactory = Callable[[Deployment, Replica], Prober]
S = ReplicaState
LEASE = "controller"
STALLED_TICK_SECONDS = 30.0  # a tick still running this long is reported (every await ends)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dead_local_holder(holder: str) -> bool:
    """A lease held by a process of this host that no longer exists (e.g. after kill -9)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not psutil.pid_exists(int(pid))


PULL_EVENTS = 20  # progress events per replica's pull; the status reason shows the rest


@dataclass
class Pull:
    lines: list[str]  # podman's progress, as it comes
    launch: LaunchSpec | None = None  # what it pulls for, used for the start that follows
    task: asyncio.Task[None] | None = None
    shown: int = 0  # lines already recorded as events


class Controller:
    def __init__(
        self, store: Store, runtime: Runtime, facts: PlatformFacts, policy: Policy, *,
        tick_seconds: float = 0.5, lease_seconds: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        prober_factory: ProberFactory | None = None,
        on_routing_change: Callable[[], None] | None = None,
        new_replica_id: Callable[[], str] = lambda: secrets.token_hex(3),
        containers: bool = False, pull_auth: PullAuth | None = None,
        exec_prefix: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.facts = facts
        self.policy = policy
        self.tick_seconds = tick_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.probers: dict[str, tuple[int | None, Prober]] = {}
        self.prober_factory = prober_factory or self._real_prober
        self.on_routing_change = on_routing_change
        self.new_replica_id = new_replica_id
        self.containers, self.pull_auth = containers, pull_auth  # images run in containers
        self.exec_prefix = exec_prefix  # replica id -> the argv prefix running in its container
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lease_until = 0.0
        self._http: httpx.AsyncClient | None = None
        self.pulls: dict[str, Pull] = {}  # replica id -> its image pull under way

    def wake(self) -> None:
        """Ask for a tick now; safe to call from any thread."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._http = httpx.AsyncClient(verify=False, follow_redirects=False)
        try:
            while not stopping.is_set() and not self._hold_lease():
                await self._sleep(stopping, self.lease_seconds / 3)
            if not stopping.is_set():
                await self.recover()
            while not stopping.is_set():
                started = time.monotonic()
                try:
                    if self._hold_lease():
                        stalled = self._loop.call_later(
                            STALLED_TICK_SECONDS, log.error, "a controller tick has run for "
                            "%gs and is still running: reconciling has stalled",
                            STALLED_TICK_SECONDS)
                        try:
                            await self.tick()
                        finally:
                            stalled.cancel()
                except Exception:
                    log.exception("controller tick failed")
                elapsed = time.monotonic() - started
                await self._sleep(stopping, max(self.tick_seconds - elapsed, 0.0))
        finally:
            for _pid, prober in self.probers.values():
                await prober.stop()
            self.probers.clear()
            await self._http.aclose()
            with contextlib.suppress(Exception), self.store.write(notify=False) as tx:
                tx.leases.release(LEASE, self.holder)

    async def _sleep(self, stopping: asyncio.Event, seconds: float) -> None:
        assert self._wake is not None
        waits = [asyncio.ensure_future(self._wake.wait()),
                 asyncio.ensure_future(stopping.wait())]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        self._wake.clear()

    def holds_lease(self) -> bool:
        """Whether this controller held the lease at its last renewal (no store access)."""
        return time.time() < self._lease_until

    def _hold_lease(self) -> bool:
        now = time.time()
        if now < self._lease_until - self.lease_seconds * 2 / 3:
            return True
        with self.store.write(notify=False) as tx:
            held = tx.leases.acquire(LEASE, self.holder, now, self.lease_seconds)
            previous = tx.leases.holder(LEASE)
            if not held and previous is not None and _dead_local_holder(previous):
                log.info("taking over the controller lease of %s, which is gone", previous)
                tx.leases.take(LEASE, self.holder, now, self.lease_seconds)
                held = True
        self._lease_until = now + self.lease_seconds if held else 0.0
        return held

    async def recover(self) -> None:
        """Adopt replicas that outlived the previous server; forget the ones that did not."""
        with self.store.read() as tx:
            rows = tx.replicas.all()
        known = {r.id: r.port for r in rows if r.state in S.has_process()}
        await self.runtime.recover(known)
        observed = await self.runtime.observe()
        now = self.clock()
        lost = [r for r in rows if r.state in S.has_process()
                and not (r.id in observed and observed[r.id].alive)]
        with self.store.write(notify=False) as tx:
            for r in lost:
                tx.replicas.delete(r.id)
                tx.events.add(Event(deployment_id=r.deployment_id, at=now, kind="Replica",
                                    reason="Lost", replica_id=r.id,
                                    message="process ended while the control plane was down"))
        adopted = len(known) - len(lost)
        if rows:
            log.info("recovered: %d replicas adopted, %d lost", adopted, len(lost))

    async def tick(self) -> None:
        now = self.clock()
        wall = now.timestamp()  # one clock for the tick: gateways report unix times
        observed = await self.runtime.observe()
        with self.store.read() as tx:
            deployments = tx.deployments.active()
            rows = tx.replicas.all()
            open_tasks = tx.tasks.open()
            traffic = traffic_view(tx.routing.gateways(wall - LIVE_SECONDS), wall)
            scaled: dict[str, dict[str, int]] = {}
            for decision in tx.autoscaler.all():
                scaled.setdefault(decision.deployment_id, {})[decision.region] = \
                    decision.desired
        by_deployment: dict[str, list[Replica]] = {}
        for r in rows:
            by_deployment.setdefault(r.deployment_id, []).append(r)
        tasks: dict[str, list[Task]] = {}
        for t in open_tasks:
            tasks.setdefault(t.deployment_id, []).append(t)
        in_use = {i for r in rows if r.state != S.STOPPED for i in r.gpus}
        verdicts = {rid: p.verdict() for rid, (_pid, p) in self.probers.items()}
        after = dict(by_deployment)  # rows as this tick leaves them (failures keep the old)
        for d in deployments:
            try:
                result = reconcile_deployment(
                    d, by_deployment.get(d.id, []), tasks.get(d.id, []), observed, verdicts,
                    in_use, self.facts, self.policy, now, traffic, new_id=self.new_replica_id,
                    scaled=scaled.get(d.id))
                in_use = (in_use | result.gpus_claimed) - result.gpus_released
                after[d.id] = await self._apply(result)
            except Exception:
                log.exception("reconciling %s/%s failed", d.project, d.name)
        await self._sync_probers(deployments, [r for rows in after.values() for r in rows])

    async def _apply(self, result: Reconciliation) -> list[Replica]:
        """Write, signal and launch; the deployment's rows as they now stand."""
        d = result.deployment
        for error in result.errors:
            log.error("%s", error)
        if d.status != DeploymentStatus.DELETED:
            kept = d.spec.logging
            self.runtime.keep_logs(d.id, LogPolicy(kept.enabled, kept.retention_period))
        if result.changed:
            with self.store.write(notify=False) as tx:
                if result.routing_changed:
                    version = tx.routing.bump()
                    for r in result.replicas:
                        if r.state == S.DRAINING and r.drain_version is None:
                            r.drain_version = version
                for r in result.replicas:
                    (tx.replicas.insert if r.id in result.inserted else tx.replicas.save)(r)
                for rid in result.deleted:
                    tx.replicas.delete(rid)
                for e in result.events:
                    tx.events.add(e)
                for t in result.tasks:
                    tx.tasks.save(t)
                tx.deployments.save_observed(d)
            if result.routing_changed and self.on_routing_change is not None:
                self.on_routing_change()
        for rid, signal in result.signals:
            await self.runtime.signal(rid, kill=signal is Signal.KILL)
        for rid in result.forget:
            await self.runtime.forget(rid)
        rows = {r.id: r for r in result.replicas}
        for r in result.launch:
            rows[r.id] = await self._launch(d, r)
        if d.status == DeploymentStatus.DELETED and result.changed:
            self.runtime.purge_logs(d.id)
        return list(rows.values())

    async def _launch(self, d: Deployment, r: Replica) -> Replica:
        now = self.clock()
        try:
            under_way = self.pulls.get(r.id)
            if under_way is not None and under_way.launch is not None:
                launch = under_way.launch  # credentials opened once per pull, not per tick
            else:
                launch = launch_spec(d, r, containers=self.containers, facts=self.facts,
                                     pull_auth=self.pull_auth)
            if launch.image is not None:
                pulling = self._pull(d, r, launch, now)
                if pulling is not None:
                    return pulling  # the image is still coming: no start this tick
                launch = replace(launch, pull_policy="Never")  # pulled just now
            if r.state == S.BACKOFF:
                await self.runtime.forget(r.id)
            started = await self.runtime.start(launch)
        except ImageUnavailable as exc:
            log.warning("could not get the image of replica %s: %s", r.id, exc)
            row = replace(crash(r, FailureKind.PULL_FAILED, f"image pull failed: {exc}", None,
                                self.policy, now), pulling="")
            event = Event(deployment_id=d.id, at=now, kind="Replica", reason="PullFailed",
                          message=row.reason, replica_id=r.id)
        except Exception as exc:
            log.warning("could not start replica %s: %s", r.id, exc)
            row = crash(r, FailureKind.START_FAILED, f"could not start: {exc}", None,
                        self.policy, now)
            event = Event(deployment_id=d.id, at=now, kind="Replica", reason="StartFailed",
                          message=row.reason, replica_id=r.id)
        else:
            row = replace(move(r, S.STARTING, "process started", now), pid=started.pid,
                             port=started.port, started_at=now, exit_code=None, ready=False,
                             next_start_at=None, pulling="")
            event = Event(deployment_id=d.id, at=now, kind="Replica", reason="Launched",
                          message=f"pid {started.pid}, port {started.port}"
                          + (f", GPUs {','.join(map(str, r.gpus))}" if r.gpus else ""),
                          replica_id=r.id)
        with self.store.write(notify=False) as tx:
            tx.replicas.save(row)
            tx.events.add(event)
        return row

    def _pull(self, d: Deployment, r: Replica, launch: LaunchSpec, now: datetime
              ) -> Replica | None:
        """The replica's image pull, in the background: the replica as it waits (its
        `pulling` progress saved, an event per new progress line, at most PULL_EVENTS), or
        None once the image is here. ImageUnavailable when the pull failed."""
        pull = self.pulls.get(r.id)
        if pull is None:
            pull = self.pulls[r.id] = Pull([], launch=launch)
            pull.task = asyncio.create_task(self.runtime.prepare(launch, pull.lines.append))
            pull.task.add_done_callback(lambda _t: self.wake())
        if pull.task is not None and pull.task.done():
            del self.pulls[r.id]
            error = pull.task.exception()
            if error is not None:
                raise error
            return None
        shown = f"{launch.image}: {pull.lines[-1]}" if pull.lines else f"{launch.image}"
        events = [Event(deployment_id=d.id, at=now, kind="Replica", reason="Pulling",
                        message=f"{launch.image}: {line}", replica_id=r.id)
                  for line in pull.lines[pull.shown:PULL_EVENTS]]
        pull.shown = len(pull.lines)
        if shown == r.pulling and not events:
            return r
        row = replace(r, pulling=shown)
        with self.store.write(notify=False) as tx:
            tx.replicas.save(row)
            for event in events:
                tx.events.add(event)
        return row

    async def _sync_probers(self, deployments: list[Deployment], rows: list[Replica]) -> None:
        """One prober per running replica process; none for anything else."""
        specs = {d.id: d for d in deployments}
        wanted = {r.id: r for r in rows if r.state in (S.STARTING, S.RUNNING)
                  and r.deployment_id in specs and r.port is not None}
        for rid, (pid, prober) in list(self.probers.items()):
            if rid not in wanted or wanted[rid].pid != pid:
                await prober.stop()
                del self.probers[rid]
        for rid, r in wanted.items():
            if rid in self.probers:
                continue
            prober = self.prober_factory(specs[r.deployment_id], r)
            prober.start()
            self.probers[rid] = (r.pid, prober)

    def _real_prober(self, d: Deployment, r: Replica) -> Prober:
        assert r.port is not None and self._http is not None
        env = {**os.environ, **replica_envs(d), "PORT": str(r.port), "BERTH_REPLICA_ID": r.id}
        prefix: tuple[str, ...] = ()
        if self.exec_prefix is not None and runs_in_container(d.spec, self.containers):
            prefix = tuple(self.exec_prefix(r.id))
            env = dict(os.environ)  # podman's own: the replica's envs are the container's
        target = ProbeTarget(host="127.0.0.1", port=r.port,
                             listening_port=d.spec.listening_port, env=env, exec_prefix=prefix)
        return ReplicaProber(effective_probes(d.spec), target, self._http,
                             started=r.state == S.RUNNING, ready=r.ready, on_change=self.wake)

