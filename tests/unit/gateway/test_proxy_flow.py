"""One request through the real ClientConnection, Exchange and UpstreamConnection over
in-memory transports: when the gateway writes upstream, and what each side receives."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import pytest

from berth.domain.status import DesiredState
from berth.gateway.proxy import ClientConnection
from berth.gateway.service import Gateway
from berth.gateway.table import build_table
from berth.gateway.upstream import UpstreamConnection
from tests.fakes.builders import deployment, replica
from tests.fakes.transport import MemoryTransport
from tests.unit.gateway.conftest import Rig

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def test_a_request_that_came_whole_goes_upstream_in_one_write(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n"
                             b"content-length: 7\r\n\r\n{\"a\":1}")
    assert rig.upstream_io.writes == 1
    sent = rig.upstream_io.take()
    assert sent.startswith(b"POST /predict HTTP/1.1\r\n") and sent.endswith(b'\r\n\r\n{"a":1}')
    rig.upstream.data_received(OK)
    answer = rig.client_io.take()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n{}")


def test_a_body_still_coming_streams_after_the_head(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n"
                             b"content-length: 10\r\n\r\n01234")
    first = rig.upstream_io.take()
    assert b"content-length: 10\r\n" in first and first.endswith(b"\r\n\r\n01234")
    rig.client.data_received(b"56789")
    assert rig.upstream_io.take() == b"56789"
    rig.upstream.data_received(OK)
    assert rig.client_io.take().endswith(b"{}")


def test_expect_continue_is_answered_by_the_gateway(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n"
                             b"expect: 100-continue\r\ncontent-length: 2\r\n\r\n")
    assert rig.client_io.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    head = rig.upstream_io.take()
    assert b"expect" not in head.lower() and head.endswith(b"\r\n\r\n")
    rig.client.data_received(b"{}")
    assert rig.upstream_io.take() == b"{}"
    rig.upstream.data_received(OK)
    assert rig.client_io.take().startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_answered_in_order(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/a HTTP/1.1\r\nhost: gw\r\n\r\n"
                             b"GET /p/echo/b HTTP/1.1\r\nhost: gw\r\n\r\n")
    assert rig.upstream_io.take().startswith(b"GET /a HTTP/1.1\r\n")  # b waits its turn
    rig.upstream.data_received(OK)
    assert rig.upstream_io.take().startswith(b"GET /b HTTP/1.1\r\n")
    rig.upstream.data_received(OK)
    assert rig.client_io.take().count(b"HTTP/1.1 200 OK\r\n") == 2


def answers(data: bytes) -> list[bytes]:
    """The status lines in what the client received, in order."""
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", data)


def test_garbage_after_valid_requests_is_refused_after_they_are_answered(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/a HTTP/1.1\r\nhost: gw\r\n\r\n"
                             b"GET /p/echo/b HTTP/1.1\r\nhost: gw\r\n\r\n"
                             b"\x01\x02 not http\r\n\r\n")
    assert rig.upstream_io.take().startswith(b"GET /a HTTP/1.1\r\n")
    assert not rig.client_io.closed and not rig.client_io.reading  # nothing more is read
    rig.upstream.data_received(OK)
    assert rig.upstream_io.take().startswith(b"GET /b HTTP/1.1\r\n")
    assert not rig.client_io.closed
    rig.upstream.data_received(OK)
    data = rig.client_io.take()
    assert answers(data) == [b"HTTP/1.1 200 OK"] * 2 + [b"HTTP/1.1 400 Bad Request"]
    assert data.endswith(b'"message": "malformed HTTP request"}}') and rig.client_io.closed
    stats = rig.gw.table.routes[("p", "echo")].stats
    assert stats is not None and stats.responses == {200: 2}  # none is taken for a 499


def test_a_malformed_body_behind_an_answered_request_is_dropped_and_refused(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/a HTTP/1.1\r\nhost: gw\r\n\r\n"
                             b"POST /p/echo/b HTTP/1.1\r\nhost: gw\r\n"
                             b"transfer-encoding: chunked\r\n\r\n5\r\nab")
    assert rig.upstream_io.take().startswith(b"GET /a HTTP/1.1\r\n")
    rig.client.data_received(b"zz\r\nnot-a-chunk-size\r\n")
    rig.upstream.data_received(OK)
    assert rig.upstream_io.take() == b""  # the malformed request never reaches the replica
    assert answers(rig.client_io.take()) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"]
    assert rig.client_io.closed


def test_a_malformed_body_of_a_request_in_flight_cuts_it_and_frees_its_slot(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/b HTTP/1.1\r\nhost: gw\r\n"
                             b"transfer-encoding: chunked\r\n\r\n2\r\nab\r\n")
    assert rig.upstream_io.take().endswith(b"2\r\nab\r\n")
    rig.client.data_received(b"not-a-chunk-size\r\n")
    assert answers(rig.client_io.take()) == [b"HTTP/1.1 400 Bad Request"]
    assert rig.client_io.closed and rig.upstream_io.closed
    assert rig.gw.table.routes[("p", "echo")].balancer.inflight() == 0


UNFRAMED = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello"


@pytest.mark.parametrize(("request_line", "connection", "chunked"), [
    (b"GET /p/echo/x HTTP/1.1", b"", True),
    (b"GET /p/echo/x HTTP/1.1", b"connection: keep-alive\r\n", True),
    (b"GET /p/echo/x HTTP/1.0", b"connection: keep-alive\r\n", False),
    (b"GET /p/echo/x HTTP/1.0", b"", False),
    (b"GET /p/echo/x HTTP/1.1", b"connection: close\r\n", False),
])
def test_an_unframed_answer_is_chunked_only_for_http11_keep_alive(
        rig: Rig, request_line: bytes, connection: bytes, chunked: bool) -> None:
    rig.client.data_received(request_line + b"\r\nhost: gw\r\n" + connection + b"\r\n")
    rig.upstream.data_received(UNFRAMED)
    rig.upstream.connection_lost(None)  # the replica's body ends with its connection
    answer = rig.client_io.take()
    if chunked:
        assert b"transfer-encoding: chunked\r\n" in answer and b"connection: keep-alive" in answer
        assert answer.endswith(b"5\r\nhello\r\n0\r\n\r\n") and not rig.client_io.closed
    else:
        assert b"transfer-encoding" not in answer and b"connection: close\r\n" in answer
        assert answer.endswith(b"\r\n\r\nhello") and rig.client_io.closed


def test_a_chunked_body_arriving_with_its_head_goes_up_framed(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/up HTTP/1.1\r\nhost: gw\r\n"
                             b"transfer-encoding: chunked\r\n\r\n5\r\npart0\r\n")
    sent = rig.upstream_io.take()
    assert b"\r\ntransfer-encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n5\r\npart0\r\n")
    rig.client.data_received(b"5\r\npart1\r\n0\r\n\r\n")
    assert rig.upstream_io.take() == b"5\r\npart1\r\n0\r\n\r\n"


def test_a_stale_kept_alive_connection_is_replaced_on_the_same_replica() -> None:
    """The pooled connection dies unanswered: the request goes again, on a new connection
    (a real one, to a loopback server standing in for the replica)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    received: list[bytes] = []
    accepted: list[asyncio.BaseTransport] = []

    class Replica(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            accepted.append(transport)

        def data_received(self, data: bytes) -> None:
            received.append(data)
            if data.endswith(b"{}"):
                self.transport.write(OK)  # type: ignore[attr-defined]

    async def scenario() -> bytes:
        server = await loop.create_server(Replica, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        gw = Gateway(store=None)  # type: ignore[arg-type]
        gw.pool.loop = loop
        d = deployment(1)
        row = replica(d, "a")
        row.port = port
        gw.table = build_table(1, [d], [row], [], None)
        client_io, stale_io = MemoryTransport(), MemoryTransport()
        client = ClientConnection(gw)
        client.connection_made(client_io)  # type: ignore[arg-type]
        stale = UpstreamConnection(gw.pool, ("127.0.0.1", port))
        stale.connection_made(stale_io)  # type: ignore[arg-type]
        stale.used = 1  # it carried a request before, and was idle since
        gw.pool.give_back(stale)
        client.data_received(b"POST /p/echo/x HTTP/1.1\r\nhost: gw\r\n"
                             b"content-length: 2\r\n\r\n{}")
        await asyncio.sleep(0)  # the write goes out at the end of the turn
        assert stale_io.take().endswith(b"{}")
        stale.connection_lost(None)  # closed by the replica: not a byte came back
        for _ in range(200):
            if client_io.data:
                break
            await asyncio.sleep(0.01)
        gw.pool.close_all()
        for transport in accepted:
            transport.close()
        server.close()
        await server.wait_closed()
        return client_io.take()

    try:
        answer = loop.run_until_complete(scenario())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert b"".join(received).startswith(b"POST /x HTTP/1.1\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"{}")


def test_a_deployment_no_replica_can_serve_is_answered_503_at_once() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        gw = Gateway(store=None)  # type: ignore[arg-type]
        d = deployment(0)  # scale {min 0, max 0}
        gw.table = build_table(1, [d], [], [], None)
        client_io = MemoryTransport()
        client = ClientConnection(gw)
        client.connection_made(client_io)  # type: ignore[arg-type]
        client.data_received(b"GET /p/echo/a HTTP/1.1\r\nhost: gw\r\n\r\n")
        loop.run_until_complete(asyncio.sleep(0))  # the request's first step, no more
        head, _, body = client_io.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ") and b"retry-after" not in head
        assert b"connection: keep-alive" in head and not client_io.closed
        assert "scaled to max 0" in body.decode()
        assert gw.activating == {}  # no wake-up is sent for it
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_requests_waiting_when_a_deployment_is_stopped_are_answered_503() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        gw = Gateway(store=None)  # type: ignore[arg-type]
        d = deployment(1)
        gw.table = build_table(1, [d], [replica(d, "a", ready=False)], [], None)
        client_io = MemoryTransport()
        client = ClientConnection(gw)
        client.connection_made(client_io)  # type: ignore[arg-type]
        client.data_received(b"GET /p/echo/a HTTP/1.1\r\nhost: gw\r\n\r\n")
        loop.run_until_complete(asyncio.sleep(0))
        assert client_io.take() == b""  # it waits for the replica to be ready
        stopped = replace(d, desired=DesiredState.STOPPED)
        gw.table = build_table(2, [stopped], [], [], gw.table)
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        answer = client_io.take()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"is stopped" in answer
    finally:
        asyncio.set_event_loop(None)
        loop.close()
