"""The gateway's per-request Python cost, without sockets: the real ClientConnection,
Exchange and UpstreamConnection over in-memory transports, against a bare relay (parse,
forward, parse, answer: nothing else) measured the same way in the same run.

Each build of berth.gateway (interpreted, and compiled by mypyc when installed) runs in its
own interpreter. Run: python bench/gateway_hotpath.py [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httptools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.builders import deployment, replica
from tests.fakes.transport import MemoryTransport

from berth.domain.records import ApiKey
from berth.gateway.proxy import ClientConnection
from berth.gateway.service import Gateway
from berth.gateway.table import build_table
from berth.gateway.upstream import UpstreamConnection
from berth.services.api_keys import digest

SECRET = "bk_bench-secret"
REQUEST = (b"POST /p/echo/predict HTTP/1.1\r\nHost: 127.0.0.1:8001\r\n"
           b"Authorization: Bearer " + SECRET.encode() + b"\r\n"
           b"Content-Type: application/json\r\nContent-Length: 19\r\n\r\n"
           b'{"inputs": "hello"}')
BODY = b'{"echo": {"inputs": "hello"}, "replica": "echo-1"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))


def berth_gateway(n: int) -> float:
    d = deployment(2, api_keys=["bench"], per_worker=64)
    rows = [replica(d, "echo-1"), replica(d, "echo-2")]
    rows[1].port = 9001
    key = ApiKey(id="k", project="p", name="bench", description="", digest=digest(SECRET),
                 prefix="bk_", created_at=datetime.now(UTC), expires_at=None)
    gw = Gateway(store=None, access_log=Path("/dev/null"))  # type: ignore[arg-type]
    gw.table = build_table(1, [d], rows, [key], None)
    client = ClientConnection(gw)
    client.connection_made(MemoryTransport(keep=False))  # type: ignore[arg-type]
    ups = {}
    for r in rows:
        assert r.port is not None
        conn = UpstreamConnection(gw.pool, ("127.0.0.1", r.port))
        conn.connection_made(MemoryTransport(keep=False))  # type: ignore[arg-type]
        conn.used = 1
        ups[("127.0.0.1", r.port)] = conn
        gw.pool.give_back(conn)
    started = time.perf_counter()
    for _ in range(n):
        client.data_received(REQUEST)
        ex = client.queue[0]
        assert ex.upstream is not None
        ex.upstream.data_received(RESPONSE)
    elapsed = time.perf_counter() - started
    assert client.transport.last.endswith(BODY), client.transport.last  # type: ignore[union-attr]
    gw.access.lines.clear()
    return elapsed / n * 1e6


class BareUpstream:
    def __init__(self, client: BareClient) -> None:
        self.client, self.parser = client, httptools.HttpResponseParser(self)
        self.t = MemoryTransport(keep=False)

    def data_received(self, data: bytes) -> None:
        self.buf: list[bytes] = []
        self.parser.feed_data(data)
        self.client.t.write(b"".join(self.buf))

    def on_message_begin(self) -> None:
        self.h: list[bytes] = []

    def on_header(self, n: bytes, v: bytes) -> None:
        self.h.append(n + b": " + v + b"\r\n")

    def on_headers_complete(self) -> None:
        self.buf.append(b"HTTP/1.1 200 OK\r\n" + b"".join(self.h) + b"\r\n")

    def on_body(self, b: bytes) -> None:
        self.buf.append(b)


class BareClient:
    def __init__(self) -> None:
        self.t, self.parser = MemoryTransport(keep=False), httptools.HttpRequestParser(self)
        self.up = BareUpstream(self)

    def on_message_begin(self) -> None:
        self.h: list[bytes] = []
        self.url, self.body = b"", b""

    def on_url(self, u: bytes) -> None:
        self.url += u

    def on_header(self, n: bytes, v: bytes) -> None:
        self.h.append(n + b": " + v + b"\r\n")

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        self.up.t.write(b"POST " + self.url + b" HTTP/1.1\r\n" + b"".join(self.h) + b"\r\n"
                        + self.body)


def bare_relay(n: int) -> float:
    client = BareClient()
    started = time.perf_counter()
    for _ in range(n):
        client.parser.feed_data(REQUEST)
        client.up.data_received(RESPONSE)
    return (time.perf_counter() - started) / n * 1e6


def measure(requests: int) -> tuple[float, float]:
    """Best of three, after a warm-up: (bare relay, berth gateway) in us per request."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    berth_gateway(2000), bare_relay(2000)
    bare = min(bare_relay(requests) for _ in range(3))
    berth = min(berth_gateway(requests) for _ in range(3))
    return bare, berth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the Berth path in "
                        "this process (set BERTH_PURE_PYTHON=1: cProfile cannot see into the "
                        "compiled modules)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: this interpreter's build of berth.gateway only
        import berth.gateway
        print(json.dumps([berth.gateway.compiled, *measure(args.requests)]))
        return
    rows = []
    # Each build in its own interpreter: a process loads one or the other, never both.
    for pure in (True, False):
        env = {k: v for k, v in os.environ.items() if k != "BERTH_PURE_PYTHON"}
        if pure:
            env["BERTH_PURE_PYTHON"] = "1"
        out = subprocess.run([sys.executable, __file__, "--one", "--requests",
                              str(args.requests)], env=env, check=True, capture_output=True,
                             text=True).stdout
        compiled, bare, berth = json.loads(out)
        rows.append((compiled, bare, berth))
    bare = min(row[1] for row in rows)
    print(f"{'path':<60} {'us/request':>10} {'vs bare':>8}")
    print(f"{'bare relay (parse, forward, parse, answer)':<60} {bare:>10.2f} {1.0:>7.2f}x")
    for compiled, _bare, berth in rows:
        label = ("berth gateway, compiled (mypyc)" if compiled
                 else "berth gateway, interpreted") + " - auth, P2C, metrics, log"
        print(f"{label:<60} {berth:>10.2f} {berth / bare:>7.2f}x")
    if not rows[1][0]:
        print("(the compiled build is not installed: `pip install -e .` with a C compiler)")
    if args.profile:
        asyncio.set_event_loop(asyncio.new_event_loop())
        profile = cProfile.Profile()
        profile.runcall(berth_gateway, args.requests)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
