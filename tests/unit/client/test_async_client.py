"""BerthClient's async request methods over httpx.MockTransport: reading, paging, and
submitting to the gateway with 429 retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from berth.client import BerthAPIError, BerthClient, BerthConnectionError, async_requests
from berth.domain.invocations import InvocationStatus
from tests.unit.client.test_client import T0, Server, ok

ASYNC = "/v1/projects/default/deployments/echo/async"
GATEWAY = "http://127.0.0.1:8001/default/echo"


def request_json(rid: str = "r1", status: str = "SUCCEEDED", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "deployment": "echo", "status": status, "reason": "done",
            "attempts": 1, "max_attempts": 3, "created_at": T0, "started_at": T0,
            "finished_at": T0, "status_code": 200, "error": None, "route": "predict",
            "body_size": 8, "dataset": "default", "result_path": f"echo/{rid}.json",
            "result_size": 2, "expires_at": T0, "result": {"ok": True}, **extra}


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(async_requests, "sleep", slept.append)
    return slept


def test_async_get(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{ASYNC}/r1", ok(request_json()))
    got = client.async_get("echo", "r1")
    assert got.status == "SUCCEEDED" and got.result == {"ok": True}
    assert got.finished_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_async_list_sends_the_filters(client: BerthClient, server: Server) -> None:
    counts = {"QUEUED": 1, "RUNNING": 0, "SUCCEEDED": 1, "FAILED": 0, "EXPIRED": 0}
    server.on("GET", ASYNC, ok({"total": 2, "page": 2, "per_page": 1, "counts": counts,
                                "items": [request_json(result=None)]}))
    page = client.async_list("echo", status=["queued", "FAILED"],
                             since=datetime(2024, 5, 1, tzinfo=UTC), until=1.5e9,
                             page=2, per_page=1)
    assert page.total == 2 and page.items[0].id == "r1"
    assert page.counts[InvocationStatus.QUEUED] == 1
    params = server.last.url.params
    assert params.get_list("status") == ["QUEUED", "FAILED"]
    assert (params["since"], params["until"], params["page"], params["per_page"]) == (
        str(datetime(2024, 5, 1, tzinfo=UTC).timestamp()), "1500000000.0", "2", "1")
    client.async_list("echo", status="SUCCEEDED")
    assert dict(server.last.url.params) == {"status": "SUCCEEDED", "page": "1",
                                            "per_page": "50"}


def test_submit_posts_to_the_gateway_with_the_api_key_only(server: Server) -> None:
    server.on("POST", "/default/echo/async/predict",
              ok({"request_id": "r1", "status_url": "/v1/x"}, 202))
    with BerthClient(token="control", transport=httpx.MockTransport(server)) as client:
        got = client.async_submit(GATEWAY, "predict", {"x": 1}, idempotency_key="k1",
                                  api_key="bk_key")
        assert got.request_id == "r1" and got.status_url == "/v1/x"
        sent = server.last
        assert str(sent.url) == f"{GATEWAY}/async/predict"
        assert sent.headers["Authorization"] == "Bearer bk_key"
        assert sent.headers["Idempotency-Key"] == "k1"
        assert sent.headers["Content-Type"] == "application/json"
        assert json.loads(sent.content) == {"x": 1}
        client.async_submit(GATEWAY + "/", "/predict", b'{"raw": true}')
        assert "Authorization" not in server.last.headers  # never the control token
        assert "Idempotency-Key" not in server.last.headers
        assert server.last.content == b'{"raw": true}'


def test_submit_waits_out_a_full_backlog(client: BerthClient, server: Server,
                                         naps: list[float]) -> None:
    full = httpx.Response(429, headers={"Retry-After": "2"}, json={
        "error": {"code": "backlog_full", "message": "retry later"}})
    server.on("POST", "/default/echo/async/predict", full, full,
              ok({"request_id": "r1", "status_url": ""}, 202))
    assert client.async_submit(GATEWAY, "predict", {}).request_id == "r1"
    assert naps == [2.0, 2.0] and len(server.requests) == 3


def test_submit_gives_up_after_its_retries(client: BerthClient, server: Server,
                                           naps: list[float]) -> None:
    server.on("POST", "/default/echo/async/predict", httpx.Response(429, json={
        "error": {"code": "backlog_full", "message": "100 async requests are waiting"}}))
    with pytest.raises(BerthAPIError) as exc:
        client.async_submit(GATEWAY, "predict", {}, retries=3)
    assert exc.value.status == 429 and exc.value.code == "backlog_full"
    assert naps == [0.5, 1.0, 2.0] and len(server.requests) == 4


def test_submit_raises_other_refusals_at_once(client: BerthClient, server: Server,
                                              naps: list[float]) -> None:
    server.on("POST", "/default/echo/async/predict", httpx.Response(409, json={
        "error": {"code": "async_disabled", "message": "async invocation is not enabled"}}))
    with pytest.raises(BerthAPIError) as exc:
        client.async_submit(GATEWAY, "predict", {})
    assert exc.value.status == 409 and naps == []


def test_submit_reports_an_unreachable_gateway() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with BerthClient(transport=httpx.MockTransport(refuse)) as client, \
            pytest.raises(BerthConnectionError) as exc:
        client.async_submit(GATEWAY, "predict", {})
    assert exc.value.url == GATEWAY


@pytest.mark.parametrize(("header", "attempt", "wait"), [
    ("3", 0, 3.0), ("0", 2, 0.0), ("-4", 0, 0.0), ("999", 0, 30.0), ("nan", 0, 0.5),
    ("", 0, 0.5), ("", 3, 4.0), ("", 10, 30.0), ("soon", 1, 1.0),
    ("Wed, 01 May 2024 12:00:05 GMT", 0, 5.0), ("Wed, 01 May 2024 11:00:00 GMT", 0, 0.0),
])
def test_retry_after(header: str, attempt: int, wait: float) -> None:
    response = httpx.Response(429, headers={"Retry-After": header} if header else {})
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert async_requests.retry_after(response, attempt, now) == wait
