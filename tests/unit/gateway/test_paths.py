"""Request targets the gateway refuses (berth.gateway.paths), as a table, and through the real
connection: a refused target gets a 400 from the gateway and never reaches a replica."""

from __future__ import annotations

import json

import pytest

from berth.gateway.paths import DOT_SEGMENT, ENCODED_NAME, has_dot_segment, refusal
from tests.unit.gateway.conftest import Rig

PASSES = [
    b"/p/echo/predict",
    b"/p/echo",
    b"/p/echo/",
    b"/p/echo/v2/models/m/infer",
    b"/p/echo/.well-known/thing",  # a segment that starts with a dot is not a dot segment
    b"/p/echo/a...b/..c/c..",
    b"/p/echo/files/a%20b%2Fc",  # encoded characters after the deployment go on as sent
    b"/p/echo/100%25",
    b"/my.project/echo/x",  # a project name may hold dots
]

REFUSED = [
    (b"/p/echo/../../q/other/predict", DOT_SEGMENT),
    (b"/p/echo/..", DOT_SEGMENT),
    (b"/p/echo/./predict", DOT_SEGMENT),
    (b"/p/echo/x/%2e%2e/%2E%2E/q/other", DOT_SEGMENT),
    (b"/p/echo/.%2e/y", DOT_SEGMENT),
    (b"/p/echo/..%2f..%2fq%2fother", DOT_SEGMENT),
    (b"/p/echo/%252e%252e/%252e%252e/q/other", DOT_SEGMENT),  # double encoded
    (b"/p/echo/%25252e%25252e/x", DOT_SEGMENT),  # triple encoded
    (b"/p/echo/x\\..\\..\\q", DOT_SEGMENT),  # a backslash read as a slash
    (b"/p/echo/x%5c..%5c..%5cq", DOT_SEGMENT),
    (b"/p/echo/..;/..;/q/other", DOT_SEGMENT),
    (b"/p/../q/other/x", DOT_SEGMENT),
    (b"/p/%65cho/predict", ENCODED_NAME),  # the deployment, encoded: `echo` to a decoder
    (b"/p%2Fecho/x/y", ENCODED_NAME),  # an encoded slash in the project
    (b"/%2e%2e/q/other", ENCODED_NAME),
    (b"/p\\echo/x", ENCODED_NAME),
]


@pytest.mark.parametrize("path", PASSES)
def test_ordinary_paths_pass(path: bytes) -> None:
    assert refusal(path) is None


@pytest.mark.parametrize(("path", "reason"), REFUSED)
def test_targets_a_normalising_proxy_could_route_elsewhere_are_refused(
        path: bytes, reason: str) -> None:
    assert refusal(path) == reason


def test_dot_segments_are_found_through_each_decoding() -> None:
    assert has_dot_segment(b"..")
    assert has_dot_segment(b"a/%2E/b")
    assert not has_dot_segment(b"a/%2Ex/b")
    assert not has_dot_segment(b"%zz/%2/%")  # malformed escapes decode to themselves


def _answer(rig: Rig, target: bytes) -> tuple[int, dict[str, object]]:
    rig.client.data_received(b"GET " + target + b" HTTP/1.1\r\nhost: gw\r\n\r\n")
    raw = rig.client_io.take()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.parametrize("target", [
    b"/p/echo/../../q/other/predict",
    b"/p/echo/%2e%2e/%2e%2e/q/other/predict",
    b"/p/echo/x/%252e%252e/y",
    b"/p/echo/..%5c..%5cq",
])
def test_the_gateway_answers_400_and_sends_nothing_upstream(rig: Rig, target: bytes) -> None:
    status, body = _answer(rig, target)
    assert status == 400, body
    assert body == {"error": {"code": "bad_request", "message": DOT_SEGMENT}}
    assert rig.upstream_io.take() == b""


def test_an_encoded_deployment_name_is_400_not_404(rig: Rig) -> None:
    status, body = _answer(rig, b"/p/%65cho/predict")
    assert status == 400 and body["error"] == {"code": "bad_request", "message": ENCODED_NAME}
    assert rig.upstream_io.take() == b""


def test_an_ordinary_path_with_a_dotted_segment_still_goes_upstream(rig: Rig) -> None:
    rig.client.data_received(b"GET /p/echo/.well-known/x?a=.. HTTP/1.1\r\nhost: gw\r\n\r\n")
    assert rig.upstream_io.take().startswith(b"GET /.well-known/x?a=.. HTTP/1.1\r\n")
