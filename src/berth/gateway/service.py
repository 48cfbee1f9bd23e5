"""The Gateway: owns the routing table, the upstream pool, metrics, and its reports."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Final, cast

from berth.domain.records import Event
from berth.gateway.accesslog import AccessLog, quoted
from berth.gateway.balancer import Backend
from berth.gateway.http import plain_response
from berth.gateway.metrics import GatewayMetrics, named_decisions
from berth.gateway.paths import refusal
from berth.gateway.proxy import ClientConnection
from berth.gateway.table import Route, RoutingTable, build_table
from berth.gateway.upstream import UpstreamPool
from berth.invocations.dispatch import Dispatcher
from berth.invocations.intake import IntakeQueue
from berth.invocations.metrics import AsyncCollector
from berth.store.autoscaler import ScaleRecord
from berth.store.engine import Store
from berth.store.routing import GatewayReport

if TYPE_CHECKING:
    from berth.gateway.exchange import Exchange

log = logging.getLogger("berth.gateway")
SWEEP_SECONDS: Final = 0.05
IDLE_SWEEP_SECONDS: Final = 1.0  # idle client connections and slow request heads
NO_ROUTE: Final = '"project":null,"deployment":null'
MAX_CACHED_SECRETS: Final = 4096
MAX_CACHED_ROUTES: Final = 4096
CONCURRENCY_SAMPLE_SECONDS: Final = 0.1  # how often in-flight requests are integrated
DECISIONS_SECONDS: Final = 1.0  # how often the autoscaler's decisions are read for /metrics


class Gateway:
    def __init__(
        self, store: Store, *, host: str = "127.0.0.1", port: int = 8001,
        domain: str | None = None, access_log: Path | None = None,
        on_activate: Callable[[], None] | None = None,
        poll_seconds: float = 0.25, report_seconds: float = 0.5,
        idle_seconds: float = 75.0, head_seconds: float = 60.0,
        data_dir: Path = Path(".berth"), async_lease_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.domain = domain.lower().encode() if domain else None
        self.on_activate = on_activate
        self.poll_seconds, self.report_seconds = poll_seconds, report_seconds
        # A client connection with nothing in flight is closed after idle_seconds; a request
        # head still arriving after head_seconds is answered 408 (nginx: 75 s and 60 s).
        self.idle_seconds, self.head_seconds = idle_seconds, head_seconds
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.table = RoutingTable()
        self.pool = UpstreamPool()
        self.metrics = GatewayMetrics()
        self.connections: set[ClientConnection] = set()
        self.activating: dict[str, float] = {}  # deployment id -> when its wake-up was sent
        self.busy_seconds: dict[str, float] = {}  # deployment id -> request-seconds, ever
        self._last_id = 0
        self._id_prefix = os.urandom(4).hex().encode()
        self.access = AccessLog(access_log)
        self.dispatcher = Dispatcher(self, store, data_dir, visibility=async_lease_seconds)
        self.intake = IntakeQueue(store, on_commit=self.dispatcher.work_arrived)
        self.metrics.registry.register(AsyncCollector(self))
        self._changed = asyncio.Event()
        self._decisions_due = 0.0  # monotonic time of the next read of the decisions
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop = asyncio.get_event_loop_policy().get_event_loop()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.pool.loop = self.loop
        self._changed = asyncio.Event()
        await self.refresh()
        self._server = await self.loop.create_server(
            lambda: cast(asyncio.Protocol, ClientConnection(self)), self.host, self.port,
            backlog=4096)
        self._tasks = [self.loop.create_task(self._refresh_loop()),
                       self.loop.create_task(self._report_loop()),
                       self.loop.create_task(self._timeout_loop()),
                       self.loop.create_task(self._concurrency_loop()),
                       self.loop.create_task(self.dispatcher.run())]

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            self._server.close()
        deadline = self.loop.time() + grace
        # In-flight requests finish (nothing to await on: poll, bounded by the grace).
        while self.loop.time() < deadline and any(c.queue for c in self.connections):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
        self.pool.close_all()
        self.access.flush()
        with contextlib.suppress(Exception):
            await self.loop.run_in_executor(None, self._forget)

    def notify(self) -> None:
        """The store changed (in-process notification); refresh soon. Any thread."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._changed.set)

    # -- the routing table ----------------------------------------------------------------

    async def refresh(self) -> None:
        table = await self.loop.run_in_executor(None, self._read_table)
        if table is None:
            return
        previous = self.table
        self.table = table
        self.dispatcher.wake()  # replicas came or went: async work may be sent now
        live = {b.key for r in table.routes.values() for b in r.balancer.backends}
        for route in previous.routes.values():
            for b in route.balancer.backends:
                if b.key not in live:
                    self.pool.close_replica(b.key)
        now = monotonic()
        for d_id, since in list(self.activating.items()):
            current = table.by_id.get(d_id)  # served requests end the activation first
            if current is None or (current.balancer.backends and now - since > 5):
                del self.activating[d_id]

    def _read_table(self) -> RoutingTable | None:
        with self.store.read() as tx:
            version = tx.routing.version()
            if version == self.table.version and self.table.version:
                return None
            deployments = tx.deployments.active()
            replicas = tx.replicas.all()
            keys = tx.api_keys.all()
        return build_table(version or -1, deployments, replicas, keys, self.table)

    async def _refresh_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: see probes.checks
                async with asyncio.timeout(self.poll_seconds):
                    await self._changed.wait()
            self._changed.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("routing table refresh failed")
            if monotonic() >= self._decisions_due:
                self._decisions_due = monotonic() + DECISIONS_SECONDS
                try:
                    await self.refresh_decisions()
                except Exception:
                    log.exception("reading the autoscaler's decisions failed")

    async def refresh_decisions(self) -> None:
        """The autoscaler's decisions for /metrics, read in a worker thread."""
        records = await self.loop.run_in_executor(None, self._read_decisions)
        self.metrics.decisions = named_decisions(records, self.table)

    def _read_decisions(self) -> list[ScaleRecord]:
        with self.store.read() as tx:
            return tx.autoscaler.all()

    # -- reports to the controller ------------------------------------------------------------

    def report(self) -> GatewayReport:
        inflight: dict[str, int] = {}
        waiting: dict[str, int] = {}
        last: dict[str, float] = {}
        requests: dict[str, int] = {}
        wall = time.time() - monotonic()
        for d_id, route in self.table.by_id.items():
            inflight.update(route.balancer.inflight_by_replica())
            if route.balancer.waiters:
                waiting[d_id] = len(route.balancer.waiters)
        for d_id, stats in self.metrics.stats.items():
            if stats.last_request:
                last[d_id] = stats.last_request + wall
            requests[d_id] = sum(stats.responses.values())
        busy = {d_id: round(v, 3) for d_id, v in self.busy_seconds.items()
                if d_id in self.table.by_id}
        for d_id in self.activating:
            waiting[d_id] = max(waiting.get(d_id, 0), 1)
        return GatewayReport(id=self.id, version=self.table.version, seen_at=time.time(),
                             inflight=inflight, last_request=last, waiting=waiting,
                             requests=requests, busy_seconds=busy)

    def _write_report(self, report: GatewayReport) -> None:
        with self.store.write(notify=False) as tx:
            tx.routing.report(report)

    def _forget(self) -> None:
        with self.store.write(notify=False) as tx:
            tx.routing.forget(self.id)

    async def _report_loop(self) -> None:
        while True:
            try:
                await self.loop.run_in_executor(None, self._write_report, self.report())
            except Exception:
                log.exception("gateway report failed")
            self.access.flush()
            await asyncio.sleep(self.report_seconds)

    async def _concurrency_loop(self) -> None:
        """Integrate each deployment's in-flight + waiting requests over time, so the
        autoscaler reads the mean concurrency between two of its polls, not an instant."""
        last = monotonic()
        while True:
            await asyncio.sleep(CONCURRENCY_SAMPLE_SECONDS)
            now = monotonic()
            dt, last = now - last, now
            for d_id, route in self.table.by_id.items():
                balancer = route.balancer
                n = balancer.inflight() + len(balancer.waiters)
                if n:
                    self.busy_seconds[d_id] = self.busy_seconds.get(d_id, 0.0) + n * dt

    async def _timeout_loop(self) -> None:
        """One sweep instead of timer handles per request; timeouts fire within 50 ms."""
        next_idle_sweep = monotonic()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = monotonic()
            # Every request is in its connection's queue until it finishes: no registration
            # per request, one pass over the connections here.
            due = [ex for conn in self.connections for ex in conn.queue if ex.due <= now]
            for ex in due:
                ex.expire(now)
            if now >= next_idle_sweep:
                next_idle_sweep = now + IDLE_SWEEP_SECONDS
                for conn in list(self.connections):
                    conn.sweep(now, self.idle_seconds, self.head_seconds)

    def activate(self, route: Route) -> None:
        """A request waits for a deployment with no replica: wake the controller once."""
        if route.deployment_id in self.activating:
            return
        self.activating[route.deployment_id] = monotonic()

        async def wake() -> None:
            await self.loop.run_in_executor(None, self._write_report, self.report())
            if self.on_activate is not None:
                self.on_activate()

        self.loop.create_task(wake())

    def cold_started(self, route: Route, seconds: float) -> None:
        self.metrics.cold_started(route, seconds)
        if self.activating.pop(route.deployment_id, None) is None:
            return
        event = Event(deployment_id=route.deployment_id, at=datetime.now(UTC), kind="Gateway",
                      reason="ColdStart",
                      message=f"first request served after {seconds * 1000:.0f} ms")

        def write() -> None:
            with self.store.write(notify=False) as tx:
                tx.events.add(event)

        self.loop.run_in_executor(None, write)

    # -- per request ----------------------------------------------------------------------------

    def new_request_id(self) -> bytes:
        self._last_id += 1
        return b"%s-%d" % (self._id_prefix, self._last_id)

    def local_answer(self, path: bytes, ex: Exchange) -> bytes | None:
        if path == b"/metrics":
            return plain_response(200, b"text/plain; version=0.0.4; charset=utf-8",
                                  self.metrics.render(), keep_alive=ex.keep_alive)
        if path == b"/healthz":
            return plain_response(200, b"application/json", b'{"status":"ok"}',
                                  keep_alive=ex.keep_alive)
        return None

    def resolve(self, host: bytes, path: bytes) -> tuple[Route, bytes] | None:
        table = self.table
        if self.domain is not None and host:
            name = host.split(b":", 1)[0].lower()
            suffix = b"." + self.domain
            if name.endswith(suffix):
                deployment, _, project = name[: -len(suffix)].rpartition(b".")
                route = table.by_bytes.get((project, deployment))
                if route is not None:
                    return route, path
        found = table.by_path.get(path)  # the same few paths come again and again
        if found is not None:
            return found
        if refusal(path) is not None:
            return None  # Exchange.begin answers 400 with the reason
        parts = path.split(b"/", 3)  # b"", project, deployment, rest
        if len(parts) < 3:
            return None
        route = table.by_bytes.get((parts[1], parts[2]))
        if route is None:
            return None
        found = route, b"/" + parts[3] if len(parts) == 4 else b"/"
        if len(table.by_path) < MAX_CACHED_ROUTES:
            table.by_path[path] = found
        return found

    def authorize(self, route: Route, auth: bytes, api_key: bytes,
                  ex: Exchange) -> tuple[int, str, str] | None:
        if not route.needs_key:
            return None
        table = self.table
        # A key is found by the SHA-256 of its secret, so no secret is compared byte by byte
        # against a stored one. A header value seen before is found by itself in this table's
        # cache (a dict: its hash is keyed per process, and bytes are compared only on equal
        # hashes, that is, for the same value). Only values that named a key get in, so
        # unknown ones cannot fill it, and a new table (a key deleted or detached) starts empty.
        raw, cache = (api_key, table.by_api_key) if api_key else (auth, table.by_auth)
        entry = cache.get(raw)
        if entry is None:
            secret = api_key.strip()
            from_api_key = bool(secret)
            if not secret:
                scheme, _, value = auth.strip().partition(b" ")
                if scheme.lower() == b"bearer":
                    secret = value.strip()
            if not secret:
                return 401, "unauthorized", ("an API key is required: send 'Authorization: "
                                             "Bearer <key>' or 'X-Api-Key: <key>'")
            entry = table.keys.get(hashlib.sha256(secret).hexdigest())
            if entry is None:
                return 401, "unauthorized", "unknown API key"
            if from_api_key == bool(api_key) and len(cache) < MAX_CACHED_SECRETS:
                cache[raw] = entry
        if entry.expires_at is not None and entry.expires_at < time.time():
            return 401, "unauthorized", "the API key has expired"
        if entry.project != route.project or (route.keys is not None
                                              and entry.name not in route.keys):
            return 403, "forbidden", f"this API key may not call {route.project}/{route.name}"
        ex.key_log = entry.log_name
        return None

    def record(self, ex: Exchange, backend: Backend | None, own: bool) -> None:
        """Per request: counters, and the access-log line."""
        route = ex.route
        now = monotonic()
        duration = now - ex.started if ex.started else 0.0
        if route is not None:
            stats = route.stats or self.metrics.of(route)
            stats.responses[ex.status] = stats.responses.get(ex.status, 0) + 1
            stats.latency.observe(duration)
            if ex.ttfb is not None:
                stats.ttfb.observe(ex.ttfb)
            stats.last_request = now
        if self.access.path is not None:
            rid = ex.request_id
            self.access.add(
                now, quoted(rid) if ex.request_id_given else '"' + rid.decode() + '"',
                ex.conn.client_ip, ex.method, ex.path, route.log_names if route else NO_ROUTE,
                backend.log_name if backend else "null", ex.status, duration, ex.ttfb,
                ex.key_log, "gateway" if own else "replica")
