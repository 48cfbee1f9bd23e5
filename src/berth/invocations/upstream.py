"""The dispatcher's HTTP/1.1 client to replicas: pooled keep-alive connections, responses
parsed with httptools and read whole. httpx cost ~1.3 ms of the gateway's event loop per
request here (`python bench/async_queue.py`); this is the small part of it async tries need.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import cast

import httptools

Key = tuple[str, int]


class ConnectFailed(Exception):
    """The replica could not be reached: the request was not sent."""


class ConnectionLost(Exception):
    """The connection broke before the whole response came."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class _Connection(asyncio.Protocol):
    def __init__(self, client: ReplicaClient, key: Key) -> None:
        self.client, self.key = client, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.future: asyncio.Future[Answer] | None = None
        self.chunks: list[bytes] = []
        self.content_type = ""
        self.closed = False
        self.used = 0
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost(f"connection closed{f': {exc}' if exc else ''}"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        answer = Answer(self.parser.get_status_code(), b"".join(self.chunks), self.content_type)
        future, self.future = self.future, None
        self.chunks, self.content_type = [], ""
        if self.parser.should_keep_alive() and not self.closed:
            self.client.give_back(self)
        else:
            self.close()
        if future is not None and not future.done():
            future.set_result(answer)

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.future = asyncio.get_running_loop().create_future()
        self.used += 1
        self.received = False
        self.transport.write(data)
        return self.future

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_exception(exc)


class ReplicaClient:
    def __init__(self, max_idle: int = 64) -> None:
        self.max_idle = max_idle
        self.idle: dict[Key, list[_Connection]] = {}

    def give_back(self, conn: _Connection) -> None:
        idle = self.idle.setdefault(conn.key, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    def _take(self, key: Key) -> _Connection | None:
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self, key: Key) -> _Connection:
        conn = _Connection(self, key)
        try:
            await asyncio.get_running_loop().create_connection(lambda: conn, key[0], key[1])
        except OSError as exc:
            raise ConnectFailed(f"connect to {key[0]}:{key[1]} failed: {exc}") from None
        return conn

    async def post(self, host: str, port: int, path: str, body: bytes,
                   headers: dict[str, str]) -> Answer:
        """POST and read the whole answer. A pooled connection the replica had closed
        (its keep-alive timeout) is replaced once, before any byte of an answer came."""
        key = (host, port)
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n{lines}"
                f"content-length: {len(body)}\r\n\r\n").encode("latin-1") + body
        conn = self._take(key)
        for fresh in (conn is None, True):
            if conn is None:
                conn = await self._connect(key)
            try:
                return await conn.send(data)
            except ConnectionLost:
                if fresh or conn.received:
                    raise
                conn = None  # a stale pooled connection: once more on a new one
            except asyncio.CancelledError:
                conn.close()  # a timeout: the answer, if it comes, goes nowhere
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
        self.idle.clear()
