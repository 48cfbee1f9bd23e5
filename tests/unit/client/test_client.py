"""BerthClient over httpx.MockTransport: paths, methods, bodies, parsing, errors, waiting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.client import (
    BerthAPIError,
    BerthClient,
    BerthConnectionError,
    BerthProtocolError,
    DeploymentFailed,
    DeploymentOut,
    DeploymentSpec,
    spec_body,
    token_from_data_dir,
)
from berth.domain.status import DeploymentStatus, TaskState
from tests.fakes.http import FakeServer

T0 = "2024-05-01T12:00:00Z"
BASE = "/v1/projects/default/deployments"


def deployment_json(
    name: str = "echo-demo", status: str = "ACTIVE", ready: int = 1, total: int = 1,
    generation: int = 1, **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name, "image": "berth/echo", "description": "", "envs": {},
        "containers": [{
            "region": "local", "scale": {"min": 1, "max": total or 1},
            "deploy_status": {"ready": ready, "total": total}, "error_message": "",
        }],
        "id": "dep-1", "project": "default", "generation": generation,
        "observed_generation": generation, "desired_state": "running", "status": status,
        "status_reason": "", "status_since": T0, "address": None,
        "created_at": T0, "updated_at": T0, **extra,
    }


def accepted_json(task_id: str = "task-1", **kw: Any) -> dict[str, Any]:
    return {"deployment": deployment_json(**kw), "task_id": task_id}


def task_json(state: str, task_id: str = "task-1", error: str = "") -> dict[str, Any]:
    return {
        "id": task_id, "kind": "create", "state": state, "project": "default",
        "deployment": "echo-demo", "deployment_id": "dep-1", "generation": 1,
        "error": error, "message": "", "created_at": T0, "updated_at": T0,
    }




Server = FakeServer




def ok(body: Any, status: int = 200, **kw: Any) -> httpx.Response:
    return httpx.Response(status, json=body, **kw)


def test_create_sends_token_and_spec(client: BerthClient, server: Server) -> None:
    server.on("POST", BASE, ok(accepted_json(), 202))
    accepted = client.create({"name": "echo-demo", "image": "berth/echo"})
    request = server.last
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(client)
    assert json.loads(request.content) == {"name": "echo-demo", "image": "berth/echo"}
    assert accepted.task_id == "task-1"
    assert accepted.deployment.status is DeploymentStatus.ACTIVE
    assert accepted.deployment.containers[0].deploy_status.ready == 1


def test_no_token_sends_no_authorization(server: Server) -> None:
    server.on("GET", "/v1/flavors", ok({"items": []}))
    with BerthClient(transport=httpx.MockTransport(server)) as c:
        assert c.flavors() == []
    assert "Authorization" not in server.last.headers


def test_create_from_model_uses_aliases(client: BerthClient, server: Server) -> None:
    server.on("POST", BASE, ok(accepted_json(), 202))
    spec = DeploymentSpec.model_validate({
        "name": "echo-demo", "image": "berth/echo",
        "probes": {"readiness": {"http_get": {"path": "/health", "schema": "HTTP"}}},
    })
    client.create(spec)
    body = json.loads(server.last.content)
    assert body["probes"]["readiness"]["http_get"]["schema"] == "HTTP"
    assert DeploymentSpec.model_validate(body) == spec


def test_spec_body_cuts_deployment_out_back_to_spec() -> None:
    out = DeploymentOut.model_validate(deployment_json())
    body = spec_body(out)
    assert "status" not in body and "generation" not in body
    assert body["containers"] == [{"region": "local", "scale": body["containers"][0]["scale"]}]
    DeploymentSpec.model_validate(body)


def test_project_and_list_params(server: Server) -> None:
    server.on("GET", "/v1/projects/team-a/deployments",
              ok({"items": [deployment_json()], "count": 1}))
    with BerthClient(project="team-a", transport=httpx.MockTransport(server)) as c:
        page = c.list(limit=10, offset=20)
    assert dict(server.last.url.params) == {"limit": "10", "offset": "20"}
    assert page.count == 1 and page.items[0].name == "echo-demo"


def test_get_parses_deployment(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="DEPLOYING", ready=1, total=2), headers={"ETag": '"1"'}))
    d = client.get("echo-demo")
    assert (d.status, d.containers[0].deploy_status.total) == ("DEPLOYING", 2)


def test_replace_sends_if_match(client: BerthClient, server: Server) -> None:
    server.on("PUT", f"{BASE}/echo-demo", ok(accepted_json(generation=4), 202))
    accepted = client.replace("echo-demo", {"name": "echo-demo", "image": "x"}, if_match=3)
    assert server.last.method == "PUT"
    assert server.last.headers["If-Match"] == "3"
    assert json.loads(server.last.content)["image"] == "x"
    assert accepted.deployment.generation == 4


def test_replace_without_if_match_sends_none(client: BerthClient, server: Server) -> None:
    server.on("PUT", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    client.replace("echo-demo", {"name": "echo-demo", "image": "x"})
    assert "If-Match" not in server.last.headers


def test_patch_is_a_merge_patch(client: BerthClient, server: Server) -> None:
    server.on("PATCH", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    client.patch("echo-demo", {"envs": {"A": "1", "B": None}}, if_match=7)
    request = server.last
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert request.headers["If-Match"] == "7"
    assert json.loads(request.content) == {"envs": {"A": "1", "B": None}}


@pytest.mark.parametrize(
    ("action", "method", "suffix"),
    [("start", "POST", "/start"), ("stop", "POST", "/stop"),
     ("restart", "POST", "/restart"), ("delete", "DELETE", "")],
)
def test_actions(
    client: BerthClient, server: Server, action: str, method: str, suffix: str
) -> None:
    server.on(method, f"{BASE}/echo-demo{suffix}", ok(accepted_json(task_id="t-9"), 202))
    accepted = getattr(client, action)("echo-demo")
    assert server.last.method == method
    assert accepted.task_id == "t-9"


def test_replicas_events_logs(client: BerthClient, server: Server) -> None:
    replica = {
        "id": "r-1", "region": "local", "state": "RUNNING", "reason": "", "ready": True,
        "port": 40001, "pid": 123, "restarts": 0, "generation": 1, "gpus": [],
        "started_at": T0, "exit_code": None, "last_error": "",
        "stats": {"cpu_percent": 1.5, "memory_bytes": 1024, "processes": 1},
    }
    event = {"id": 1, "at": T0, "kind": "Normal", "reason": "Started", "message": "ok",
             "replica_id": "r-1"}
    line = {"ts": T0, "replica_id": "r-1", "stream": "stdout", "line": "hello"}
    server.on("GET", f"{BASE}/echo-demo/replicas", ok({"items": [replica]}))
    server.on("GET", f"{BASE}/echo-demo/events", ok({"items": [event]}))
    server.on("GET", f"{BASE}/echo-demo/logs", ok({"items": [line]}))
    replicas = client.replicas("echo-demo")
    assert replicas[0].stats is not None and replicas[0].stats.cpu_percent == 1.5
    assert client.events("echo-demo", limit=5)[0].reason == "Started"
    assert server.last.url.params["limit"] == "5"
    assert client.logs("echo-demo", since=1700000000.5, limit=10)[0].line == "hello"
    assert dict(server.last.url.params) == {"limit": "10", "since": "1700000000.5"}


def test_flavors_and_regions(client: BerthClient, server: Server) -> None:
    server.on("GET", "/v1/flavors", ok({"items": [{
        "name": "cpu-small", "cpu": 1, "memory": "1GiB", "memory_bytes": 2**30, "gpus": 0,
        "gpu_model": "", "gpu_memory_mib": 0, "gpu_compute_capability": "", "description": "",
    }]}))
    server.on("GET", "/v1/regions", ok({"items": [{
        "name": "local", "runtime": "process", "runs_images": False, "cpus": 2,
        "memory_bytes": 2**32, "gpus": [{"index": 0, "model": "H100", "memory_mib": 81559}],
    }]}))
    assert client.flavors()[0].name == "cpu-small"
    assert client.regions()[0].gpus[0].model == "H100"


def test_error_body_becomes_api_error(client: BerthClient, server: Server) -> None:
    server.on("POST", BASE, ok({"error": {
        "code": "invalid_spec", "message": "the spec is invalid",
        "details": [{"field": "containers.0.scale.min", "rule": "range",
                     "message": "must be at most max"}],
        "parameters": {"count": 1},
    }}, 422))
    with pytest.raises(BerthAPIError) as info:
        client.create({"name": "echo-demo"})
    exc = info.value
    assert (exc.status, exc.code, exc.is_client_error) == (422, "invalid_spec", True)
    assert exc.details[0].field == "containers.0.scale.min"
    assert exc.parameters == {"count": 1}
    text = str(exc)
    assert "the spec is invalid" in text
    assert "containers.0.scale.min: must be at most max" in text


def test_non_json_error_body(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/x", httpx.Response(502, text="Bad Gateway from proxy"))
    with pytest.raises(BerthAPIError) as info:
        client.get("x")
    assert info.value.status == 502
    assert info.value.code == "http_502"
    assert "Bad Gateway from proxy" in str(info.value)
    assert not info.value.is_client_error


def test_framework_error_shapes(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/x", ok({"detail": "Not Found"}, 404))
    server.on("POST", BASE, ok({"detail": [
        {"loc": ["body", "name"], "msg": "field required", "type": "missing"}]}, 422))
    with pytest.raises(BerthAPIError, match="Not Found"):
        client.get("x")
    with pytest.raises(BerthAPIError) as info:
        client.create({})
    assert info.value.details[0].field == "name"


def test_precondition_failed(client: BerthClient, server: Server) -> None:
    server.on("PUT", f"{BASE}/echo-demo", ok(
        {"error": {"code": "precondition_failed", "message": "generation is 4, not 3"}}, 412))
    with pytest.raises(BerthAPIError) as info:
        client.replace("echo-demo", {"name": "echo-demo", "image": "x"}, if_match=3)
    assert info.value.status == 412 and info.value.details == []


def test_unexpected_success_body(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/x", ok({"hello": "world"}))
    with pytest.raises(BerthProtocolError):
        client.get("x")


def test_connection_error(server: Server) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with BerthClient(url="http://127.0.0.1:9/", transport=httpx.MockTransport(refuse)) as c, \
            pytest.raises(BerthConnectionError) as info:
        c.get("x")
    assert info.value.url == "http://127.0.0.1:9"
    assert "connection refused" in str(info.value)


def test_wait_task_polls_until_finished(client: BerthClient, server: Server) -> None:
    server.on("GET", "/v1/tasks/task-1",
              ok(task_json("NEW")), ok(task_json("RUNNING")), ok(task_json("FINISHED")))
    seen: list[TaskState] = []
    task = client.wait_task("task-1", poll=0, on_progress=lambda t: seen.append(t.state))
    assert task.state is TaskState.FINISHED
    assert seen == ["NEW", "RUNNING", "FINISHED"]
    assert len(server.requests) == 3


def test_wait_task_returns_error(client: BerthClient, server: Server) -> None:
    server.on("GET", "/v1/tasks/task-1",
              ok(task_json("RUNNING")), ok(task_json("ERROR", error="image not found")))
    task = client.wait_task("task-1", poll=0)
    assert (task.state, task.error) == ("ERROR", "image not found")


def test_wait_task_times_out(client: BerthClient, server: Server) -> None:
    server.on("GET", "/v1/tasks/task-1", ok(task_json("RUNNING")))
    with pytest.raises(TimeoutError, match="task-1"):
        client.wait_task("task-1", timeout=0, poll=0)


def test_wait_status(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="DEPLOYING", ready=0, total=1)),
              ok(deployment_json(status="ACTIVE")))
    progress: list[str] = []
    d = client.wait_status("echo-demo", "active", poll=0,
                           on_progress=lambda d: progress.append(d.status))
    assert d.status is DeploymentStatus.ACTIVE
    assert progress == ["DEPLOYING", "ACTIVE"]


def test_wait_status_fails_on_broken(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="FAILED", status_reason="crash loop")))
    with pytest.raises(DeploymentFailed, match="crash loop"):
        client.wait_status("echo-demo", "ACTIVE", poll=0)
    assert client.wait_status("echo-demo", {"FAILED"}, poll=0).status == "FAILED"


def test_wait_status_deleted_ends_on_404(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json(status="DELETING")),
              ok({"error": {"code": "not_found", "message": "no such deployment"}}, 404))
    assert client.wait_status("echo-demo", "DELETED", poll=0).status == "DELETED"


def test_wait_status_rejects_unknown_status(client: BerthClient) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        client.wait_status("echo-demo", "RUNNING")


def test_follow_logs_streams_ndjson(client: BerthClient, server: Server) -> None:
    lines = [
        {"ts": T0, "replica_id": "r-1", "stream": "stdout", "line": "one"},
        {"ts": T0, "replica_id": "r-2", "stream": "stderr", "line": "two {json}"},
    ]
    body = "\n".join(json.dumps(line) for line in lines[:1]) + "\n\n"
    body += json.dumps(lines[1]) + "\n"
    server.on("GET", f"{BASE}/echo-demo/logs", httpx.Response(
        200, content=body.encode(), headers={"Content-Type": "application/x-ndjson"}))
    got = list(client.follow_logs("echo-demo", since=12.5))
    assert [(g.replica_id, g.line) for g in got] == [("r-1", "one"), ("r-2", "two {json}")]
    assert dict(server.last.url.params) == {"follow": "true", "since": "12.5"}


def test_follow_logs_error(client: BerthClient, server: Server) -> None:
    stream = client.follow_logs("missing")
    with pytest.raises(BerthAPIError) as info:
        next(stream)
    assert info.value.status == 404


def test_token_from_data_dir(tmp_path: Path) -> None:
    assert token_from_data_dir(tmp_path) is None
    assert token_from_data_dir(tmp_path / "absent") is None
    (tmp_path / "admin-token").write_text("  abc123\n")
    assert token_from_data_dir(tmp_path) == "abc123"
    (tmp_path / "admin-token").write_text("\n")
    assert token_from_data_dir(tmp_path) is None
