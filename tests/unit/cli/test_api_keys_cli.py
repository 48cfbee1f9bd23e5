"""`berth key-create`, `keys` and `key-rm` through CliRunner over an httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from berth.cli import common
from berth.client import BerthClient
from tests.unit.cli.test_cli import T0, Server, ok, run


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
KEYS = "/v1/projects/default/api-keys"
SECRET = "bk_abcdefg-the-rest-of-the-secret"


def key_json(name: str = "ci", **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "", "prefix": "bk_abcdefg", "created_at": T0,
            "expires_at": None, **extra}


def test_key_create_prints_the_secret_once_with_a_warning(server: Server) -> None:
    server.on("POST", KEYS, ok(key_json(secret=SECRET), 201))
    result = run("key-create", "ci", "-d", "for CI", "--expires-at", "2030-01-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == SECRET  # alone on stdout, for SECRET=$(berth key-create)
    assert "will not be shown again" in result.stderr and SECRET not in result.stderr
    assert json.loads(server.requests[-1].content) == {
        "name": "ci", "description": "for CI", "expires_at": "2030-01-01T00:00:00Z"}


def test_key_create_conflict_exits_2(server: Server) -> None:
    server.on("POST", KEYS, ok({"error": {
        "code": "conflict", "message": "API key 'ci' already exists in project 'default'"}}, 409))
    result = run("key-create", "ci")
    assert result.exit_code == 2
    assert "already exists" in result.stderr


def test_keys_lists_without_secrets(server: Server) -> None:
    server.on("GET", KEYS, ok({"items": [
        key_json("ci", description="for CI"),
        key_json("old", expires_at="2020-01-01T00:00:00Z"),
    ]}))
    result = run("keys")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "PREFIX" in rows["NAME"]
    assert "bk_abcdefg" in rows["ci"] and "for CI" in rows["ci"]
    assert "expired" in rows["old"]
    as_json = json.loads(run("keys", "-o", "json").stdout)
    assert [k["name"] for k in as_json["items"]] == ["ci", "old"]
    assert all("secret" not in k for k in as_json["items"])


def test_keys_empty(server: Server) -> None:
    server.on("GET", KEYS, ok({"items": []}))
    assert "No API keys in project default" in run("keys").stdout


def test_key_rm(server: Server) -> None:
    server.on("DELETE", f"{KEYS}/ci", httpx.Response(204))
    result = run("key-rm", "ci")
    assert result.exit_code == 0, result.output
    assert "Deleted API key ci" in result.stdout
    missing = run("key-rm", "nope")
    assert missing.exit_code == 2 and "nope" in missing.stderr
