"""One request through the gateway: route, authenticate, reserve a replica, relay, finish."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from berth.gateway.balancer import Backend, Shed
from berth.gateway.http import HOP_BY_HOP, gateway_error, status_line
from berth.gateway.table import Route
from berth.gateway.upstream import UpstreamConnection

if TYPE_CHECKING:
    from berth.gateway.proxy import ClientConnection

REPLAY_LIMIT = 64 * 1024  # request bodies up to this size can be resent after a stale connection
BUFFER_LIMIT = 1024 * 1024  # buffered request body before the client is paused
MAX_TRIES = 3
SKIP_UPSTREAM = HOP_BY_HOP | {b"host", b"content-length", b"x-forwarded-for",
                              b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}


class Exchange:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.gw = conn.gw
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = "GET"
        self.keep_alive = True
        self.http11 = True
        self.started = 0.0
        self.route: Route | None = None
        self.backend: Backend | None = None
        self.upstream: UpstreamConnection | None = None
        self.head = b""
        self.body: list[bytes] = []  # buffered until the upstream is ready; kept for a replay
        self.body_size = 0
        self.body_done = False
        self.chunked_request = False
        self.replayable = True
        self.sent = False
        self.responded = False
        self.chunked_response = False
        self.status = 0
        self.ttfb: float | None = None
        self.request_id = b""
        self.key_name = ""
        self.tried: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.cold_start: float | None = None
        self.done = False
        self.began = False

    # -- request --------------------------------------------------------------------------

    def streams_body(self) -> bool:
        """Whether to start before the body has arrived: chunked or large bodies stream."""
        if self.chunked_request:
            return True
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return True
            if name == b"content-length":
                return not value.isdigit() or int(value) > REPLAY_LIMIT
        return True  # no body at all

    def begin(self) -> None:
        if self.began:
            return
        self.began = True
        self.started = self.gw.loop.time()
        host = auth = api_key = forwarded = b""
        for name, value in self.headers:
            if name == b"host":
                host = value
            elif name == b"authorization":
                auth = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"x-request-id":
                self.request_id = value[:200]
            elif name == b"x-forwarded-for":
                forwarded = value
            elif name == b"transfer-encoding":
                self.chunked_request = b"chunked" in value.lower()
        if not self.request_id:
            self.request_id = self.gw.new_request_id()
        path, _, query = self.url.partition(b"?")
        local = self.gw.local_answer(path, self)
        if local is not None:
            self._reply_raw(local)
            return
        found = self.gw.resolve(host, path)
        if found is None:
            self.reply_error(404, "not_found", "no deployment at this address")
            return
        route, rest = found
        self.route = route
        refusal = self.gw.authorize(route, auth, api_key, self)
        if refusal is not None:
            status, code, message = refusal
            self.reply_error(status, code, message,
                             {"www-authenticate": "Bearer"} if status == 401 else None)
            return
        self._build_head(host, forwarded, rest + (b"?" + query if query else b""),
                         strip_auth=route.needs_key)
        self.deadline = self.gw.loop.call_later(route.total, self._on_total_timeout)
        backend = route.balancer.try_acquire()
        if backend is not None:
            self._dispatch(backend)
        else:
            self.task = self.gw.loop.create_task(self._wait_for_slot())

    def _build_head(self, host: bytes, forwarded: bytes, target: bytes, strip_auth: bool) -> None:
        drop = SKIP_UPSTREAM
        if strip_auth:
            drop = drop | {b"authorization", b"x-api-key"}
        for name, value in self.headers:
            if name == b"connection":
                drop = drop | {t.strip().lower() for t in value.split(b",")}
        lines = [b"%s %s HTTP/1.1\r\n" % (self.method.encode(), target or b"/")]
        lines += [name + b": " + value + b"\r\n" for name, value in self.headers
                  if name not in drop]
        client = self.conn.client_ip.encode()
        lines.append(b"x-forwarded-for: " + (forwarded + b", " + client if forwarded else client)
                     + b"\r\n")
        lines.append(b"x-forwarded-proto: http\r\nx-forwarded-host: " + host + b"\r\n")
        lines.append(b"x-request-id: " + self.request_id + b"\r\n")
        if self.chunked_request:
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            length = next((v for n, v in self.headers if n == b"content-length"), None)
            if length is not None:
                lines.append(b"content-length: " + length + b"\r\n")
        self.head = b"".join(lines)  # "host:" and the blank line are added per upstream

    def request_body(self, chunk: bytes) -> None:
        if self.done:
            return
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked_request else chunk
        self.body_size += len(chunk)
        if self.sent and self.upstream is not None:
            self.upstream.write(framed)
            if self.body_size > REPLAY_LIMIT:
                self.replayable = False
            else:
                self.body.append(framed)
            return
        self.body.append(framed)
        if self.body_size > REPLAY_LIMIT:
            self.replayable = False
        if self.body_size > BUFFER_LIMIT:
            self.conn.pause_reading()

    def request_done(self) -> None:
        self.body_done = True
        if self.chunked_request:
            self.body.append(b"0\r\n\r\n")
            if self.sent and self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
        if self.sent:
            self._arm(self.route.first_byte if self.route else 300.0, self._on_first_byte_timeout)

    # -- reserving a replica ----------------------------------------------------------------

    async def _wait_for_slot(self) -> None:
        route = self.route
        assert route is not None
        balancer = route.balancer
        if not balancer.backends and route.from_zero:
            self.cold_start = self.gw.loop.time()
            self.gw.activate(route)
        try:
            waiter = balancer.enqueue(frozenset(self.tried))
        except Shed as shed:
            self._shed(shed.reason, str(shed))
            return
        self.gw.metrics.queued(route, +1)
        try:
            backend = await asyncio.wait_for(waiter.future, route.queue_timeout)
        except TimeoutError:
            balancer.abandon(waiter)
            self._shed("queue_timeout", f"no replica was free within the queue timeout "
                       f"({route.queue_timeout:g}s)")
            return
        except asyncio.CancelledError:
            balancer.abandon(waiter)
            raise
        finally:
            self.gw.metrics.queued(route, -1)
            self.gw.metrics.waited(route, self.gw.loop.time() - self.started)
        if self.done:
            balancer.release(backend)
            return
        if self.cold_start is not None:
            self.gw.cold_started(route, self.gw.loop.time() - self.cold_start)
        self._dispatch(backend)

    def _shed(self, reason: str, message: str) -> None:
        assert self.route is not None
        self.gw.metrics.shed(self.route, reason)
        retry = max(1, int(self.route.queue_timeout // 10))
        self.reply_error(503, reason, message, {"retry-after": str(retry)})

    def _dispatch(self, backend: Backend) -> None:
        self.backend = backend
        self.tried.add(backend.replica_id)
        conn = self.gw.pool.take(backend.key)
        if conn is not None:
            self._send_on(conn)
        else:
            self.task = self.gw.loop.create_task(self._connect(backend))

    async def _connect(self, backend: Backend) -> None:
        try:
            conn = await self.gw.pool.connect(backend.key)
        except OSError as exc:
            self._retry(f"connect to replica {backend.replica_id} failed: {exc}")
            return
        if self.done:
            self.gw.pool.give_back(conn)
            return
        self._send_on(conn)

    def _retry(self, why: str) -> None:
        """The request never reached a replica: try another one."""
        self._release()
        route = self.route
        if route is None or self.done:
            return
        if len(self.tried) < MAX_TRIES and self.replayable:
            backend = route.balancer.try_acquire(frozenset(self.tried))
            if backend is not None:
                self.gw.metrics.retried(route)
                self._dispatch(backend)
                return
        self.reply_error(502, "upstream_unavailable", why)

    def _send_on(self, conn: UpstreamConnection) -> None:
        assert self.backend is not None
        self.upstream = conn
        self.sent = True
        host = b"host: %s:%d\r\n\r\n" % (self.backend.host.encode(), self.backend.port)
        conn.send(self, self.head + host + b"".join(self.body))
        if not self.replayable:
            self.body = []
        self.conn.resume_reading()
        if self.body_done:
            self._arm(self.route.first_byte if self.route else 300.0, self._on_first_byte_timeout)

    # -- response (ResponseSink) --------------------------------------------------------------

    def hold_writes(self) -> None:
        self.conn.hold_writes()

    def flush_writes(self) -> None:
        self.conn.flush_writes()

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]],
                         keep_alive: bool) -> None:
        if self.done:
            return
        self.responded = True
        self.status = status
        self.ttfb = self.gw.loop.time() - self.started
        self.body = []
        route = self.route
        assert route is not None
        self._arm(route.idle, self._on_idle_timeout)
        out = [status_line(status)]
        framed = event_stream = cache_control = False
        for name, value in headers:
            lname = name.lower()
            if lname in HOP_BY_HOP:
                continue
            if lname == b"content-length":
                framed = True
            elif lname == b"content-type":
                event_stream = value.startswith(b"text/event-stream")
            elif lname == b"cache-control":
                cache_control = True
            out.append(name + b": " + value + b"\r\n")
        if not framed and status not in (204, 304) and self.method != "HEAD":
            if self.http11:
                self.chunked_response = True
                out.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False
        if event_stream:
            out.append(b"x-accel-buffering: no\r\n")
            if not cache_control:
                out.append(b"cache-control: no-cache\r\n")
        out.append(b"x-request-id: " + self.request_id + b"\r\n")
        out.append(b"connection: keep-alive\r\n\r\n" if self.keep_alive else
                   b"connection: close\r\n\r\n")
        self.conn.write(b"".join(out))
        if self.method == "HEAD" and self.upstream is not None:
            upstream, self.upstream = self.upstream, None
            upstream.abort()
            self._finish()

    def on_response_body(self, chunk: bytes) -> None:
        if self.done:
            return
        if self.timer is not None and self.route is not None:
            self._arm(self.route.idle, self._on_idle_timeout)
        if self.chunked_response:
            self.conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.conn.write(chunk)

    def on_response_complete(self) -> None:
        if self.done:
            return
        if self.chunked_response:
            self.conn.write(b"0\r\n\r\n")
        self.upstream = None  # the connection goes back to the pool by itself
        self._finish()

    def on_upstream_lost(self, exc: Exception | None) -> None:
        if self.done:
            return
        upstream, self.upstream = self.upstream, None
        if not self.responded:
            stale = upstream is not None and upstream.used > 1 and not upstream.received
            if stale and self.replayable and self.body_done:
                self.sent = False
                self._retry("the replica closed a kept-alive connection")
                return
            self.reply_error(502, "upstream_closed", "the replica closed the connection "
                             "before answering" + (f": {exc}" if exc else ""))
            return
        self.keep_alive = False
        self.conn.abort()
        self._finish(status=self.status or 502)

    def pause_client_reading(self) -> None:
        self.conn.pause_reading()

    def resume_client_reading(self) -> None:
        self.conn.resume_reading()

    def pause_upstream(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_upstream(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    # -- timeouts and the end -------------------------------------------------------------------

    def _arm(self, seconds: float, callback: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.gw.loop.call_later(seconds, callback)  # type: ignore[arg-type]

    def _on_first_byte_timeout(self) -> None:
        self._timeout("first_byte", self.route.first_byte if self.route else 0)

    def _on_idle_timeout(self) -> None:
        self._timeout("idle", self.route.idle if self.route else 0)

    def _on_total_timeout(self) -> None:
        self._timeout("total", self.route.total if self.route else 0)

    def _timeout(self, which: str, seconds: float) -> None:
        if self.done:
            return
        if self.task is not None:
            self.task.cancel()
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        if self.route is not None:
            self.gw.metrics.shed(self.route, f"timeout_{which}")
        if self.responded:
            self.keep_alive = False
            self.conn.abort()
            self._finish(status=504)
        else:
            self.reply_error(504, f"timeout_{which}",
                             f"the replica did not answer within the {which} timeout "
                             f"({seconds:g}s)")

    def client_gone(self) -> None:
        """The client disconnected: stop waiting, cut the upstream request, free the slot."""
        if self.done:
            return
        if self.task is not None:
            self.task.cancel()
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        self.keep_alive = False
        self._finish(status=499)

    def reply_error(self, status: int, code: str, message: str,
                    extra: dict[str, str] | None = None) -> None:
        if self.done:
            return
        if not self.body_done:
            self.keep_alive = False  # the rest of the request body is not worth reading
        self.conn.write(gateway_error(status, code, message, keep_alive=self.keep_alive,
                                      request_id=self.request_id, extra=extra))
        self._finish(status=status, own=True)

    def _reply_raw(self, data: bytes) -> None:
        self.conn.write(data)
        self.done = True
        self.conn.finished(self)

    def _release(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None and self.route is not None:
            self.route.balancer.release(backend)

    def _finish(self, status: int | None = None, own: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if status is not None:
            self.status = status
        for handle in (self.timer, self.deadline):
            if handle is not None:
                handle.cancel()
        backend = self.backend
        self._release()
        task = self.task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):
                if asyncio.current_task() is not task:
                    task.cancel()
        self.gw.record(self, backend, own)
        self.conn.finished(self)
