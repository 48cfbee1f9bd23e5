"""`berth datasets ...` through CliRunner over an httpx.MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.cli import common
from berth.client import BerthClient
from tests.unit.cli.test_cli import T0, Server, ok, run

DATASETS = "/v1/projects/default/datasets"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    srv = Server()

    def make_client(config: common.Config) -> BerthClient:
        return BerthClient(config.url, token=config.resolved_token(), project=config.project,
                           transport=httpx.MockTransport(srv))

    monkeypatch.setattr(common, "make_client", make_client)
    for var in ("BERTH_URL", "BERTH_TOKEN", "BERTH_DATA_DIR", "BERTH_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return srv


def dataset_json(name: str = "results", **extra: Any) -> dict[str, Any]:
    return {"id": 1, "project": "default", "name": name, "url": None,
            "description": "batch results", "created_at": T0, **extra}


def test_create(server: Server) -> None:
    server.on("POST", DATASETS, ok(dataset_json(url="s3://bucket/p"), 201))
    result = run("datasets", "create", "results", "--url", "s3://bucket/p", "-d", "May")
    assert result.exit_code == 0, result.output
    assert "Created dataset results (s3://bucket/p)" in result.stdout
    assert json.loads(server.last.content) == {"name": "results", "url": "s3://bucket/p",
                                               "description": "May"}


def test_create_refused_says_why(server: Server) -> None:
    server.on("POST", DATASETS, ok({"error": {
        "code": "invalid_spec", "message": "url: Value error, unknown protocol 'nope'",
        "details": [{"field": "url", "rule": "value_error",
                     "message": "Value error, unknown protocol 'nope'"}]}}, 422))
    result = run("datasets", "create", "results", "--url", "nope://x")
    assert result.exit_code == 2
    assert "unknown protocol 'nope'" in result.stderr


def test_list_and_get(server: Server) -> None:
    server.on("GET", DATASETS, ok({"items": [dataset_json(), dataset_json(
        "remote", url="s3://b/p", description="")]}))
    server.on("GET", f"{DATASETS}/results", ok(dataset_json()))
    result = run("datasets", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "(data directory)" in rows["results"] and "s3://b/p" in rows["remote"]
    assert json.loads(run("datasets", "list", "-o", "json").stdout)["items"][0]["name"] == \
        "results"
    detail = run("datasets", "get", "results")
    assert detail.exit_code == 0 and "batch results" in detail.stdout
    assert json.loads(run("datasets", "get", "results", "-o", "json").stdout)["id"] == 1


def test_list_empty(server: Server) -> None:
    server.on("GET", DATASETS, ok({"items": []}))
    assert "No datasets in project default." in run("datasets", "list").stdout


def test_delete_and_its_conflict(server: Server) -> None:
    server.on("DELETE", f"{DATASETS}/results", httpx.Response(204), ok({"error": {
        "code": "conflict", "message": "dataset 'results' receives the async results of "
        "echo; point them elsewhere first"}}, 409))
    assert "Deleted dataset results." in run("datasets", "delete", "results").stdout
    refused = run("datasets", "delete", "results")
    assert refused.exit_code == 2 and "receives the async results of echo" in refused.stderr


def test_objects(server: Server) -> None:
    server.on("GET", f"{DATASETS}/results/objects", ok({"items": [
        {"path": "echo/r1.json", "size": 2048, "modified_at": T0}]}), ok({"items": []}))
    result = run("datasets", "objects", "results", "--prefix", "echo/", "-n", "5")
    assert result.exit_code == 0, result.output
    assert "echo/r1.json" in result.stdout and "2.0KiB" in result.stdout
    assert dict(server.last.url.params) == {"prefix": "echo/", "limit": "5"}
    assert "No objects in dataset results under echo/." in run(
        "datasets", "objects", "results", "--prefix", "echo/").stdout


def test_read_prints_or_writes_the_bytes(server: Server, tmp_path: Path) -> None:
    server.on("GET", f"{DATASETS}/results/objects/echo/r1.json",
              httpx.Response(200, content=b'{"ok": true}'))
    result = run("datasets", "read", "results", "echo/r1.json")
    assert result.exit_code == 0 and result.stdout_bytes == b'{"ok": true}'
    out = tmp_path / "r1.json"
    result = run("datasets", "read", "results", "echo/r1.json", "--out", str(out))
    assert result.exit_code == 0 and out.read_bytes() == b'{"ok": true}'
    assert "Wrote 12 bytes" in result.stderr and result.stdout == ""


def test_datasets_without_a_subcommand_shows_help(server: Server) -> None:
    result = run("datasets")
    assert "create" in result.output and "objects" in result.output
    assert not server.requests
