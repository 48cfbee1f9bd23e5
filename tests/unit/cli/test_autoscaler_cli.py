"""`berth autoscaler NAME` (the decision per region as tables, or JSON / YAML) and the desired
count in `berth get`, through CliRunner over an httpx.MockTransport."""

from __future__ import annotations

import json

import yaml

from tests.unit.cli.test_cli import (
    BASE,
    Server,
    container,
    deployment_json,
    ok,
    run,
    server,  # noqa: F401  (the fixture)
)
from tests.unit.client.test_autoscaler_client import autoscaler_json

VIEW = f"{BASE}/echo-demo/autoscaler"


def words(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.strip()]


def test_autoscaler_shows_counts_panic_triggers_and_reasons(server: Server) -> None:  # noqa: F811
    server.on("GET", VIEW, ok(autoscaler_json()))
    result = run("autoscaler", "echo-demo")
    assert result.exit_code == 0, result.output
    rows = words(result.stdout)
    assert ["Region", "local"] in rows
    assert ["Current", "2"] in rows and ["Desired", "3"] in rows
    assert ["Min", "1"] in rows and ["Max", "4"] in rows and ["Panic", "yes"] in rows
    assert any(r[:2] == ["Last", "scale"] and r[2] != "never" for r in rows)
    assert ["TRIGGER", "VALUE", "TARGET", "AGE", "WANTS", "STATUS"] in rows
    assert ["concurrency", "5", "2", "0.4s", "3", "ok"] in rows
    assert ["gpu_utilization", "-", "80", "-", "-", "unavailable:", "no", "NVML"] in rows
    assert ["Reasons"] in rows
    assert "concurrency 5.0 / target 2.0: wants 3" in result.stdout
    assert server.last.url.path == VIEW


def test_autoscaler_before_any_decision(server: Server) -> None:  # noqa: F811
    server.on("GET", VIEW, ok(autoscaler_json(
        panic=False, metrics={}, reasons=["not decided yet"], last_scale_at=None,
        decided_at=None, desired=1, current=0)))
    result = run("autoscaler", "echo-demo")
    assert result.exit_code == 0, result.output
    rows = words(result.stdout)
    assert ["Panic", "no"] in rows and ["Last", "scale", "never"] in rows
    assert ["Decided", "-"] in rows
    assert not [r for r in rows if r[0] == "TRIGGER"]
    assert ["not", "decided", "yet"] in rows


def test_autoscaler_json_and_yaml_are_the_view(server: Server) -> None:  # noqa: F811
    server.on("GET", VIEW, ok(autoscaler_json()))
    as_json = json.loads(run("autoscaler", "echo-demo", "-o", "json").stdout)
    region = as_json["regions"][0]
    assert (region["desired"], region["panic"]) == (3, True)
    assert region["metrics"]["gpu_utilization"]["value"] is None
    as_yaml = yaml.safe_load(run("autoscaler", "echo-demo", "--output", "yaml").stdout)
    assert as_yaml == as_json


def test_autoscaler_of_an_unknown_deployment_exits_2(server: Server) -> None:  # noqa: F811
    result = run("autoscaler", "ghost")
    assert result.exit_code == 2
    assert "Error: nope" in result.stderr


def test_get_shows_the_desired_count_per_region(server: Server) -> None:  # noqa: F811
    decided = {**container(2, 3), "desired": 4}
    undecided = container(0, 0, "gpu")
    server.on("GET", f"{BASE}/echo-demo",
              ok(deployment_json(containers=[decided, undecided])))
    result = run("get", "echo-demo")
    assert result.exit_code == 0, result.output
    rows = words(result.stdout)
    assert ["REGION", "READY", "DESIRED", "MIN", "MAX", "ERROR"] in rows
    assert ["local", "2/3", "4", "1", "3", "-"] in rows
    assert ["gpu", "0/0", "-", "1", "1", "-"] in rows
