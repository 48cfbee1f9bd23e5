"""BerthClient's API key methods over httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from berth.client import BerthAPIError, BerthClient
from tests.unit.client.test_client import T0, Server, ok

KEYS = "/v1/projects/default/api-keys"


def key_json(name: str = "ci", **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "", "prefix": "bk_abcdefg", "created_at": T0,
            "expires_at": None, **extra}


def test_create_api_key_returns_the_secret(client: BerthClient, server: Server) -> None:
    server.on("POST", KEYS, ok(key_json(secret="bk_abcdefg-rest"), 201))
    created = client.create_api_key("ci", description="for CI",
                                    expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert created.secret == "bk_abcdefg-rest" and created.prefix == "bk_abcdefg"
    assert json.loads(server.last.content) == {
        "name": "ci", "description": "for CI", "expires_at": "2030-01-01T00:00:00+00:00"}


def test_create_api_key_defaults(client: BerthClient, server: Server) -> None:
    server.on("POST", KEYS, ok(key_json(secret="bk_x"), 201))
    client.create_api_key("ci")
    assert json.loads(server.last.content) == {"name": "ci", "description": "",
                                               "expires_at": None}


def test_list_get_and_delete_api_keys(server: Server) -> None:
    keys = "/v1/projects/team%20a/api-keys"
    server.on("GET", "/v1/projects/team a/api-keys", ok({"items": [key_json(), key_json("web")]}))
    server.on("GET", "/v1/projects/team a/api-keys/ci", ok(key_json()))
    server.on("DELETE", "/v1/projects/team a/api-keys/ci", httpx.Response(204))
    with BerthClient(project="team a", transport=httpx.MockTransport(server)) as c:
        assert [k.name for k in c.api_keys()] == ["ci", "web"]
        assert server.last.url.raw_path.decode() == keys
        assert c.api_key("ci").prefix == "bk_abcdefg"
        c.delete_api_key("ci")
    assert server.last.method == "DELETE"


def test_delete_unknown_api_key_raises(client: BerthClient, server: Server) -> None:
    server.on("DELETE", f"{KEYS}/nope", ok({"error": {
        "code": "not_found", "message": "API key 'nope' not found"}}, 404))
    with pytest.raises(BerthAPIError) as exc:
        client.delete_api_key("nope")
    assert exc.value.status == 404 and "nope" in exc.value.message
