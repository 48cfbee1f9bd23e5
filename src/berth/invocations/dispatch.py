"""The dispatcher: leases queued async requests, sends each through the gateway's balancer (so
`per_worker` holds and sync traffic shares the replicas), writes its one result into the
dataset, and records the end.

One cycle at a time, each one write transaction: the tries that ended since the last cycle,
the leases still held (renewed every few seconds, so a dispatcher that dies frees its
requests after `visibility` seconds), and new leases for deployments with work and room. A
lease never takes a deployment past `async.workers` requests held, whichever dispatchers
hold them. A result is written before its end is recorded: a crash in between means another
try writes the same object again (at least once to the replica, one result per request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from berth.domain.invocations import RETRIED_STATUS, InvocationStatus, TryError, outcome
from berth.domain.spec import AsyncConfig
from berth.domain.status import DesiredState
from berth.gateway.balancer import Backend, Shed
from berth.invocations import rules
from berth.invocations.datasets import DatasetFiles, open_dataset
from berth.invocations.upstream import ConnectFailed, ConnectionLost, ReplicaClient
from berth.store.engine import Store, Tx
from berth.store.invocations import Backlog, Ending, Invocation, Leased

if TYPE_CHECKING:
    from berth.gateway.service import Gateway
    from berth.gateway.table import Route

log = logging.getLogger("berth.invocations")
IDLE_POLL: Final = 0.5  # seconds between looks at the queue with nothing happening
RENEW_EVERY: Final = 3.0
EXPIRE_EVERY: Final = 5.0
PARTIAL_SECONDS: Final = 600.0  # a temporary result file this old is a write cut short


@dataclass
class Counters:
    """Per deployment, since this gateway started (for /metrics)."""

    dispatched: int = 0
    retried: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # SUCCEEDED / FAILED -> count


@dataclass(frozen=True)
class Candidate:
    """A deployment the gateway routes, as the cycle's transaction needs it."""

    workers: int
    ready: bool  # a replica can take a request now


def _error_result(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class Dispatcher:
    def __init__(self, gw: Gateway, store: Store, data_dir: Path, *,
                 visibility: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.gw, self.store, self.data_dir = gw, store, data_dir
        self.visibility, self.clock = visibility, clock
        self.inflight: dict[str, Leased] = {}  # request id -> its lease, while it runs
        self.endings: list[Ending] = []
        self.backlog: dict[str, Backlog] = {}  # as the last cycle read it
        self.counters: dict[str, Counters] = {}
        self.files: dict[tuple[str, str], DatasetFiles] = {}
        self.client = ReplicaClient()
        self._wake = asyncio.Event()
        self._renew_due = 0.0
        self._survey_due = 0.0
        self.work: set[str] = set()  # deployments that may have requests to lease
        self._expire_due = 0.0

    def wake(self) -> None:
        """Work arrived, ended, or a replica came: run a cycle soon. Event loop only."""
        self._wake.set()

    def wake_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.gw.loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._wake = asyncio.Event()
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # not wait_for: see probes.checks
                    async with asyncio.timeout(IDLE_POLL):
                        await self._wake.wait()
                self._wake.clear()
                try:
                    await self.cycle()
                except Exception:
                    log.exception("async dispatch cycle failed")
                    await asyncio.sleep(IDLE_POLL)
        finally:
            self.client.close()

    # -- the cycle -----------------------------------------------------------------------------

    async def cycle(self) -> None:
        now = self.clock()
        endings, self.endings = self.endings, []
        for e in endings:
            lease = self.inflight.get(e.id)
            if lease is not None:
                self.work.add(lease.deployment_id)  # a slot came free there
        candidates = {d_id: Candidate(r.invocations.workers if r.invocations else 1,
                                      bool(r.balancer.backends))
                      for d_id, r in self.gw.table.by_id.items()}
        renew = now >= self._renew_due and bool(self.inflight)
        expire = now >= self._expire_due
        survey = now >= self._survey_due
        if renew:
            self._renew_due = now + RENEW_EVERY
        if expire:
            self._expire_due = now + EXPIRE_EVERY
        if survey:  # the whole backlog: retries come due, leases lapse, other gateways' intake
            self._survey_due = now + IDLE_POLL
        held = [(i, lease.token) for i, lease in self.inflight.items()] if renew else []
        loop = self.gw.loop
        if survey and not (endings or held or expire):
            self.backlog = await loop.run_in_executor(None, self._read_backlog)
            self.work |= {d for d, b in self.backlog.items() if b.pending}
            survey = False
        if not (endings or held or expire or survey or self.work):
            return  # nothing to do: no write transaction
        work, self.work = self.work, set()
        try:
            leased, expired, idle = await loop.run_in_executor(
                None, self._transact, endings, held, candidates, work, now, expire, survey)
        except Exception:
            self.endings[:0] = endings  # recorded next cycle
            self.work |= work
            raise
        self.work |= work - idle
        for e in endings:
            self.inflight.pop(e.id, None)
        for lease in leased:
            route = self.gw.table.by_id.get(lease.deployment_id)
            self.inflight[lease.id] = lease
            self._count(lease.deployment_id).dispatched += 1
            loop.create_task(self._try(route, lease))
        if expired:
            await loop.run_in_executor(None, self._remove_results, expired)

    def work_arrived(self, deployment_ids: set[str]) -> None:
        """The intake stored requests for these deployments. Event loop only."""
        self.work |= deployment_ids
        self._wake.set()

    def _pending(self) -> bool:
        return any(b.pending for b in self.backlog.values())

    def _read_backlog(self) -> dict[str, Backlog]:
        with self.store.read() as tx:
            return tx.invocations.backlog()

    def _transact(self, endings: list[Ending], held: list[tuple[str, int]],
                  candidates: dict[str, Candidate], work: set[str], now: float,
                  expire: bool, survey: bool
                  ) -> tuple[list[Leased], list[Invocation], set[str]]:
        """One write transaction; returns the leases, the expired requests, and the
        deployments that had nothing to lease (no due request, or no room)."""
        with self.store.write(notify=False) as tx:
            if endings:
                tx.invocations.end(endings)
            if held:
                tx.invocations.renew(held, now + self.visibility)
            if survey:
                self.backlog = tx.invocations.backlog()
                work = work | {d for d, b in self.backlog.items() if b.pending}
            leased: list[Leased] = []
            idle: set[str] = set()
            for d_id in sorted(work):
                c = candidates.get(d_id)
                if c is None:
                    self._fail_if_deleted(tx, d_id, now)
                    idle.add(d_id)
                    continue
                got = tx.invocations.lease(d_id, c.workers, now, self.gw.id, self.visibility) \
                    if c.ready else []
                if not got:
                    idle.add(d_id)
                leased += got
            expired = tx.invocations.expire(now) if expire else []
        return leased, expired, idle

    @staticmethod
    def _fail_if_deleted(tx: Tx, deployment_id: str, now: float) -> None:
        d = tx.deployments.get(deployment_id)
        if d is None or d.desired == DesiredState.DELETED:
            tx.invocations.fail_pending(deployment_id, now, "the deployment was deleted")

    # -- one try -------------------------------------------------------------------------------

    async def _try(self, route: Route | None, lease: Leased) -> None:
        try:
            ending = await self._send(route, lease)
        except Exception as exc:  # never lose the lease silently: retry it later
            log.exception("async request %s failed in the dispatcher", lease.id)
            ending = Ending(lease.id, lease.token, InvocationStatus.QUEUED, self.clock(),
                            reason="dispatcher error; retrying", error=str(exc),
                            next_at=self.clock() + 1.0)
        if ending.status is InvocationStatus.QUEUED:
            self._count(lease.deployment_id).retried += 1
        else:
            ended = self._count(lease.deployment_id).ended
            ended[ending.status.value] = ended.get(ending.status.value, 0) + 1
        self.endings.append(ending)
        self.wake()

    async def _send(self, route: Route | None, lease: Leased) -> Ending:
        if route is None:
            return await self._end(lease, None, None, TryError.CONNECT,
                                   "the deployment is not routed")
        balancer = route.balancer
        backend: Backend | None = balancer.try_acquire()
        if backend is None:
            try:
                waiter = balancer.enqueue(frozenset())
            except Shed as shed:
                return await self._end(lease, route, None, TryError.CONNECT, str(shed))
            try:
                async with asyncio.timeout(min(lease.attempt_timeout, route.queue_timeout)):
                    backend = await waiter.future
            except TimeoutError:
                balancer.abandon(waiter)
                return await self._end(lease, route, None, TryError.CONNECT,
                                 "no replica slot came free in time")
            except Shed as shed:
                return await self._end(lease, route, None, TryError.CONNECT, str(shed))
        headers = {"x-request-id": lease.id, "x-berth-attempt": str(lease.attempt)}
        if lease.content_type:
            headers["content-type"] = lease.content_type
        stats = self.gw.metrics.of(route)
        started = time.monotonic()
        code: int | None = None
        data = b""
        error: TryError | None = None
        message = ""
        try:
            async with asyncio.timeout(lease.attempt_timeout):
                answer = await self.client.post(backend.host, backend.port, lease.path,
                                                lease.body, headers)
            code, data = answer.status, answer.body
        except TimeoutError:
            error = TryError.TIMEOUT
            message = f"no answer within attempt_timeout ({lease.attempt_timeout:g}s)"
        except ConnectFailed as exc:
            error = TryError.CONNECT
            message = f"replica {backend.replica_id}: {exc}"
        except ConnectionLost as exc:
            error = TryError.LOST
            message = f"replica {backend.replica_id}: {exc}"
        finally:
            balancer.release(backend)
            stats.last_request = time.monotonic()
            stats.responses[code or 502] = stats.responses.get(code or 502, 0) + 1
            stats.latency.observe(time.monotonic() - started)
        if error is not None or code is None:
            return await self._end(lease, route, None, error or TryError.LOST, message)
        return await self._finish(lease, route, code, data)

    async def _end(self, lease: Leased, route: Route | None, code: int | None,
                   error: TryError | None, message: str) -> Ending:
        """A try that got no answer: retried, or FAILED with `{"error": message}` as its
        result."""
        now = self.clock()
        verdict = outcome(code, error, lease.attempt, lease.max_attempts)
        if verdict.status is InvocationStatus.QUEUED:
            return Ending(lease.id, lease.token, InvocationStatus.QUEUED, now,
                          reason=f"try {lease.attempt} failed; retrying in "
                                 f"{verdict.retry_in:g}s", error=message,
                          next_at=now + verdict.retry_in)
        return Ending(lease.id, lease.token, InvocationStatus.FAILED, now,
                      reason=f"failed after {lease.attempt} tries", error=message,
                      **await self._error_result(lease, route, message))

    async def _error_result(self, lease: Leased, route: Route | None, message: str
                            ) -> dict[str, Any]:
        """The result fields of a request that ends with no answer: `{"error": …}` written."""
        cfg = route.invocations if route and route.invocations else AsyncConfig()
        dataset = rules.dataset_name(cfg)
        path = rules.result_path(cfg, route.name if route else "unrouted", lease.id)
        data = _error_result(message)
        try:
            await self.gw.loop.run_in_executor(None, self._write, lease.project, dataset, path,
                                               data)
        except Exception as exc:
            log.warning("writing the error result of %s failed: %s", lease.id, exc)
            return {"expires_at": self.clock() + lease.result_ttl}  # no result; it expires
        return {"dataset": dataset, "result_path": path, "result_size": len(data),
                "expires_at": self.clock() + lease.result_ttl}

    async def _finish(self, lease: Leased, route: Route, code: int, data: bytes) -> Ending:
        now = self.clock()
        verdict = outcome(code, None, lease.attempt, lease.max_attempts)
        if verdict.status is InvocationStatus.QUEUED:
            return Ending(lease.id, lease.token, InvocationStatus.QUEUED, now,
                          reason=f"try {lease.attempt} answered {code}; retrying in "
                                 f"{verdict.retry_in:g}s", status_code=code,
                          error=f"the replica answered {code}", next_at=now + verdict.retry_in)
        cfg = route.invocations or AsyncConfig()
        dataset = rules.dataset_name(cfg)
        path = rules.result_path(cfg, route.name, lease.id)
        try:
            await self.gw.loop.run_in_executor(None, self._write, lease.project, dataset,
                                               path, data)
        except Exception as exc:
            retry = outcome(None, TryError.LOST, lease.attempt, lease.max_attempts)
            message = f"writing the result to dataset {dataset!r} failed: {exc}"
            if retry.status is InvocationStatus.QUEUED:
                return Ending(lease.id, lease.token, InvocationStatus.QUEUED, now,
                              reason=message, error=message, next_at=now + retry.retry_in)
            return Ending(lease.id, lease.token, InvocationStatus.FAILED, now, reason=message,
                          status_code=code, error=message, expires_at=now + lease.result_ttl)
        ok = verdict.status is InvocationStatus.SUCCEEDED
        return Ending(lease.id, lease.token, verdict.status, self.clock(),
                      reason=f"the replica answered {code}" + (
                          "" if ok else f" on try {lease.attempt}" if code in RETRIED_STATUS
                          else " (not retried)"),
                      status_code=code, error=None if ok else f"the replica answered {code}",
                      dataset=dataset, result_path=path, result_size=len(data),
                      expires_at=self.clock() + lease.result_ttl)

    # -- datasets --------------------------------------------------------------------------------

    def _dataset(self, project: str, name: str) -> DatasetFiles:
        key = (project, name)
        files = self.files.get(key)
        if files is None:
            with self.store.write(notify=False) as tx:
                d = tx.datasets.get(project, name)
                if d is None and name == rules.DEFAULT_DATASET:
                    d = tx.datasets.insert(project, name, None, "async results",
                                           datetime.now(UTC))
            if d is None:
                raise FileNotFoundError(f"dataset {name!r} not found in project {project!r}")
            files = self.files[key] = open_dataset(d, self.data_dir)
            files.sweep_partial(PARTIAL_SECONDS, time.time())  # writes a crash cut short
        return files

    def _write(self, project: str, dataset: str, path: str, data: bytes) -> None:
        self._dataset(project, dataset).write(path, data)

    def _remove_results(self, expired: list[Invocation]) -> None:
        for inv in expired:
            if inv.dataset and inv.result_path:
                try:
                    self._dataset(inv.project, inv.dataset).delete(inv.result_path)
                except Exception as exc:
                    log.warning("removing the expired result %s failed: %s", inv.id, exc)

    def read_status(self, deployment_id: str, request_id: str
                    ) -> tuple[Invocation | None, bytes | None]:
        """A request and its result (worker thread)."""
        with self.store.read() as tx:
            inv = tx.invocations.get(deployment_id, request_id)
        if inv is None or inv.dataset is None or inv.result_path is None:
            return inv, None
        try:
            return inv, self._dataset(inv.project, inv.dataset).read(inv.result_path)
        except FileNotFoundError:
            return inv, None

    def _count(self, deployment_id: str) -> Counters:
        c = self.counters.get(deployment_id)
        if c is None:
            c = self.counters[deployment_id] = Counters()
        return c
