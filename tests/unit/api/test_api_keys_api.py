"""The API key endpoints through the real FastAPI app, over a SQLite store in tmp_path."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.app import create_app
from berth.services.api_keys import ApiKeyService, digest
from berth.services.credentials import CredentialService
from berth.services.deployments import DeploymentService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService
from berth.services.vault import Vault
from berth.store.engine import Store
from tests.fakes.builders import T0, facts
from tests.fakes.runtime import FakeRuntime

with warnings.catch_warnings():  # starlette prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

BASE = "/v1/projects/team-a/api-keys"


class Env:
    def __init__(self, tmp: Path) -> None:
        self.store = Store(f"sqlite:///{tmp / 'b.db'}")
        self.store.migrate()
        tokens = TokenService(self.store)
        tokens.ensure_admin_token(tmp / "admin-token", T0)
        self.token = (tmp / "admin-token").read_text().strip()
        self.app = create_app(
            deployments_service=DeploymentService(self.store, facts(), lambda: T0),
            tasks=TaskService(self.store), tokens=tokens, runtime=FakeRuntime(),
            facts=facts(), api_keys=ApiKeyService(self.store, lambda: T0),
            credentials=CredentialService(self.store, Vault(tmp / "credentials.key"),
                                          lambda: T0))
        self.http = TestClient(self.app, headers={"Authorization": f"Bearer {self.token}"})

    def routing_version(self) -> int:
        with self.store.read() as tx:
            return tx.routing.version()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    with e.http:
        yield e
    e.store.close()


def details(body: dict[str, Any]) -> set[str]:
    return {d["field"] for d in body["error"]["details"]}


def test_create_answers_201_with_the_secret_once(env: Env) -> None:
    r = env.http.post(BASE, json={"name": "ci", "description": "for CI",
                                  "expires_at": "2030-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "name", "description", "prefix", "created_at", "expires_at",
                         "secret"}
    assert body["secret"].startswith("bk_") and body["prefix"] == body["secret"][:10]
    assert body["description"] == "for CI"
    assert body["expires_at"].startswith("2030-01-01T00:00:00")
    assert r.headers["Cache-Control"] == "no-store"
    with env.store.read() as tx:
        stored = tx.api_keys.get("team-a", "ci")
    assert stored is not None and stored.digest == digest(body["secret"])

    listed = env.http.get(BASE)
    assert listed.status_code == 200
    assert [k["name"] for k in listed.json()["items"]] == ["ci"]
    got = env.http.get(f"{BASE}/ci")
    assert got.status_code == 200 and got.json()["prefix"] == body["prefix"]
    for answer in (listed, got):
        assert "secret" not in answer.text and body["secret"] not in answer.text
        assert stored.digest not in answer.text


def test_any_content_type_is_read_as_json(env: Env) -> None:
    r = env.http.post(BASE, content=b'{"name": "curl"}',
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text


def test_every_endpoint_needs_the_admin_token(env: Env) -> None:
    bare = TestClient(env.app)
    for method, path in (("POST", BASE), ("GET", BASE), ("GET", f"{BASE}/ci"),
                         ("DELETE", f"{BASE}/ci")):
        r = bare.request(method, path, json={"name": "ci"})
        assert r.status_code == 401, (method, path)
        assert r.json()["error"]["code"] == "unauthorized"
    wrong = bare.post(BASE, json={"name": "ci"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert env.http.get(BASE).json() == {"items": []}


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Bad Name"}, "name"),
    ({}, "name"),
    ({"name": "ci", "expires_at": (T0 - timedelta(days=1)).isoformat()}, "expires_at"),
    ({"name": "ci", "expires_at": "soon"}, "expires_at"),
    ({"name": "ci", "admin": True}, "admin"),
])
def test_bad_input_answers_422_naming_the_field(env: Env, body: dict[str, Any],
                                                field: str) -> None:
    r = env.http.post(BASE, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_spec"
    assert field in details(r.json())
    assert env.http.get(BASE).json() == {"items": []}


@pytest.mark.parametrize(("content", "status"), [(b"", 422), (b"{nope", 400), (b'"ci"', 422)])
def test_unreadable_bodies_answer_4xx(env: Env, content: bytes, status: int) -> None:
    r = env.http.post(BASE, content=content)
    assert r.status_code == status  # 400: not JSON at all; 422: JSON, but not a key request
    assert details(r.json()) == {"body"}


def test_bad_project_answers_422(env: Env) -> None:
    r = env.http.post("/v1/projects/bad%20project/api-keys", json={"name": "ci"})
    assert r.status_code == 422 and details(r.json()) == {"project"}


def test_duplicate_answers_409(env: Env) -> None:
    assert env.http.post(BASE, json={"name": "ci"}).status_code == 201
    r = env.http.post(BASE, json={"name": "ci"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert r.json()["error"]["parameters"] == {"name": "ci", "project": "team-a"}


def test_unknown_key_answers_404(env: Env) -> None:
    for method in ("GET", "DELETE"):
        r = env.http.request(method, f"{BASE}/nope")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


def test_delete_answers_204_and_bumps_the_routing_version(env: Env) -> None:
    env.http.post(BASE, json={"name": "ci"})
    before = env.routing_version()
    r = env.http.delete(f"{BASE}/ci")
    assert r.status_code == 204 and r.content == b""
    assert env.routing_version() == before + 1
    assert env.http.get(f"{BASE}/ci").status_code == 404
    assert env.http.get(BASE).json() == {"items": []}


def test_keys_belong_to_their_project(env: Env) -> None:
    env.http.post(BASE, json={"name": "ci"})
    assert env.http.get("/v1/projects/team-b/api-keys").json() == {"items": []}
    assert env.http.get("/v1/projects/team-b/api-keys/ci").status_code == 404


def test_openapi_documents_the_endpoints(env: Env) -> None:
    schema = env.http.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths[BASE.replace("team-a", "{project}")])
    post = paths["/v1/projects/{project}/api-keys"]["post"]
    assert "name" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "secret" in schema["components"]["schemas"]["ApiKeyCreated"]["properties"]
    assert "secret" not in schema["components"]["schemas"]["ApiKeyOut"]["properties"]
