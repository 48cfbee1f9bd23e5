"""Pooled keep-alive connections to replicas, parsed with httptools."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, cast

import httptools

if TYPE_CHECKING:
    # The exchange receives the response. Typed as the concrete class, not a Protocol: the
    # compiled build then calls its methods directly instead of looking them up by name.
    from berth.gateway.exchange import Exchange


class UpstreamConnection:
    """An asyncio protocol by its methods (no base class, so the compiled build is native)."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: Exchange | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.closed = False
        self.used = 0  # requests sent on this connection
        self.received = False  # any byte of the current response arrived
        self.keep_alive = False  # the current response lets the connection be reused

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        sink = self.sink
        if sink is not None:
            sink.hold_writes()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._lost(exc)
        finally:
            if sink is not None:
                sink.flush_writes()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.pause_client_reading()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.resume_client_reading()

    # -- httptools callbacks ------------------------------------------------------------

    # No on_message_begin: httptools calls only the callbacks a protocol has, and the
    # headers are started afresh once handed over.
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers, self.headers = self.headers, []
        self.keep_alive = self.parser.should_keep_alive()  # known once the head is read
        if self.sink is not None:
            self.sink.on_response_head(self.parser.get_status_code(), headers, self.keep_alive)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.on_response_body(body)

    def on_message_complete(self) -> None:
        sink, self.sink = self.sink, None
        # Back to the pool first: the client's next pipelined request, begun as this one
        # completes, can go out on this connection.
        if self.keep_alive and not self.closed:
            self.pool.give_back(self)
        else:
            self.close()
        if sink is not None:
            sink.on_response_complete()

    # -- use ------------------------------------------------------------------------------

    def send(self, sink: Exchange, data: bytes) -> None:
        assert self.transport is not None
        self.sink = sink
        self.used += 1
        self.received = False
        self.pool.defer(self, data)

    def write(self, data: bytes) -> None:
        self.pool.defer(self, data)

    def flush(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.pool.discard(self)

    def abort(self) -> None:
        """Drop the connection at once (the client went away mid-request)."""
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self.pool.discard(self)

    def _lost(self, exc: Exception | None) -> None:
        if self.closed and self.sink is None:
            return
        self.closed = True
        sink, self.sink = self.sink, None
        self.pool.discard(self)
        if self.transport is not None:
            self.transport.close()
        if sink is not None:
            sink.on_upstream_lost(exc)


class UpstreamPool:
    def __init__(self, max_idle_per_replica: int = 256) -> None:
        self.max_idle = max_idle_per_replica
        self.idle: dict[tuple[str, int], list[UpstreamConnection]] = {}
        self.pending: list[tuple[UpstreamConnection, bytes]] = []  # writes for this turn
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the gateway serves

    def take(self, key: tuple[str, int]) -> UpstreamConnection | None:
        conns = self.idle.get(key)
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, key: tuple[str, int]) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        conn = UpstreamConnection(self, key)
        await loop.create_connection(lambda: cast(asyncio.Protocol, conn), key[0], key[1])
        return conn

    def defer(self, conn: UpstreamConnection, data: bytes) -> None:
        """Queue a write for the end of this turn of the event loop.

        The replicas share the machine with the gateway: a write wakes one, and the kernel
        may switch to it at once. Writing after every request that arrived this turn has been
        routed lets the gateway finish its batch first, and lets each replica then take
        several requests per wake-up (fewer context switches on both sides).
        """
        if self.loop is None:  # not serving (the in-memory hot-path bench): write now
            conn.flush(data)
            return
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append((conn, data))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        for conn, data in pending:
            conn.flush(data)

    def give_back(self, conn: UpstreamConnection) -> None:
        conns = self.idle.setdefault(conn.key, [])
        if len(conns) < self.max_idle:
            conns.append(conn)
        else:
            conn.close()

    def discard(self, conn: UpstreamConnection) -> None:
        conns = self.idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)

    def close_replica(self, key: tuple[str, int]) -> None:
        for conn in self.idle.pop(key, []):
            conn.close()

    def close_all(self) -> None:
        for key in list(self.idle):
            self.close_replica(key)
