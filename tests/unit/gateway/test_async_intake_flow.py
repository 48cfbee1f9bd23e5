"""`POST {address}/async/{route}` through the real ClientConnection and Exchange over memory
transports: the body is gathered unframed (a chunked body's chunks, whether they came with
the head or after it), handed to the intake once, and answered 202 when it is stored; a
path outside /async/ still goes to the replica as it came."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.gateway.proxy import ClientConnection
from berth.gateway.table import build_table
from berth.invocations.intake import IntakeQueue, Submission
from berth.invocations.rules import Refusal
from berth.store.invocations import Accepted
from tests.fakes.builders import deployment, replica
from tests.fakes.transport import MemoryTransport
from tests.unit.gateway.conftest import Rig

HEAD = b"POST /p/echo/async/predict HTTP/1.1\r\nhost: gw\r\n"


class Recording(IntakeQueue):
    """The intake, minus the store: what the gateway submits, answered by the test."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.got: list[Submission] = []

    def submit(self, s: Submission) -> None:
        self.got.append(s)


@pytest.fixture
def intake(rig: Rig) -> Recording:
    spec: dict[str, Any] = {"async": {"enabled": True, "max_body_bytes": 32}}
    d = deployment(1, **spec)
    rig.gw.table = build_table(2, [d], [replica(d, "a")], [], None)
    rig.gw.intake = rec = Recording()
    return rec


def body_of(intake: Recording) -> bytes:
    [s] = intake.got
    return s.item.body


# (what the client sends, in reads) -> the body stored
BODIES: dict[str, tuple[list[bytes], bytes]] = {
    "chunked, whole with the head": (
        [HEAD + b"transfer-encoding: chunked\r\n\r\n5\r\npart0\r\n5\r\npart1\r\n0\r\n\r\n"],
        b"part0part1"),
    "chunked, the first chunk with the head": (
        [HEAD + b"transfer-encoding: chunked\r\n\r\n5\r\npart0\r\n",
         b"5\r\npart1\r\n0\r\n\r\n"], b"part0part1"),
    "chunked, the head alone": (
        [HEAD + b"transfer-encoding: chunked\r\n\r\n", b"5\r\npart0\r\n",
         b"5\r\npart1\r\n0\r\n\r\n"], b"part0part1"),
    "chunked, empty": ([HEAD + b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"], b""),
    "chunked, hex sizes and extensions": (
        [HEAD + b"transfer-encoding: chunked\r\n\r\n10;x=1\r\n0123456789abcdef\r\n0\r\n\r\n"],
        b"0123456789abcdef"),
    "content-length, whole": ([HEAD + b"content-length: 7\r\n\r\n{\"a\":1}"], b'{"a":1}'),
    "content-length, in parts": (
        [HEAD + b"content-length: 7\r\n\r\n{\"a\"", b":1}"], b'{"a":1}'),
    "no body": ([HEAD + b"content-length: 0\r\n\r\n"], b""),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_the_body_is_stored_unframed(rig: Rig, intake: Recording, name: str) -> None:
    reads, want = BODIES[name]
    for data in reads:
        rig.client.data_received(data)
    assert body_of(intake) == want
    assert rig.upstream_io.take() == b""  # nothing went to the replica
    s = intake.got[0]
    assert (s.item.route, s.item.path, s.item.deployment_id) == ("predict", "/predict", "d1")


def test_a_stored_request_is_answered_202_with_its_status_url(rig: Rig,
                                                              intake: Recording) -> None:
    rig.client.data_received(HEAD + b"idempotency-key: k1\r\ncontent-type: application/json"
                             b"\r\ncontent-length: 2\r\n\r\n{}")
    [s] = intake.got
    assert (s.item.idempotency_key, s.item.content_type) == ("k1", "application/json")
    assert rig.client_io.take() == b""  # not before it is stored
    s.answer(Accepted(s.item.id, created=True))
    answer = rig.client_io.take()
    head, _, data = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202 ")
    assert f"location: /p/echo/async/{s.item.id}".encode() in head
    body: dict[str, Any] = json.loads(data)
    assert body == {"request_id": s.item.id, "status": "QUEUED",
                    "status_url": f"/p/echo/async/{s.item.id}"}


def test_a_refusal_is_answered_with_its_status(rig: Rig, intake: Recording) -> None:
    rig.client.data_received(HEAD + b"content-length: 2\r\n\r\n{}")
    [s] = intake.got
    s.answer(Refusal(429, "backlog_full", "full"))
    answer = rig.client_io.take()
    assert answer.startswith(b"HTTP/1.1 429 ") and b"retry-after: 1\r\n" in answer.lower()
    assert b"backlog_full" in answer


@pytest.mark.parametrize("reads", [
    [HEAD + b"transfer-encoding: chunked\r\n\r\n20\r\n" + b"x" * 32 + b"\r\n1\r\ny\r\n0\r\n\r\n"],
    [HEAD + b"transfer-encoding: chunked\r\n\r\n20\r\n" + b"x" * 32 + b"\r\n",
     b"1\r\ny\r\n0\r\n\r\n"],
    [HEAD + b"content-length: 33\r\n\r\n" + b"x" * 33],
])
def test_a_body_over_max_body_bytes_is_413_and_not_stored(rig: Rig, intake: Recording,
                                                          reads: list[bytes]) -> None:
    for data in reads:
        rig.client.data_received(data)
    assert intake.got == []
    assert rig.client_io.take().startswith(b"HTTP/1.1 413 ")


def test_a_body_of_exactly_max_body_bytes_is_stored(rig: Rig, intake: Recording) -> None:
    rig.client.data_received(HEAD + b"content-length: 32\r\n\r\n" + b"x" * 32)
    assert body_of(intake) == b"x" * 32


def test_a_path_outside_async_goes_to_the_replica_framed(rig: Rig, intake: Recording) -> None:
    rig.client.data_received(b"POST /p/echo/asyncx HTTP/1.1\r\nhost: gw\r\n"
                             b"transfer-encoding: chunked\r\n\r\n5\r\npart0\r\n")
    sent = rig.upstream_io.take()
    assert sent.startswith(b"POST /asyncx HTTP/1.1\r\n")
    assert sent.endswith(b"\r\n\r\n5\r\npart0\r\n")
    rig.client.data_received(b"5\r\npart1\r\n0\r\n\r\n")
    assert rig.upstream_io.take() == b"5\r\npart1\r\n0\r\n\r\n"
    assert intake.got == []


def test_a_disabled_deployment_refuses_async_calls(rig: Rig) -> None:
    rig.gw.intake = rec = Recording()  # the rig's deployment has no async config
    rig.client.data_received(HEAD + b"content-length: 2\r\n\r\n{}")
    assert rig.client_io.take().startswith(b"HTTP/1.1 409 ")
    assert rec.got == [] and rig.upstream_io.take() == b""


class Answering(Recording):
    """Stores nothing, answers every submission at once: accepted, or refused on a full
    backlog for bodies starting with 'full'."""

    def submit(self, s: Submission) -> None:
        super().submit(s)
        if s.item.body.startswith(b"full"):
            s.answer(Refusal(429, "backlog_full", "full"))
        else:
            s.answer(Accepted(s.item.id, created=True))


_TOKEN = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                        exclude_characters=" ?#%"), max_size=30)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       rest=_TOKEN, query=_TOKEN, key=st.binary(max_size=300).map(
           lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
       body=st.binary(max_size=64), chunked=st.booleans())
def test_any_async_call_gets_a_clear_answer_and_never_a_5xx(
        rig: Rig, method: str, rest: str, query: str, key: bytes, body: bytes,
        chunked: bool) -> None:
    spec: dict[str, Any] = {"async": {"enabled": True, "max_body_bytes": 32,
                                      "target_routes": {"predict": "/predict", "gen": "/g?x=1"}}}
    d = deployment(1, **spec)
    rig.gw.table = build_table(3, [d], [replica(d, "a")], [], None)
    rig.gw.intake = Answering()
    framing = (b"transfer-encoding: chunked\r\n\r\n" + (b"%x\r\n%s\r\n" % (len(body), body)
                                                        if body else b"") + b"0\r\n\r\n"
               if chunked else b"content-length: %d\r\n\r\n%s" % (len(body), body))
    target = f"/p/echo/async/{rest}" + (f"?{query}" if query else "")
    head = f"{method} {target} HTTP/1.1\r\nhost: gw\r\n".encode()
    client_io = MemoryTransport()  # a connection per example: an error answer may close one
    client = ClientConnection(rig.gw)
    client.connection_made(client_io)  # type: ignore[arg-type]
    client.data_received(head + b"idempotency-key: " + key + b"\r\n" + framing)
    rig.loop.run_until_complete(asyncio.sleep(0))
    answer = client_io.take()
    if method == "GET" and rest and "/" not in rest:
        return  # the status is read from the store in a worker thread (an e2e test's part)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    assert 200 <= status < 500, answer[:300]
    assert rig.upstream_io.take() == b""  # an /async call never reaches a replica as such
