"""`berth async ...` through CliRunner over an httpx.MockTransport (the control API and the
gateway both answered by one fake server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.cli import common
from berth.client import BerthClient
from tests.unit.cli.test_cli import T0, Server, deployment_json, ok, run

ASYNC = "/v1/projects/default/deployments/echo-demo/async"
DEPLOYMENT = "/v1/projects/default/deployments/echo-demo"
GATEWAY = "http://127.0.0.1:8001/default/echo-demo"
INTAKE = "/default/echo-demo/async/predict"
STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "EXPIRED")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    srv = Server()

    def make_client(config: common.Config) -> BerthClient:
        return BerthClient(config.url, token=config.resolved_token(), project=config.project,
                           transport=httpx.MockTransport(srv))

    monkeypatch.setattr(common, "make_client", make_client)
    monkeypatch.setattr(common, "POLL_SECONDS", 0.0)
    for var in ("BERTH_URL", "BERTH_TOKEN", "BERTH_DATA_DIR", "BERTH_PROJECT", "BERTH_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return srv


def request_json(rid: str = "r1", status: str = "SUCCEEDED", **extra: Any) -> dict[str, Any]:
    done = status in ("SUCCEEDED", "FAILED")
    return {"id": rid, "deployment": "echo-demo", "status": status, "reason": "done",
            "attempts": 1, "max_attempts": 3, "created_at": T0,
            "started_at": T0 if done else None, "finished_at": T0 if done else None,
            "status_code": 200 if done else None, "error": None, "route": "predict",
            "body_size": 8, "dataset": "default" if done else None,
            "result_path": f"echo-demo/{rid}.json" if done else None,
            "result_size": 12 if done else None, "expires_at": None, "result": None,
            **extra}


def page_json(items: list[dict[str, Any]], **counts: int) -> dict[str, Any]:
    return {"total": len(items), "page": 1, "per_page": 50,
            "counts": {s: counts.get(s, 0) for s in STATUSES}, "items": items}


def test_async_name_lists_requests_and_counts(server: Server) -> None:
    server.on("GET", ASYNC, ok(page_json([request_json("r1"), request_json(
        "r2", "FAILED", status_code=500, error="HTTP 500")], SUCCEEDED=1, FAILED=1)))
    result = run("async", "echo-demo", "--status", "failed", "-s", "SUCCEEDED", "-n", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["QUEUED", "0", "RUNNING", "0", "SUCCEEDED", "1", "FAILED", "1",
                                "EXPIRED", "0"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows["r1"][1:4] == ["SUCCEEDED", "1/3", "200"]
    assert rows["r2"][1:4] == ["FAILED", "1/3", "500"] and "HTTP 500" in " ".join(rows["r2"])
    params = server.last.url.params
    assert params.get_list("status") == ["FAILED", "SUCCEEDED"] and params["per_page"] == "5"
    assert run("async", "list", "echo-demo").exit_code == 0  # the explicit form


def test_async_list_json_and_empty(server: Server) -> None:
    server.on("GET", ASYNC, ok(page_json([])))
    assert "No async requests of echo-demo." in run("async", "echo-demo").stdout
    assert json.loads(run("async", "echo-demo", "-o", "json").stdout)["total"] == 0
    bad = run("async", "echo-demo", "--status", "DONE")
    assert bad.exit_code == 2 and not server.sent("GET")[2:]


def test_async_watch_follows_the_backlog_until_it_is_empty(server: Server) -> None:
    server.on("GET", ASYNC, ok(page_json([], QUEUED=3, SUCCEEDED=5)),
              ok(page_json([], QUEUED=1, RUNNING=1, SUCCEEDED=6)),
              ok(page_json([], SUCCEEDED=7, FAILED=1)),
              ok(page_json([request_json()], SUCCEEDED=7, FAILED=1)))
    result = run("async", "echo-demo", "--watch")
    assert result.exit_code == 0, result.output
    assert len(server.sent("GET")) == 4  # three looks, then the table
    assert "SUCCEEDED 7" in result.stdout


def test_async_watch_times_out(server: Server) -> None:
    server.on("GET", ASYNC, ok(page_json([], QUEUED=3)))
    result = run("async", "echo-demo", "--watch", "--timeout", "0")
    assert result.exit_code == 1 and "still waiting after 0s" in result.stderr


def test_async_get_shows_the_inline_result(server: Server) -> None:
    server.on("GET", f"{ASYNC}/r1", ok(request_json(result={"echo": {"x": 1}})))
    result = run("async", "get", "echo-demo", "r1")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.stdout and "default:echo-demo/r1.json" in result.stdout
    assert json.loads(result.stdout[result.stdout.index("{"):]) == {"echo": {"x": 1}}
    assert json.loads(run("async", "get", "echo-demo", "r1", "-o", "json").stdout)["id"] == "r1"


def test_async_get_reads_a_result_that_is_not_inline(server: Server) -> None:
    obj = "/v1/projects/default/datasets/default/objects/echo-demo/r1.json"
    server.on("GET", f"{ASYNC}/r1", ok(request_json()))
    server.on("GET", obj, httpx.Response(200, content=b"plain text answer"),
              httpx.Response(200, content=b"\xff\xfe\x00"),
              ok({"error": {"code": "not_found", "message": "gone"}}, 404))
    assert "plain text answer" in run("async", "get", "echo-demo", "r1").stdout
    binary = run("async", "get", "echo-demo", "r1").stdout
    assert "3 bytes of binary data; berth datasets read default echo-demo/r1.json" in binary
    assert "Result: gone" in run("async", "get", "echo-demo", "r1").stdout


def test_async_get_of_a_queued_request_has_no_result(server: Server) -> None:
    server.on("GET", f"{ASYNC}/r1", ok(request_json(status="QUEUED")))
    result = run("async", "get", "echo-demo", "r1")
    assert result.exit_code == 0 and "QUEUED" in result.stdout and "Result:" not in result.stdout


def _intake(server: Server, path: str = INTAKE) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def accept(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok({"request_id": f"r{len(seen)}", "status_url": ""}, 202)

    server.on("GET", DEPLOYMENT, ok(deployment_json(address=GATEWAY)))
    server.on("POST", path, accept)
    return seen


def test_async_submit_sends_each_line_and_prints_the_ids(server: Server,
                                                        tmp_path: Path) -> None:
    seen = _intake(server)
    bodies = tmp_path / "requests.jsonl"
    bodies.write_text('{"x": 1}\n\n{"x": 2}\n  {"x": 3}  \n')
    result = run("async", "submit", "echo-demo", "-f", str(bodies), "--api-key", "bk_1",
                 "--key-prefix", "batch-")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["r1", "r2", "r3"]
    assert "Submitted 3 requests to echo-demo." in result.stderr
    assert [json.loads(r.content) for r in seen] == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert [r.headers["Idempotency-Key"] for r in seen] == ["batch-1", "batch-3", "batch-4"]
    assert all(r.headers["Authorization"] == "Bearer bk_1" for r in seen)


def test_async_submit_writes_the_ids_to_a_file(server: Server, tmp_path: Path) -> None:
    seen = _intake(server, "/default/echo-demo/async/generate")
    ids = tmp_path / "ids.txt"
    result = run("async", "submit", "echo-demo", "-f", "-", "--ids-out", str(ids),
                 "--route", "generate", input='{"a": 1}\n{"a": 2}\n')
    assert result.exit_code == 0, result.output
    assert ids.read_text() == "r1\nr2\n" and result.stdout == ""
    assert [json.loads(r.content) for r in seen] == [{"a": 1}, {"a": 2}]


def test_async_submit_refuses_a_line_that_is_not_json(server: Server, tmp_path: Path) -> None:
    bodies = tmp_path / "requests.jsonl"
    bodies.write_text('{"x": 1}\nnot json\n')
    result = run("async", "submit", "echo-demo", "-f", str(bodies))
    assert result.exit_code == 2 and "line 2: not JSON" in result.stderr
    assert not server.requests
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "holds no requests" in run("async", "submit", "echo-demo", "-f", str(empty)).stderr


def test_async_submit_stops_at_a_refusal_and_keeps_the_ids(server: Server,
                                                          tmp_path: Path) -> None:
    server.on("GET", DEPLOYMENT, ok(deployment_json(address=GATEWAY)))
    server.on("POST", INTAKE, ok({"request_id": "r1", "status_url": ""}, 202),
              ok({"error": {"code": "async_disabled",
                            "message": "async invocation is not enabled"}}, 409))
    bodies = tmp_path / "requests.jsonl"
    bodies.write_text('{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    result = run("async", "submit", "echo-demo", "-f", str(bodies))
    assert result.exit_code == 2 and "async invocation is not enabled" in result.stderr
    assert result.stdout.split() == ["r1"]
    assert len(server.sent("POST")) == 2


def test_async_submit_needs_an_address(server: Server, tmp_path: Path) -> None:
    server.on("GET", DEPLOYMENT, ok(deployment_json(address=None)))
    bodies = tmp_path / "requests.jsonl"
    bodies.write_text('{"x": 1}\n')
    result = run("async", "submit", "echo-demo", "-f", str(bodies))
    assert result.exit_code == 1 and "has no gateway address yet" in result.stderr


def test_async_submit_wait_counts_the_statuses(server: Server, tmp_path: Path) -> None:
    _intake(server)
    server.on("GET", f"{ASYNC}/r1", ok(request_json("r1", "QUEUED")))
    looks: list[list[str]] = []

    def listing(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get_list("status")
        looks.append(wanted)
        assert float(request.url.params["since"]) > 0
        if wanted and len(looks) == 1:
            return ok(page_json([request_json("r2", "RUNNING"), request_json("x9", "QUEUED")]))
        if wanted:
            return ok(page_json([]))
        return ok(page_json([request_json("r1"), request_json("r2", "FAILED"),
                             request_json("x9")]))

    server.on("GET", ASYNC, listing)
    bodies = tmp_path / "requests.jsonl"
    bodies.write_text('{"x": 1}\n{"x": 2}\n')
    result = run("async", "submit", "echo-demo", "-f", str(bodies), "--wait")
    assert result.exit_code == 1, result.output  # one FAILED
    assert looks == [["QUEUED", "RUNNING"], ["QUEUED", "RUNNING"], []]
    assert "SUCCEEDED 1" in result.stderr and "FAILED 1" in result.stderr
    assert result.stdout.split() == ["r1", "r2"]
