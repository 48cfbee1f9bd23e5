"""What one client may make a real `berth serve` gateway hold: oversized request heads are
refused, idle connections and slow heads are closed (here with short settings)."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Api, BerthServer, echo_spec

IDLE, HEAD = 2, 2  # seconds: BERTH_GATEWAY_IDLE_SECONDS, BERTH_GATEWAY_HEADER_SECONDS
GET = b"GET /e2e/limits/healthz HTTP/1.1\r\nhost: gw\r\n\r\n"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    srv = BerthServer(tmp_path_factory.mktemp("limits") / "data", env={
        "BERTH_GATEWAY_IDLE_SECONDS": str(IDLE), "BERTH_GATEWAY_HEADER_SECONDS": str(HEAD)})
    srv.start()
    try:
        with srv.client() as http:
            api = Api(http)
            api.task(api.create(echo_spec("limits", 1))["task_id"])
        yield srv.gateway_port
    finally:
        srv.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"closed after {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_oversized_heads_get_414_and_431_from_the_gateway(gateway: int) -> None:
    for line, status in ((b"GET /e2e/limits/" + b"a" * 17000 + b" HTTP/1.1\r\n", 414),
                         (b"GET /e2e/limits/healthz HTTP/1.1\r\nx-big: " + b"v" * 70000, 431)):
        with connect(gateway) as sock:
            sock.sendall(line)
            head, body = read_answer(sock)
            assert head.startswith(b"HTTP/1.1 %d " % status), head
            assert b"x-berth-error-source: gateway" in head
            assert "bytes" in json.loads(body)["error"]["message"]
            assert closed_by_peer(sock)


def test_an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not(gateway: int) -> None:
    with connect(gateway) as idle, connect(gateway) as busy:
        for sock in (idle, busy):
            sock.sendall(GET)
            assert read_answer(sock)[0].startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + IDLE + 1.5
        while time.monotonic() < deadline:  # `busy` sends a request every half second
            busy.sendall(GET)
            assert read_answer(busy)[0].startswith(b"HTTP/1.1 200")
            time.sleep(0.5)
        assert closed_by_peer(idle)
        busy.sendall(GET)
        assert read_answer(busy)[0].startswith(b"HTTP/1.1 200")


def test_a_head_trickling_in_past_the_head_time_is_408(gateway: int) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /e2e/limits/healthz HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.25)
        answer = b""
        while not answer and time.monotonic() - started < HEAD + 3:
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"x-a: b\r\n")  # a header now and then does not keep it open
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started >= HEAD


def read_to_close(sock: socket.socket) -> bytes:
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def test_a_valid_request_followed_by_garbage_is_answered_before_the_400(gateway: int) -> None:
    with connect(gateway) as sock:
        sock.sendall(GET + b"\x01\x02 not http\r\n\r\n")  # in one write: one read, likely
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", read_to_close(sock))
    assert statuses == [b"200", b"400"]


def test_a_request_body_stalled_past_the_idle_time_is_408(gateway: int) -> None:
    with connect(gateway) as sock:  # its timeout (10 s) is well past IDLE and the sweep
        sock.sendall(b"POST /e2e/limits/predict HTTP/1.1\r\nhost: gw\r\n"
                     b"content-length: 100\r\n\r\n{")
        head, body = read_answer(sock)
        assert head.startswith(b"HTTP/1.1 408 "), head
        assert b"x-berth-error-source: gateway" in head
        assert "request body" in json.loads(body)["error"]["message"]
        assert closed_by_peer(sock)
    with connect(gateway) as sock:  # and its replica slot was given back
        sock.sendall(b"POST /e2e/limits/predict HTTP/1.1\r\nhost: gw\r\n"
                     b"content-length: 2\r\n\r\n{}")
        assert read_answer(sock)[0].startswith(b"HTTP/1.1 200 ")
