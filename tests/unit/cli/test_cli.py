"""The `berth` CLI through CliRunner, with the client built over an httpx.MockTransport."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from berth.cli import common
from berth.cli.main import app
from berth.client import BerthClient
from tests.fakes.http import FakeServer

T0 = "2024-05-01T12:00:00Z"
BASE = "/v1/projects/default/deployments"
TOKEN = "tok-very-secret"


def container(ready: int, total: int, region: str = "local") -> dict[str, Any]:
    return {"region": region, "scale": {"min": 1, "max": max(total, 1)},
            "deploy_status": {"ready": ready, "total": total}, "error_message": ""}


def deployment_json(
    name: str = "echo-demo", status: str = "ACTIVE", containers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name, "image": "berth/echo", "containers": containers or [container(1, 1)],
        "id": "dep-1", "project": "default", "generation": 2, "observed_generation": 2,
        "desired_state": "running", "status": status, "status_reason": "", "status_since": T0,
        "address": None, "created_at": T0, "updated_at": T0, **extra,
    }


def accepted_json(**kw: Any) -> dict[str, Any]:
    return {"deployment": deployment_json(**kw), "task_id": "task-1"}


def task_json(state: str, error: str = "") -> dict[str, Any]:
    return {"id": "task-1", "kind": "create", "state": state, "project": "default",
            "deployment": "echo-demo", "deployment_id": "dep-1", "generation": 1,
            "error": error, "message": "", "created_at": T0, "updated_at": T0}


class Server(FakeServer):
    """The fake API, and the client configurations the CLI built."""

    def __init__(self) -> None:
        super().__init__()
        self.configs: list[common.Config] = []


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    srv = Server()

    def make_client(config: common.Config) -> BerthClient:
        srv.configs.append(config)
        return BerthClient(config.url, token=config.resolved_token(), project=config.project,
                           transport=httpx.MockTransport(srv))

    monkeypatch.setattr(common, "make_client", make_client)
    monkeypatch.setattr(common, "POLL_SECONDS", 0.0)
    for var in ("BERTH_URL", "BERTH_TOKEN", "BERTH_DATA_DIR", "BERTH_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return srv


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["--token", TOKEN, *args], input=input)


# commands


def test_ls_shows_names_and_summed_ready(server: Server) -> None:
    server.on("GET", BASE, ok({"count": 2, "items": [
        deployment_json("echo-demo", "ACTIVE", [container(1, 2), container(1, 1, "gpu")]),
        deployment_json("llm-small", "DEPLOYING", [container(0, 1)]),
    ]}))
    result = run("ls")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["echo-demo"][1:3] == ["ACTIVE", "2/3"]
    assert rows["llm-small"][1:3] == ["DEPLOYING", "0/1"]
    assert "NAME" in rows and "READY" in rows["NAME"]
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_ls_empty_and_json(server: Server) -> None:
    server.on("GET", BASE, ok({"count": 0, "items": []}))
    assert "No deployments in project default" in run("ls").stdout
    assert json.loads(run("ls", "-o", "json").stdout) == {"count": 0, "items": []}


def test_project_option(server: Server) -> None:
    server.on("GET", "/v1/projects/team-a/deployments", ok({"count": 0, "items": []}))
    assert run("-p", "team-a", "ls").exit_code == 0
    assert server.requests[0].url.path == "/v1/projects/team-a/deployments"


def test_patch_builds_nested_merge_patch(server: Server) -> None:
    server.on("PATCH", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    result = run("patch", "echo-demo", "--set", "envs.FOO=bar", "--set", "scale=null",
                 "--set", "per_worker=4", "--if-match", "2", "--no-wait")
    assert result.exit_code == 0, result.output
    request = server.sent("PATCH")[0]
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert request.headers["If-Match"] == "2"
    assert json.loads(request.content) == {"envs": {"FOO": "bar"}, "scale": None,
                                           "per_worker": 4}
    assert "task-1" in result.stdout
    assert not server.sent("GET")


def test_patch_rejects_list_index(server: Server) -> None:
    result = run("patch", "echo-demo", "--set", "containers[0].scale.max=3")
    assert result.exit_code == 2
    assert "list indices are not supported" in result.stderr
    assert not server.requests


def test_deploy_reads_yaml_and_waits(server: Server, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: echo-demo\nimage: berth/echo\nenvs:\n  MODE: fast\n"
                    "containers:\n  - region: local\n    scale: {min: 1, max: 2}\n")
    server.on("POST", BASE, ok(accepted_json(status="NEW"), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("RUNNING")), ok(task_json("FINISHED")))
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="DEPLOYING", containers=[container(1, 2)])),
              ok(deployment_json(status="ACTIVE", containers=[container(2, 2)],
                                 address="http://127.0.0.1:8001/echo-demo")))
    result = run("deploy", "-f", str(spec))
    assert result.exit_code == 0, result.output
    assert json.loads(server.sent("POST")[0].content) == {
        "name": "echo-demo", "image": "berth/echo", "envs": {"MODE": "fast"},
        "containers": [{"region": "local", "scale": {"min": 1, "max": 2}}],
    }
    assert "task task-1" in result.stdout
    assert "ACTIVE 2/2 ready" in result.stdout
    assert "http://127.0.0.1:8001/echo-demo" in result.stdout


def test_deploy_from_stdin_no_wait(server: Server) -> None:
    server.on("POST", BASE, ok(accepted_json(), 202))
    result = run("deploy", "-f", "-", "--no-wait",
                 input='{"name": "echo-demo", "image": "berth/echo"}')
    assert result.exit_code == 0, result.output
    assert json.loads(server.sent("POST")[0].content)["image"] == "berth/echo"
    assert len(server.requests) == 1


def test_deploy_task_error_exits_1(server: Server, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"name": "echo-demo", "image": "nope"}')
    server.on("POST", BASE, ok(accepted_json(), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("ERROR", error="image nope not found")))
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json(status="FAILED")))
    result = run("deploy", "-f", str(spec))
    assert result.exit_code == 1
    assert "image nope not found" in result.stderr


def test_deploy_bad_file(server: Server, tmp_path: Path) -> None:
    result = run("deploy", "-f", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "cannot read" in result.stderr
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    result = run("deploy", "-f", str(tmp_path / "list.yaml"))
    assert result.exit_code == 2 and "must hold a mapping" in result.stderr


def test_api_error_exits_2_and_prints_fields(server: Server) -> None:
    server.on("POST", BASE, ok({"error": {
        "code": "invalid_spec", "message": "the spec is invalid",
        "details": [{"field": "containers.0.scale.min", "rule": "le_max",
                     "message": "must be at most max"}]}}, 422))
    result = run("deploy", "-f", "-", input="name: echo-demo\nimage: x\n")
    assert result.exit_code == 2
    assert "Error: the spec is invalid" in result.stderr
    assert "  containers.0.scale.min: must be at most max" in result.stderr
    assert TOKEN not in result.output


def test_server_error_exits_1(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo", httpx.Response(500, text="boom"))
    result = run("get", "echo-demo")
    assert result.exit_code == 1
    assert "Error: boom" in result.stderr


def test_connection_error_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    monkeypatch.setattr(common, "make_client", lambda config: BerthClient(
        config.url, token=config.resolved_token(), transport=httpx.MockTransport(refuse)))
    result = run("--url", "http://10.0.0.9:8000", "ls")
    assert result.exit_code == 1
    assert "is 'berth serve' running at http://10.0.0.9:8000?" in result.stderr
    assert TOKEN not in result.output


def test_token_from_data_dir(server: Server, tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("from-file\n")
    server.on("GET", BASE, ok({"count": 0, "items": []}))
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "ls"])
    assert result.exit_code == 0, result.output
    assert server.requests[0].headers["Authorization"] == "Bearer from-file"
    CliRunner().invoke(app, ["--data-dir", str(tmp_path), "ls"],
                       env={"BERTH_TOKEN": "from-env"})
    assert server.requests[1].headers["Authorization"] == "Bearer from-env"
    assert "from-env" not in repr(server.configs[-1])


def test_get_table_and_formats(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json(
        status="ERROR", status_reason="replica r-1 exited with code 3 [crash]",
        containers=[container(0, 1)])))
    table = run("get", "echo-demo")
    assert table.exit_code == 0, table.output
    assert "replica r-1 exited with code 3 [crash]" in table.stdout
    assert "ERROR (0/1 ready)" in table.stdout
    as_json = json.loads(run("get", "echo-demo", "-o", "json").stdout)
    assert as_json["status_reason"].startswith("replica r-1")
    assert "generation: 2" in run("get", "echo-demo", "-o", "yaml").stdout


def test_update_replaces_with_if_match(server: Server, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("image: berth/echo:2\n")
    server.on("PUT", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    result = run("update", "echo-demo", "-f", str(spec), "--if-match", "2", "--no-wait")
    assert result.exit_code == 0, result.output
    request = server.sent("PUT")[0]
    assert request.headers["If-Match"] == "2"
    assert json.loads(request.content) == {"image": "berth/echo:2", "name": "echo-demo"}


@pytest.mark.parametrize(("command", "method", "suffix"), [
    ("start", "POST", "/start"), ("stop", "POST", "/stop"), ("restart", "POST", "/restart"),
    ("rm", "DELETE", ""), ("delete", "DELETE", ""),
])
def test_actions_wait_for_task(server: Server, command: str, method: str, suffix: str) -> None:
    server.on(method, f"{BASE}/echo-demo{suffix}", ok(accepted_json(), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("FINISHED")))
    if method == "POST":
        server.on("GET", f"{BASE}/echo-demo", ok(deployment_json()))
    result = run(command, "echo-demo")
    assert result.exit_code == 0, result.output
    assert server.requests[0].method == method
    expected = "deleted" if method == "DELETE" else "ACTIVE 1/1 ready"
    assert expected in result.stdout


def test_wait_command(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json(status="DEPLOYING")),
              ok(deployment_json(status="ACTIVE")))
    assert run("wait", "echo-demo", "--for", "active").exit_code == 0
    server.routes.clear()
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="FAILED", status_reason="crash loop")))
    failed = run("wait", "echo-demo", "--for", "ACTIVE")
    assert failed.exit_code == 1 and "crash loop" in failed.stderr
    assert run("wait", "echo-demo", "--for", "FAILED").exit_code == 0
    bad = run("wait", "echo-demo", "--for", "RUNNING")
    assert bad.exit_code == 2 and "expected one of" in bad.stderr


def test_wait_timeout(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json(status="DEPLOYING")))
    result = run("wait", "echo-demo", "--for", "ACTIVE", "--timeout", "0")
    assert result.exit_code == 1 and "still DEPLOYING" in result.stderr


def log(line: str, replica: str = "r-1", ts: str = T0) -> dict[str, Any]:
    return {"ts": ts, "replica_id": replica, "stream": "stdout", "line": line}


def test_logs_and_follow(server: Server) -> None:
    t1 = "2024-05-01T12:00:01Z"
    backlog = [log("one"), log("two", ts=t1)]
    streamed = [log("one"), log("two", ts=t1), log("two-b", "r-2", ts=t1),
                log("three", ts="2024-05-01T12:00:02Z")]
    ndjson = "".join(json.dumps(item) + "\n" for item in streamed).encode()
    server.on("GET", f"{BASE}/echo-demo/logs",
              lambda r: httpx.Response(200, content=ndjson) if "follow" in r.url.params
              else ok({"items": backlog}))
    plain = run("logs", "echo-demo", "--tail", "5")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines()[0].endswith("r-1 stdout | one")
    assert server.requests[0].url.params["limit"] == "5"
    followed = run("logs", "echo-demo", "-f", "--since", "60")
    assert followed.exit_code == 0, followed.output
    assert [line.split("| ")[1] for line in followed.stdout.splitlines()] == [
        "one", "two", "two-b", "three"]
    assert "since" in server.requests[1].url.params
    assert float(server.requests[2].url.params["since"]) == pytest.approx(1714564801.0)


def test_logs_since_and_tail_keep_the_newest(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo/logs",
              ok({"items": [log("a"), log("b"), log("c")]}))
    result = run("logs", "echo-demo", "--since", "30", "--tail", "2")
    assert [line.split("| ")[1] for line in result.stdout.splitlines()] == ["b", "c"]
    assert server.requests[0].url.params["limit"] == "100000"


def test_replicas_events_flavors_regions(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo/replicas", ok({"items": [{
        "id": "r-1", "region": "local", "state": "RUNNING", "reason": "", "ready": True,
        "port": 40001, "pid": 4242, "restarts": 1, "generation": 2, "gpus": [],
        "started_at": T0, "exit_code": None, "last_error": "",
        "stats": {"cpu_percent": 12.5, "memory_bytes": 3 * 2**20, "processes": 1}}]}))
    server.on("GET", f"{BASE}/echo-demo/events", ok({"items": [{
        "id": 1, "at": T0, "kind": "Normal", "reason": "ScaledUp", "message": "1 -> 2",
        "replica_id": ""}]}))
    server.on("GET", "/v1/flavors", ok({"items": [{
        "name": "gpu-1", "cpu": 4, "memory": "16GiB", "memory_bytes": 16 * 2**30, "gpus": 1,
        "gpu_model": "H100", "gpu_memory_mib": 81559, "gpu_compute_capability": "9.0",
        "description": "one GPU"}]}))
    server.on("GET", "/v1/regions", ok({"items": [{
        "name": "local", "runtime": "process", "runs_images": False, "cpus": 2,
        "memory_bytes": 2**33, "gpus": []}]}))
    replicas = run("replicas", "echo-demo")
    assert replicas.exit_code == 0, replicas.output
    assert "40001" in replicas.stdout and "4242" in replicas.stdout
    assert "12.5" in replicas.stdout and "3.0MiB" in replicas.stdout
    events = run("events", "echo-demo", "--limit", "3")
    assert "ScaledUp" in events.stdout and server.requests[-1].url.params["limit"] == "3"
    assert "H100" in run("flavors").stdout
    assert "process" in run("regions").stdout


def test_serve_builds_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []
    fake = types.ModuleType("berth.server")
    fake.run_server = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "berth.server", fake)
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--port", "9000",
                                      "--gateway-port", "9001", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    (settings,) = calls
    assert (settings.data_dir, settings.host, settings.port, settings.gateway_port) == (
        tmp_path, "0.0.0.0", 9000, 9001)
