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
# Bounds on what one client may make the gateway hold (nginx answers the same way).
MAX_URL_BYTES: Final = 16 * 1024  # a longer request target: 414
MAX_HEAD_BYTES: Final = 64 * 1024  # request target and headers together: 431
MAX_PIPELINED: Final = 64  # requests queued on one connection before it is read no further


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; `ClientConnection.refusal` says why."""

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
        self.paused = False  # request body backpressure
        self.pipeline_full = False  # MAX_PIPELINED requests queued
        self.reading_paused = False  # the transport's state: paused for either reason
        self.write_paused = False
        self.batch: list[bytes] | None = None
        self.refusal: tuple[int, str, str] | None = None
        # A refusal (a malformed or stalled request) waiting for the requests before it to be
        # answered; then it is written and the connection closed. Nothing more is read.
        self.last_words: bytes | None = None
        # The head being parsed. head_bytes: its target and complete headers (the callbacks);
        # head_read: the bytes read into it, also those httptools holds in an unfinished line.
        self.between = True  # no message begun and unfinished
        self.head_open = False
        self.heads = 0
        self.head_bytes = 0
        self.head_read = 0
        # For the once-a-second idle sweep (no clock read per request).
        self.reads = 0
        self.seen_reads = -1  # the first sweep starts the quiet clock, also before a read
        self.quiet_since = 0.0
        self.watched_head = -1
        self.head_since = 0.0

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
        self.reads += 1
        heads, between = self.heads, self.between
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(501, "upgrade_not_supported", "protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            self._refuse(*(self.refusal or (400, "bad_request", "malformed HTTP request")))
            return
        if self.head_open:
            if self.heads == heads:  # all of `data` went on with a head begun before
                self.head_read += len(data)
            elif self.heads == heads + 1 and between:  # all of `data` began this head
                self.head_read = len(data)
            # (begun after other requests in `data`: counted from the next read on)
            if self.head_read > MAX_HEAD_BYTES:
                self._refuse(*_head_too_large())
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
        self.between = False
        self.head_open = True
        self.heads += 1
        self.head_bytes = self.head_read = 0

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.url += url
        self.head_bytes += len(url)
        if len(self.parsing.url) > MAX_URL_BYTES:
            self.refusal = (414, "uri_too_long",
                            f"the request target is longer than {MAX_URL_BYTES} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.parsing is not None
        self.parsing.add_header(lower(name), value)
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_HEAD_BYTES:
            self.refusal = _head_too_large()
            raise _Refused

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        self.head_open = False
        method = self.parser.get_method()
        ex.method = _METHODS.get(method) or method.decode()
        ex.keep_alive = keep_alive = self.parser.should_keep_alive()
        # The version matters only to keep a connection open: HTTP/1.1 (chunked answers), or
        # HTTP/1.0 asking for it with a Connection header. Asked only then (it is a string).
        ex.http11 = keep_alive and (not ex.connection_header
                                    or self.parser.get_http_version() == "1.1")
        self.queue.append(ex)
        if len(self.queue) >= MAX_PIPELINED and not self.pipeline_full:
            self.pipeline_full = True
            self._reading()

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.request_body(body)

    def on_message_complete(self) -> None:
        self.between = True
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
            return
        if self.pipeline_full and len(self.queue) <= MAX_PIPELINED // 2:
            self.pipeline_full = False
            self._reading()
        if self.queue:
            self.queue[0].begin()
        elif self.last_words is not None:
            self._close_with(self.last_words)

    def abort(self) -> None:
        """Cut the client off (an error after the response started: nothing else to say)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def pause_reading(self) -> None:
        """The request body is coming faster than it goes upstream."""
        if not self.paused:
            self.paused = True
            self._reading()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self._reading()

    def _reading(self) -> None:
        """Pause or resume the transport: paused while either reason holds."""
        pause = self.paused or self.pipeline_full or self.last_words is not None
        if pause != self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def sweep(self, now: float, idle_seconds: float, head_seconds: float) -> None:
        """Called about once a second. A connection with nothing in flight is closed after
        `idle_seconds` without a byte from the client, and a request body being read gets
        408 after as long without one; a request head still arriving after `head_seconds`
        is answered 408. Requests in flight have their own timeouts."""
        if self.closed:
            return
        # A body is arriving (its head is in, its end is not) and the gateway reads it: the
        # client, not the replica, is what it waits for.
        body_due = not self.between and not self.head_open and not self.reading_paused
        if self.reads != self.seen_reads or (self.queue and not body_due):
            self.seen_reads, self.quiet_since = self.reads, now
        if body_due and now - self.quiet_since >= idle_seconds:
            self._refuse(408, "request_timeout", "no byte of the request body arrived "
                         f"within {idle_seconds:g}s")
            return
        if self.queue or not self.head_open:
            self.watched_head = -1
        elif self.watched_head != self.heads:
            self.watched_head, self.head_since = self.heads, now
        elif now - self.head_since >= head_seconds:
            self._refuse(408, "request_timeout",
                         f"the request head did not arrive within {head_seconds:g}s")
            return
        if not self.queue and not self.head_open and now - self.quiet_since >= idle_seconds:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Refuse what the client sends now; the requests it sent complete before are still
        answered first, then the refusal, then the connection closes."""
        if self.transport is None or self.closed or self.last_words is not None:
            return
        self.last_words = gateway_error(status, code, message, keep_alive=False)
        self._reading()  # nothing more is read
        bad = self.parsing
        if bad is not None and not bad.body_done and bad in self.queue:
            # Its head was in (it may be on its way to a replica): it goes, with its slot.
            self.queue.remove(bad)
            bad.refused(status)
            if bad.responded:  # its answer had begun: it can be neither finished nor followed
                self.abort()
                self.closed = True
                return
        if not self.queue:
            self._close_with(self.last_words)

    def _close_with(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.flush_writes()
            self.transport.write(data)
            self.transport.close()
            self.closed = True


def _head_too_large() -> tuple[int, str, str]:
    return (431, "request_header_fields_too_large",
            f"the request target and headers are larger than {MAX_HEAD_BYTES} bytes")

