"""TIR model API relay helpers, without a server."""

from __future__ import annotations

from starlette.requests import Request

from berth.api.dialects.tir import model_api


def request(*headers: tuple[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw,
                    "query_string": b""})


def test_tir_project_of_a_berth_project() -> None:
    assert model_api._tir_project("tir-11-22") == 22
    assert model_api._tir_project("tir-11-x") is None
    assert model_api._tir_project("gcore-1-22") is None
    assert model_api._tir_project("e2e") is None


def test_upstream_headers_drop_hop_by_hop_and_control_tokens() -> None:
    r = request(("Host", "berth"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "drop"),
                ("Content-Length", "9"), ("Transfer-Encoding", "chunked"),
                ("Authorization", "Bearer t"), ("X-Api-Key", "k"), ("X-Request-Id", "r1"),
                ("Accept", "a/b"), ("Accept", "c/d"))
    kept = model_api.upstream_headers(r, strip_auth=False)
    assert kept == [("authorization", "Bearer t"), ("x-api-key", "k"),
                    ("x-request-id", "r1"), ("accept", "a/b"), ("accept", "c/d")]
    assert ("authorization", "Bearer t") not in model_api.upstream_headers(r, strip_auth=True)
    assert ("x-api-key", "k") in model_api.upstream_headers(r, strip_auth=True)
