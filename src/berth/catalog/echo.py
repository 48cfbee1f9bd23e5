"""catalog/echo: a tiny, fast HTTP model server that echoes its input.

    POST /predict          {"echo": <body>, "replica": ID}
    POST /predict/stream   one server-sent event per top-level key, then [DONE]
    POST /v1/chat/completions, /v1/completions   OpenAI-compatible: the last message (the
                           prompt) echoes back; `stream: true` sends one chunk per word
                           (see echo_openai)
    GET  /healthz          {"status": "ok"}, or 503 while $ECHO_UNHEALTHY_FILE exists
    GET  /metrics          the gauges set below, as Prometheus text (empty until one is set)
    PUT  /metrics/{name}   {"value": 3.5}: sets gauge `name` (a Prometheus metric name) for
                           a test to scale on (custom autoscaling triggers); answers
                           {"name", "value"}; DELETE /metrics/{name} removes it
    POST /status/{code}, /flaky/{n}   failing on purpose, for retry tests (see echo_faults)
    /v2/...                KServe v2 / Open Inference Protocol: health, model metadata and
                           readiness, and POST /v2/models/{name}/infer, whose inputs come back
                           as its outputs (see echo_oip)

Environment: PORT (8080), ECHO_HOST (127.0.0.1), BERTH_REPLICA_ID, ECHO_DELAY_MS (per
answer, and between stream events), ECHO_STARTUP_DELAY_MS (before binding the port).
Raw asyncio + httptools: requests on a connection are answered in order (pipelining),
without a task unless an answer has to wait.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import httptools

from berth.catalog import echo_oip, echo_openai
from berth.catalog.echo_faults import FLAKY, Faults

_JSON = b"application/json"
_NOT_JSON = object()
_MAX_QUEUED = 64  # pipelined requests waiting on one connection before reading pauses
_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
_METRICS, _GAUGE_PREFIX = b"/metrics", b"/metrics/"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,199}")
_MAX_GAUGES = 1000


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    replica: str
    delay: float
    startup_delay: float
    unhealthy_file: str

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            host=env.get("ECHO_HOST", "127.0.0.1"),
            port=int(env.get("PORT", "8080")),
            replica=env.get("BERTH_REPLICA_ID", "local"),
            delay=float(env.get("ECHO_DELAY_MS", "0")) / 1000,
            startup_delay=float(env.get("ECHO_STARTUP_DELAY_MS", "0")) / 1000,
            unhealthy_file=env.get("ECHO_UNHEALTHY_FILE", ""),
        )


@dataclass
class _Request:
    method: bytes
    path: bytes
    body: bytes
    keep_alive: bool


_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


def _response(status: int, body: bytes, keep_alive: bool, content_type: bytes = _JSON) -> bytes:
    head = _STATUS_LINES[status] + b"content-type: %s\r\ncontent-length: %d\r\n" % (
        content_type, len(body))
    return head + (b"\r\n" if keep_alive else b"connection: close\r\n\r\n") + body


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message}).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Gauges:
    """The gauges this server exposes on GET /metrics, shared by its connections."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def page(self) -> bytes:
        return "".join(f"# TYPE {name} gauge\n{name} {value!r}\n"
                       for name, value in sorted(self.values.items())).encode()

    def answer(self, method: bytes, path: bytes, body: bytes) -> tuple[int, bytes, bytes]:
        """(status, body, content type) of a /metrics request."""
        if path == _METRICS:
            if method != b"GET":
                return (*_error(405, f"{method.decode()} /metrics: use GET"), _JSON)
            return 200, self.page(), _PROMETHEUS
        name = path[len(_GAUGE_PREFIX):].decode(errors="replace")
        if not _METRIC_NAME.fullmatch(name):
            return (*_error(400, f"metric name {name!r} must match "
                                 "[a-zA-Z_:][a-zA-Z0-9_:]* (at most 200 characters)"), _JSON)
        if method == b"DELETE":
            found = self.values.pop(name, None) is not None
            return 200, json.dumps({"name": name, "deleted": found}).encode(), _JSON
        if method != b"PUT":
            return (*_error(405, f"{method.decode()} /metrics/{name}: use PUT or DELETE"), _JSON)
        value = _finite(_json(body))
        if isinstance(value, str):
            return (*_error(400, f'body must be {{"value": <a finite number>}}: {value}'), _JSON)
        if name not in self.values and len(self.values) >= _MAX_GAUGES:
            return (*_error(400, f"at most {_MAX_GAUGES} gauges; DELETE one first"), _JSON)
        self.values[name] = value
        return 200, json.dumps({"name": name, "value": value}).encode(), _JSON


def _finite(payload: Any) -> float | str:
    """A gauge body's value, or what is wrong with it."""
    if not isinstance(payload, dict) or "value" not in payload:
        return "value is missing"
    value = payload["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"value is {json.dumps(value)[:100]}"
    try:
        number = float(value)
    except OverflowError:
        return "value is out of range"
    return number if math.isfinite(number) else f"value is {value!r}"


class EchoProtocol(asyncio.Protocol):
    def __init__(self, config: Config, connections: set[EchoProtocol], gauges: Gauges,
                 faults: Faults) -> None:
        self.config = config
        self._connections = connections
        self._gauges = gauges
        self._faults = faults
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._queue: deque[_Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._closing = False

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._connections.add(self)

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        if self._worker is not None:
            self._worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(_response(400, b'{"error": "upgrade not supported"}', False))
        except httptools.HttpParserError:
            self._finish(_response(400, b'{"error": "malformed HTTP request"}', False))

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every request: the length test spares the others.
        if (len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue"
                and self._transport is not None):
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = _Request(
            method=self._parser.get_method(), path=self._url.partition(b"?")[0],
            body=b"".join(self._body), keep_alive=self._parser.should_keep_alive(),
        )
        if self._worker is None and not self._must_wait(request):
            self._answer_now(request)  # the fast path: no task, no queue
            return
        self._queue.append(request)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain_queue())
        if len(self._queue) >= _MAX_QUEUED and not self._paused and self._transport:
            self._transport.pause_reading()
            self._paused = True

    # -- answering ---------------------------------------------------------------------

    def _must_wait(self, request: _Request) -> bool:
        return request.path == b"/predict/stream" or request.path in echo_openai.PATHS or (
            self.config.delay > 0 and (request.path == b"/predict"
                                       or echo_oip.is_infer(request.path)))

    def _answer_now(self, request: _Request) -> None:
        path = request.path
        if path == b"/predict" and request.method == b"POST":  # the hot path: tested first
            status, body = self._predict(request.body)
            content_type = _JSON
        elif path == _METRICS or path.startswith(_GAUGE_PREFIX):
            status, body, content_type = self._gauges.answer(request.method, path, request.body)
        else:
            status, body, content_type = *self._route(request), _JSON
        self._finish(_response(status, body, request.keep_alive, content_type),
                     request.keep_alive)

    def _predict(self, body: bytes) -> tuple[int, bytes]:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}")
        return 200, json.dumps({"echo": payload, "replica": self.config.replica}).encode()

    def _finish(self, data: bytes, keep_alive: bool = False) -> None:
        if self._transport is None or self._closing:
            return
        self._transport.write(data)
        if not keep_alive:
            self._closing = True
            self._transport.close()

    def _route(self, request: _Request) -> tuple[int, bytes]:
        method, path = request.method, request.path
        if method == b"POST":
            failed = self._faults.answer(path, request.body)
            if failed is not None:
                return failed
            if path.startswith(FLAKY):  # its failures are over: an echo
                return self._predict(request.body)
        if path == b"/predict/stream" and method == b"POST" and not isinstance(
                _json(request.body), dict):
            return _error(400, "request body must be a JSON object")
        kind = echo_openai.PATHS.get(path)
        if kind is not None and method == b"POST":
            try:
                answer = echo_openai.answer(kind, _json(request.body), _ident(kind),
                                            int(time.time()))
            except ValueError as exc:
                return _error(400, str(exc))
            return 200, json.dumps(answer).encode()
        if path == b"/healthz" and method == b"GET":
            if not self._healthy():
                return 503, b'{"status": "unhealthy"}'
            return 200, b'{"status": "ok"}'
        if path == echo_oip.PREFIX or path.startswith(b"/v2/"):
            found = echo_oip.route(method, path, request.body, ready=self._healthy())
            if found is not None:
                return found
        return _error(404, f"not found: {method.decode()} {path.decode(errors='replace')}")

    def _healthy(self) -> bool:
        return not (self.config.unhealthy_file and os.path.exists(self.config.unhealthy_file))

    async def _drain_queue(self) -> None:
        try:
            while self._queue and not self._closing:
                request = self._queue.popleft()
                if self._paused and len(self._queue) < _MAX_QUEUED // 2 and self._transport:
                    self._transport.resume_reading()
                    self._paused = False
                events = self._events(request)
                if events is not None:
                    await self._stream(request, events)
                    continue
                if self._must_wait(request):
                    await asyncio.sleep(self.config.delay)
                self._answer_now(request)
        finally:
            self._worker = None

    def _events(self, request: _Request) -> list[bytes] | None:
        """The events of a streamed answer; None when the request is not one (or is bad:
        `_route` then answers it)."""
        if request.method != b"POST":
            return None
        payload = _json(request.body)
        if request.path == b"/predict/stream":
            if not isinstance(payload, dict):
                return None
            return [json.dumps({"echo": {key: value}, "replica": self.config.replica}).encode()
                    for key, value in payload.items()]
        kind = echo_openai.PATHS.get(request.path)
        if kind is None or not isinstance(payload, dict) or payload.get("stream") is not True:
            return None
        try:
            chunks = echo_openai.chunks(kind, payload, _ident(kind), int(time.time()))
        except ValueError:
            return None
        return [json.dumps(chunk).encode() for chunk in chunks]

    async def _stream(self, request: _Request, events: list[bytes]) -> None:
        """Server-sent events, $ECHO_DELAY_MS apart, then [DONE]."""
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
            + (b"\r\n" if request.keep_alive else b"connection: close\r\n\r\n"))
        for i, event in enumerate(events):
            if i and self.config.delay > 0:
                await asyncio.sleep(self.config.delay)
            if self._closing:
                return
            self._transport.write(_chunk(b"data: " + event + b"\n\n"))
        self._finish(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n", request.keep_alive)


def _json(body: bytes) -> Any:
    """The request body as JSON; a marker object when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def _ident(kind: str) -> str:
    return ("chatcmpl-" if kind == echo_openai.CHAT else "cmpl-") + uuid.uuid4().hex


async def serve(config: Config, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    if config.startup_delay > 0:
        await asyncio.sleep(config.startup_delay)
    loop = asyncio.get_running_loop()
    connections: set[EchoProtocol] = set()
    gauges, faults = Gauges(), Faults()
    server = await loop.create_server(
        lambda: EchoProtocol(config, connections, gauges, faults), config.host, config.port,
        backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = server.sockets[0].getsockname()[1]
    message = f"echo listening on http://{config.host}:{port} ({config.replica})"
    (ready or _print)(message)
    try:
        await stop.wait()
    finally:
        server.close()
        for connection in list(connections):
            connection.close()
        await server.wait_closed()


def _print(message: str) -> None:
    print(message, flush=True)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def main() -> None:
    try:
        config = Config.from_env()
    except ValueError as exc:
        sys.exit(f"echo: bad environment: {exc}")
    _run(serve(config))


if __name__ == "__main__":
    main()
