"""The client side of the proxy: one protocol per client connection, one Exchange per request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Final, cast

import httptools

from berth.gateway.exchange import Exchange
from berth.gateway.http import gateway_error, lower

_METHODS: Final = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                          "OPTIONS")}

if TYPE_CHECKING:
    from berth.gateway.service import Gateway


class ClientConnection:
    """An asyncio protocol by its methods (no base class, so the compiled build is native)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.parsing: Exchange | None = None
        # In arrival order; the head is being served. A list, not a deque: pipelining depth is
        # tiny, and the compiled build has native list operations (a deque's are calls).
        self.queue: list[Exchange] = []
        self.closed = False
        self.client_ip = ""
        self.client_ip_bytes = b""
        self.paused = False  # client's reading paused (request body backpressure)
        self.write_paused = False
        self.batch: list[bytes] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = self.transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.client_ip_bytes = self.client_ip.encode()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gw.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(501, "upgrade_not_supported", "protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            self._refuse(400, "bad_request", "malformed HTTP request")
            return
        # A request whose whole body came with its head began at its end (one write
        # upstream); one whose body is still coming begins now, and its body streams.
        if self.queue and not self.closed:
            head = self.queue[0]
            if not head.began:
                head.begin()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gw.connections.discard(self)
        for ex in list(self.queue):
            ex.client_gone()
        if self.parsing is not None and self.parsing not in self.queue:
            self.parsing.client_gone()
        self.queue.clear()

    def eof_received(self) -> bool:
        return False  # the client half-closed: the transport closes the connection

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.queue:
            self.queue[0].pause_upstream()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.queue:
            self.queue[0].resume_upstream()

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.parsing = Exchange(self)

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.parsing is not None
        self.parsing.add_header(lower(name), value)

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        method = self.parser.get_method()
        ex.method = _METHODS.get(method) or method.decode()
        ex.keep_alive = keep_alive = self.parser.should_keep_alive()
        # The version matters only to keep a connection open: HTTP/1.1 (chunked answers), or
        # HTTP/1.0 asking for it with a Connection header. Asked only then (it is a string).
        ex.http11 = keep_alive and (not ex.connection_header
                                    or self.parser.get_http_version() == "1.1")
        self.queue.append(ex)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        if ex is not None:
            ex.request_done()
            if self.queue and self.queue[0] is ex:
                ex.begin()

    # -- used by exchanges --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.batch is not None:
            self.batch.append(data)
        elif not self.closed and self.transport is not None:
            self.transport.write(data)

    def hold_writes(self) -> None:
        """Collect writes until flush_writes: one syscall for what one upstream read made."""
        if self.batch is None:
            self.batch = []

    def flush_writes(self) -> None:
        batch, self.batch = self.batch, None
        if batch and not self.closed and self.transport is not None:
            self.transport.write(b"".join(batch) if len(batch) > 1 else batch[0])

    def finished(self, ex: Exchange) -> None:
        if self.queue and self.queue[0] is ex:
            del self.queue[0]
        if self.closed or self.transport is None:
            return
        if not ex.keep_alive:
            self.flush_writes()
            self.transport.close()
            self.closed = True
        elif self.queue:
            self.queue[0].begin()

    def abort(self) -> None:
        """Cut the client off (an error after the response started: nothing else to say)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def pause_reading(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def _refuse(self, status: int, code: str, message: str) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(gateway_error(status, code, message, keep_alive=False))
            self.transport.close()
            self.closed = True
