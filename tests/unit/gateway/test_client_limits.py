"""What one client connection may make the gateway hold: the size of a request head, the
requests pipelined ahead, and how long an idle connection or a slow head is kept."""

from __future__ import annotations

import json

from berth.gateway.proxy import MAX_HEAD_BYTES, MAX_PIPELINED, MAX_URL_BYTES
from tests.unit.gateway.conftest import Rig

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
GET = b"GET /p/echo/healthz HTTP/1.1\r\nhost: gw\r\n\r\n"


def refused(rig: Rig, status: int, code: str) -> dict[str, str]:
    answer = rig.client_io.take()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"x-berth-error-source: gateway" in head and b"connection: close" in head
    assert rig.client_io.closed and rig.upstream_io.writes == 0
    error: dict[str, str] = json.loads(body)["error"]
    assert error["code"] == code
    return error


def test_a_request_target_over_the_limit_is_414(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/" + b"a" * MAX_URL_BYTES + b" HTTP/1.1\r\n")
    error = refused(rig, 414, "uri_too_long")
    assert str(MAX_URL_BYTES) in error["message"]


def test_headers_over_the_limit_are_431(rig: Rig) -> None:
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 1000) for i in range(MAX_HEAD_BYTES // 1000 + 2))
    rig.client.data_received(b"GET /p/echo/healthz HTTP/1.1\r\nhost: gw\r\n" + many + b"\r\n")
    assert str(MAX_HEAD_BYTES) in refused(rig, 431, "request_header_fields_too_large")["message"]


def test_one_endless_header_line_is_431_before_it_is_all_held(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/healthz HTTP/1.1\r\nx-endless: ")
    piece = b"v" * 16 * 1024
    for _ in range(MAX_HEAD_BYTES // len(piece) + 1):  # httptools holds the line until it ends
        rig.client.data_received(piece)
    refused(rig, 431, "request_header_fields_too_large")


def test_an_unfinished_head_over_the_limit_in_one_read_is_431(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/healthz HTTP/1.1\r\nx-big: " + b"v" * MAX_HEAD_BYTES)
    refused(rig, 431, "request_header_fields_too_large")


def test_a_head_arriving_in_many_small_reads_within_the_limit_is_served(rig: Rig) -> None:
    head = (b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\nx-big: " + b"v" * (MAX_HEAD_BYTES // 2)
            + b"\r\ncontent-length: 2\r\n\r\n{}")
    for i in range(0, len(head), 1000):
        rig.client.data_received(head[i:i + 1000])
    assert rig.upstream_io.take().endswith(b"\r\n\r\n{}")
    rig.upstream.data_received(OK)
    assert rig.client_io.take().startswith(b"HTTP/1.1 200 OK")


def test_a_large_body_after_a_split_head_is_not_taken_for_head(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n")
    body = b"b" * (2 * MAX_HEAD_BYTES)
    rig.client.data_received(b"content-length: %d\r\n\r\n" % len(body) + body)
    assert not rig.client_io.closed
    assert rig.upstream_io.take().endswith(body)


def test_reading_pauses_while_too_many_requests_are_pipelined(rig: Rig) -> None:
    rig.client.data_received(GET * (MAX_PIPELINED + 3))
    assert not rig.client_io.reading
    for _ in range(MAX_PIPELINED // 2 + 2):
        rig.upstream.data_received(OK)
    assert not rig.client_io.reading  # 33 still queued
    rig.upstream.data_received(OK)
    assert rig.client_io.reading  # half drained: read on
    for _ in range(MAX_PIPELINED // 2):
        rig.upstream.data_received(OK)
    assert rig.client_io.take().count(b"HTTP/1.1 200 OK") == MAX_PIPELINED + 3


def test_a_new_connection_is_idle_from_the_first_sweep_not_before(rig: Rig) -> None:
    rig.client.sweep(10_000.0, idle_seconds=75, head_seconds=60)  # no byte read yet
    assert not rig.client_io.closed
    rig.client.sweep(10_074.0, idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed
    rig.client.sweep(10_075.0, idle_seconds=75, head_seconds=60)
    assert rig.client_io.closed


def test_an_idle_connection_is_closed_after_the_idle_time(rig: Rig) -> None:
    rig.client.data_received(GET)
    rig.client.sweep(0.0, idle_seconds=75, head_seconds=60)
    rig.client.sweep(500.0, idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed  # a request in flight is never idle
    rig.upstream.data_received(OK)
    rig.client.sweep(501.0, idle_seconds=75, head_seconds=60)  # idle since the last busy sweep
    rig.client.sweep(574.0, idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed
    rig.client.data_received(b"G")  # a byte of a next request: not idle (a head is coming)
    rig.client.sweep(576.0, idle_seconds=75, head_seconds=60)
    rig.client.data_received(GET[1:])
    rig.upstream.data_received(OK)
    rig.client.sweep(577.0, idle_seconds=75, head_seconds=60)
    rig.client.sweep(652.0, idle_seconds=75, head_seconds=60)
    assert rig.client_io.closed and rig.client_io.take().count(b"200 OK") == 2


def test_a_head_still_arriving_after_the_head_time_is_408(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/healthz HTTP/1.1\r\n")
    rig.client.sweep(0.0, idle_seconds=75, head_seconds=60)
    for second in range(1, 60, 5):  # trickling bytes does not reset the head's clock
        rig.client.data_received(b"x-a: b\r\n")
        rig.client.sweep(float(second), idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed
    rig.client.sweep(60.0, idle_seconds=75, head_seconds=60)
    assert "60s" in refused(rig, 408, "request_timeout")["message"]


def inflight(rig: Rig) -> int:
    return rig.gw.table.routes[("p", "echo")].balancer.inflight()


def test_a_request_body_stalled_for_the_idle_time_is_408_and_frees_its_slot(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n"
                             b"content-length: 10\r\n\r\n0")
    assert rig.upstream_io.take().endswith(b"\r\n\r\n0")  # on its way: a slot is held
    assert inflight(rig) == 1
    rig.client.sweep(0.0, idle_seconds=75, head_seconds=60)
    for second in (70, 140, 210):  # a byte now and then keeps it going
        rig.client.data_received(b"1")
        rig.client.sweep(float(second), idle_seconds=75, head_seconds=60)
    rig.client.sweep(284.0, idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed and inflight(rig) == 1
    rig.client.sweep(285.0, idle_seconds=75, head_seconds=60)
    head, _, body = rig.client_io.take().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head
    assert "75s" in json.loads(body)["error"]["message"]
    assert rig.client_io.closed and rig.upstream_io.closed  # the replica's request is cut
    assert inflight(rig) == 0
    stats = rig.gw.table.routes[("p", "echo")].stats
    assert stats is not None and stats.responses == {408: 1}


def test_a_body_held_back_by_the_gateway_is_not_the_clients_stall(rig: Rig) -> None:
    rig.client.data_received(b"POST /p/echo/predict HTTP/1.1\r\nhost: gw\r\n"
                             b"content-length: 10\r\n\r\n0")
    rig.client.pause_reading()  # the replica takes the body slower than the client sends it
    rig.client.sweep(0.0, idle_seconds=75, head_seconds=60)
    rig.client.sweep(500.0, idle_seconds=75, head_seconds=60)
    assert not rig.client_io.closed and inflight(rig) == 1
    rig.client.resume_reading()
    rig.client.data_received(b"123456789")
    rig.upstream.data_received(OK)
    assert rig.client_io.take().startswith(b"HTTP/1.1 200 OK")
