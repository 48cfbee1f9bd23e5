"""One request through the gateway: route, authenticate, reserve a replica, relay, finish."""

from __future__ import annotations

import asyncio
import contextlib
from time import monotonic
from typing import TYPE_CHECKING, Final

from berth.gateway import asynccalls
from berth.gateway.balancer import UNAVAILABLE, Backend, Shed
from berth.gateway.http import client_head, gateway_error, upstream_head
from berth.gateway.paths import refusal as path_refusal
from berth.gateway.table import Route
from berth.gateway.upstream import UpstreamConnection

if TYPE_CHECKING:
    from berth.gateway.asynccalls import AsyncCall
    from berth.gateway.proxy import ClientConnection

INF: Final = float("inf")
REPLAY_LIMIT: Final = 64 * 1024  # bodies up to this size can be resent after a stale connection
BUFFER_LIMIT: Final = 1024 * 1024  # buffered request body before the client is paused
MAX_TRIES: Final = 3
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

# The request headers the gateway acts on (add_header), by lowercased name.
_HOST: Final = 1
_AUTHORIZATION: Final = 2
_API_KEY: Final = 3
_REQUEST_ID: Final = 4
_FORWARDED_FOR: Final = 5
_CONNECTION: Final = 6
_TRANSFER_ENCODING: Final = 7
_EXPECT: Final = 8
_REQUEST_KIND: Final = {b"host": _HOST, b"authorization": _AUTHORIZATION, b"x-api-key": _API_KEY,
                        b"x-request-id": _REQUEST_ID, b"x-forwarded-for": _FORWARDED_FOR,
                        b"connection": _CONNECTION, b"transfer-encoding": _TRANSFER_ENCODING,
                        b"expect": _EXPECT}

class Exchange:
    # Defaults live on the class: a request only pays for what it changes.
    method = "GET"
    keep_alive = True
    http11 = True
    connection_header = False  # the request had one (HTTP/1.0 keep-alive asks with it)
    started = 0.0
    route: Route | None = None
    backend: Backend | None = None
    upstream: UpstreamConnection | None = None
    head = b""
    body_size = 0
    body_done = False
    chunked_request = False  # set as its headers are parsed: body chunks may come first
    replayable = True
    stale_retries = 0
    sent = False
    responded = False
    chunked_response = False
    until_eof = False  # the replica's body ends when it closes the connection
    status = 0
    ttfb: float | None = None
    request_id = b""
    host = b""  # the request headers the gateway acts on (add_header)
    auth = b""
    api_key = b""
    forwarded = b""
    expect_continue = False
    request_id_given = False  # the client sent it (so it is quoted with care in the log)
    path = b""  # the URL without its query
    key_log = "null"  # the API key's name as JSON, for the access log
    due = INF  # when the next timeout (first byte, idle or total) fires
    total_at = INF
    idle_gap = INF
    task: asyncio.Task[None] | None = None
    cold_start: float | None = None
    done = False
    began = False
    async_call: AsyncCall | None = None  # POST {address}/async/{route}: the gateway keeps it
    raw_body: list[bytes] | None = None  # a chunked body's chunks unframed, before begin

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.gw = conn.gw
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []  # buffered until the upstream is ready; kept for a replay
        self.tried: list[str] = []

    # -- request --------------------------------------------------------------------------

    def add_header(self, name: bytes, value: bytes) -> None:
        """One request header as parsed, its name lowercased: kept, and read if it is one
        the gateway acts on (before the body: chunked framing applies to the first chunk)."""
        self.headers.append((name, value))
        which = _REQUEST_KIND.get(name, 0)
        if not which:
            return
        if which == _HOST:
            self.host = value
        elif which == _AUTHORIZATION:
            self.auth = value
        elif which == _API_KEY:
            self.api_key = value
        elif which == _REQUEST_ID:
            self.request_id = value[:200]
            self.request_id_given = True
        elif which == _FORWARDED_FOR:
            self.forwarded = value
        elif which == _CONNECTION:
            self.connection_header = True
        elif which == _TRANSFER_ENCODING:
            self.chunked_request = b"chunked" in value.lower()
        else:
            self.expect_continue = value.lower() == b"100-continue"

    def begin(self) -> None:
        if self.began:
            return
        self.began = True
        self.started = monotonic()
        if not self.request_id:
            self.request_id = self.gw.new_request_id()
        path, _, query = self.url.partition(b"?")
        self.path = path
        local = self.gw.local_answer(path, self)
        if local is not None:
            self._reply_raw(local)
            return
        found = self.gw.resolve(self.host, path)
        if found is None:
            refused = path_refusal(path)  # why resolve found nothing, for a target it refuses
            if refused is not None:
                self.reply_error(400, "bad_request", refused)
            else:
                self.reply_error(404, "not_found", "no deployment at this address")
            return
        route, rest = found
        self.route = route
        refusal = self.gw.authorize(route, self.auth, self.api_key, self)
        if refusal is not None:
            status, code, message = refusal
            self.reply_error(status, code, message,
                             {"www-authenticate": "Bearer"} if status == 401 else None)
            return
        if asynccalls.is_async(rest):
            if self.expect_continue and not self.body_done:
                self.conn.write(CONTINUE)
            base = path[:len(path) - len(rest)].decode("utf-8", errors="replace")
            asynccalls.begin(self, route, rest, query, base)
            return
        self.head = upstream_head(
            self.method, rest + (b"?" + query if query else b""), self.headers, host=self.host,
            forwarded=self.forwarded, client=self.conn.client_ip_bytes, request_id=self.request_id,
            chunked=self.chunked_request, strip_auth=route.needs_key)
        if self.expect_continue and not self.body_done:
            self.conn.write(CONTINUE)  # the gateway reads the body; the replica never sees Expect
        self.total_at = self.due = self.started + route.total
        self.idle_gap = route.idle
        backend = route.balancer.try_acquire()
        if backend is not None:
            self._dispatch(backend)
        else:
            self.task = self.gw.loop.create_task(self._wait_for_slot())

    def request_body(self, chunk: bytes) -> None:
        if self.done:
            return
        if self.async_call is not None:
            self.async_call.add(chunk)
            return
        if self.chunked_request and not self.began:
            if self.raw_body is None:
                self.raw_body = []
            self.raw_body.append(chunk)
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
        if self.async_call is not None:
            self.async_call.done()
            return
        if self.chunked_request:
            self.body.append(b"0\r\n\r\n")
            if self.sent and self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
        if self.sent:
            self._await_first_byte()

    # -- reserving a replica ----------------------------------------------------------------

    async def _wait_for_slot(self) -> None:
        route = self.route
        assert route is not None
        balancer = route.balancer
        if not balancer.backends:
            if balancer.unavailable:  # none can come: waiting would only delay the answer
                self._shed(UNAVAILABLE, balancer.unavailable)
                return
            if route.from_zero:
                self.cold_start = monotonic()
                self.gw.activate(route)
        try:
            waiter = balancer.enqueue(frozenset(self.tried))
        except Shed as shed:
            self._shed(shed.reason, str(shed))
            return
        self.gw.metrics.queued(route, +1)
        try:
            async with asyncio.timeout(route.queue_timeout):  # not wait_for: see probes.checks
                backend = await waiter.future
        except TimeoutError:
            balancer.abandon(waiter)
            self._shed("queue_timeout", f"no replica was free within the queue timeout "
                       f"({route.queue_timeout:g}s)")
            return
        except Shed as shed:  # the deployment was stopped (or scaled to 0) while it waited
            self._shed(shed.reason, str(shed))
            return
        except asyncio.CancelledError:
            balancer.abandon(waiter)
            raise
        finally:
            self.gw.metrics.queued(route, -1)
            self.gw.metrics.waited(route, monotonic() - self.started)
        if self.done:
            balancer.release(backend)
            return
        if self.cold_start is not None:
            self.gw.cold_started(route, monotonic() - self.cold_start)
        self._dispatch(backend)

    def _shed(self, reason: str, message: str) -> None:
        assert self.route is not None
        self.gw.metrics.shed(self.route, reason)
        if reason == UNAVAILABLE:  # not a matter of time: no Retry-After
            self.reply_error(503, reason, message)
            return
        retry = max(1, int(self.route.queue_timeout // 10))
        self.reply_error(503, reason, message, {"retry-after": str(retry)})

    def _dispatch(self, backend: Backend) -> None:
        self.backend = backend
        self.tried.append(backend.replica_id)
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
            self._await_first_byte()

    # -- response (called by the UpstreamConnection) ------------------------------------------

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
        now = monotonic()
        self.ttfb = now - self.started
        self.body = []
        self.due = min(self.total_at, now + self.idle_gap)
        head = client_head(status, headers, method=self.method, http11=self.http11,
                           keep_alive=self.keep_alive, request_id=self.request_id)
        self.chunked_response, self.until_eof = head.chunked, head.until_eof
        self.keep_alive = head.keep_alive
        self.conn.write(head.data)
        if self.method == "HEAD" and self.upstream is not None:
            upstream, self.upstream = self.upstream, None
            upstream.abort()
            self._finish()

    def on_response_body(self, chunk: bytes) -> None:
        if self.done:
            return
        self.due = min(self.total_at, monotonic() + self.idle_gap)
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
            if (stale and self.replayable and self.body_done and self.backend is not None
                    and self.stale_retries < MAX_TRIES):
                # The replica had closed that idle connection (its keep-alive timeout, say):
                # nothing is wrong with it. Same replica, same slot, a new connection.
                self.stale_retries += 1
                self.sent = False
                self.task = self.gw.loop.create_task(self._connect(self.backend))
                return
            self.reply_error(502, "upstream_closed", "the replica closed the connection "
                             "before answering" + (f": {exc}" if exc else ""))
            return
        if self.until_eof and exc is None:  # the close is the end of the body
            self.on_response_complete()
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

    def _await_first_byte(self) -> None:
        first_byte = self.route.first_byte if self.route else 300.0
        self.due = min(self.total_at, monotonic() + first_byte)

    def expire(self, now: float) -> None:
        """The gateway's timeout sweep found this exchange past `due`."""
        route = self.route
        if route is None:
            return
        if now >= self.total_at:
            self._timeout("total", route.total)
        elif self.responded:
            self._timeout("idle", route.idle)
        else:
            self._timeout("first_byte", route.first_byte)

    def _cut(self) -> None:
        """Stop waiting for a slot or connection and drop the upstream request."""
        if self.task is not None:
            self.task.cancel()
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()

    def _timeout(self, which: str, seconds: float) -> None:
        if self.done:
            return
        self._cut()
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

    def refused(self, status: int) -> None:
        """The gateway refused the rest of this request (a malformed or stalled body), and
        its connection, which has let it go, answers. Stop it, free its slot, log `status`."""
        if self.done:
            return
        self._cut()
        self._finish(status=status, own=True, tell_conn=False)

    def client_gone(self) -> None:
        """The client disconnected: stop waiting, cut the upstream request, free the slot."""
        if self.done:
            return
        self._cut()
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

    def reply_local(self, data: bytes, status: int) -> None:
        """A whole response the gateway made (async intake and status)."""
        if self.done:
            return
        self.conn.write(data)
        self._finish(status=status, own=True)

    def _reply_raw(self, data: bytes) -> None:
        self.conn.write(data)
        self.done = True
        self.conn.finished(self)

    def _release(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None and self.route is not None:
            self.route.balancer.release(backend)

    def _finish(self, status: int | None = None, own: bool = False,
                tell_conn: bool = True) -> None:
        if self.done:
            return
        self.done = True
        if status is not None:
            self.status = status
        backend = self.backend
        self._release()
        task = self.task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):
                if asyncio.current_task() is not task:
                    task.cancel()
        self.gw.record(self, backend, own)
        if tell_conn:
            self.conn.finished(self)
