"""`berth restart NAME --replica R`: the client's single-replica restart, then the task wait."""

from __future__ import annotations

from tests.unit.cli.test_cli import (
    BASE,
    Server,
    accepted_json,
    deployment_json,
    ok,
    run,
    server,  # noqa: F401  (the fixture)
    task_json,
)


def test_restart_one_replica(server: Server) -> None:  # noqa: F811
    path = f"{BASE}/echo-demo/replicas/echo-demo-ab12cd/restart"
    server.on("POST", path, ok(accepted_json(), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("FINISHED")))
    server.on("GET", f"{BASE}/echo-demo", ok(deployment_json()))
    result = run("restart", "echo-demo", "--replica", "echo-demo-ab12cd")
    assert result.exit_code == 0, result.output
    assert server.requests[0].method == "POST" and server.requests[0].url.path == path
    assert "ACTIVE 1/1 ready" in result.stdout
