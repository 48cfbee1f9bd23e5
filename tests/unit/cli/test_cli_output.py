"""What `berth` prints: rm, events, and --help, through CliRunner over an httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest
import typer
from annotated_types import Le
from fastapi.routing import APIRoute
from typer.core import TyperGroup

from berth.api.v1 import deployments as routes
from berth.cli import common
from berth.cli.main import app
from berth.cli.observe import MAX_EVENTS
from berth.client import BerthClient
from tests.unit.cli.test_cli import (
    BASE,
    T0,
    Server,
    accepted_json,
    deployment_json,
    ok,
    run,
    task_json,
)

ADDRESS = "http://127.0.0.1:8001/default/echo-demo"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    srv = Server()

    def make_client(config: common.Config) -> BerthClient:
        return BerthClient(config.url, token=config.resolved_token(), project=config.project,
                           transport=httpx.MockTransport(srv))

    monkeypatch.setattr(common, "make_client", make_client)
    monkeypatch.setattr(common, "POLL_SECONDS", 0.0)
    for var in ("BERTH_URL", "BERTH_TOKEN", "BERTH_DATA_DIR", "BERTH_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return srv


def test_rm_says_what_was_deleted_and_by_which_task_and_no_address(server: Server) -> None:
    server.on("DELETE", f"{BASE}/echo-demo", ok(accepted_json(address=ADDRESS), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("FINISHED")))
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="DELETED", address=ADDRESS)))
    result = run("rm", "echo-demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "echo-demo: deleting (generation 2), task task-1",
        "echo-demo: deleted (id dep-1), task task-1 FINISHED",
    ]


def test_rm_exits_1_when_the_deployment_outlives_its_delete_task(server: Server) -> None:
    server.on("DELETE", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    server.on("GET", "/v1/tasks/task-1", ok(task_json("FINISHED")))
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(status="DISABLED", status_reason="stopped")))
    result = run("rm", "echo-demo")
    assert result.exit_code == 1
    assert "task task-1 is FINISHED, but the deployment is still DISABLED" in result.stderr
    assert "deleted" not in result.stdout.splitlines()[-1]


def test_rm_no_wait_only_announces(server: Server) -> None:
    server.on("DELETE", f"{BASE}/echo-demo", ok(accepted_json(), 202))
    result = run("rm", "echo-demo", "--no-wait")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo-demo: deleting (generation 2), task task-1\n"
    assert [r.method for r in server.requests] == ["DELETE"]


def event(replica_id: str, reason: str) -> dict[str, object]:
    return {"id": 1, "at": T0, "kind": "Replica" if replica_id else "Status",
            "reason": reason, "message": "m", "replica_id": replica_id}


def test_events_name_the_replica_of_each_event(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo/events", ok({"items": [
        event("echo-demo-1a2b3c", "Launched"), event("", "ACTIVE")]}))
    result = run("events", "echo-demo")
    assert result.exit_code == 0, result.output
    header, launched, active = (line.split() for line in result.stdout.splitlines())
    assert header == ["AT", "KIND", "REPLICA", "REASON", "MESSAGE"]
    assert launched[2:5] == ["Replica", "echo-demo-1a2b3c", "Launched"]
    assert active[2:5] == ["Status", "-", "ACTIVE"]


def test_events_limit_is_bounded_by_what_the_server_returns(server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo/events", ok({"items": []}))
    assert run("events", "echo-demo", "-n", str(MAX_EVENTS)).exit_code == 0
    assert server.requests[-1].url.params["limit"] == str(MAX_EVENTS)
    above = run("events", "echo-demo", "-n", str(MAX_EVENTS + 1))
    assert above.exit_code == 2
    assert "--limit" in above.output and str(MAX_EVENTS) in above.output
    assert len(server.requests) == 1  # refused before any request


def test_events_max_is_the_apis_limit() -> None:
    route = next(r for r in routes.router.routes
                 if isinstance(r, APIRoute) and r.path.endswith("/{name}/events"))
    limit = next(p for p in route.dependant.query_params if p.name == "limit")
    assert [m.le for m in limit.field_info.metadata if isinstance(m, Le)] == [MAX_EVENTS]


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return [name for name, command in group.commands.items() if not command.hidden]


@pytest.mark.parametrize("name", ["", *_commands()])
def test_help_shows_no_bool_metavar_and_a_plain_usage_line(name: str) -> None:
    result = run(*([name] if name else []), "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


@pytest.mark.parametrize(("name", "usage"), [
    ("rm", "Usage: berth rm [OPTIONS] NAME"),
    ("key-create", "Usage: berth key-create [OPTIONS] NAME"),
    ("ls", "Usage: berth ls [OPTIONS]"),
])
def test_usage_names_arguments_in_capitals(name: str, usage: str) -> None:
    result = run(name, "--help")
    assert usage in result.stdout
