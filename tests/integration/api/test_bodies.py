"""Malformed bodies, parameters and non-text strings on every surface: a 4xx in that surface's
error shape, never a 5xx, and nothing stored."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from berth.api.body import CheckedRoute, api_routes
from berth.api.openapi import DIALECT_SURFACES, NATIVE
from berth.server import build
from berth.settings import Settings
from tests.fuzz import encode, mutations, raw_bodies
from tests.integration.api.app_env import CREATE_ROUTES, ApiEnv, TestClient

SHAPES: dict[str, type[BaseModel]] = {
    "native": NATIVE.model, **{name: s.model for name, s in DIALECT_SURFACES.items()}}
KEYS = {"native": {"error"}, "gcore": {"exception_class", "message"},
        "tir": {"code", "data", "message", "errors"}, "scale": {"detail"},
        "foundry": {"errorCode", "errorName", "errorInstanceId", "parameters"}}
JSON = {"Content-Type": "application/json"}
SPEC: dict[str, Any] = {
    "name": "echo", "image": "catalog/echo", "labels": {"team": "a"}, "envs": {"A": "1"},
    "command": ["python3", "-m", "x"], "api_keys": ["k"],
    "containers": [{"region": "local", "scale": {"min": 1, "max": 1}}]}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(tmp_path)
    with e.http:
        yield e
    e.close()


def in_shape(surface: str, status: int, body: Any) -> None:
    assert isinstance(body, dict) and KEYS[surface] <= set(body), body
    SHAPES[surface].model_validate(body)
    if surface == "tir":
        assert body["code"] == status


@pytest.mark.parametrize("surface", CREATE_ROUTES)
def test_malformed_raw_bodies_are_refused_in_the_surface_shape(env: ApiEnv,
                                                                surface: str) -> None:
    before = env.rows()
    for what, raw in raw_bodies():
        answer = env.http.post(CREATE_ROUTES[surface], content=raw, headers=JSON)
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text)
        in_shape(surface, answer.status_code, answer.json())
    assert env.rows() == before


@pytest.mark.parametrize("surface", CREATE_ROUTES)
def test_size_depth_and_text_rules_answer_their_status(env: ApiEnv, surface: str) -> None:
    url = CREATE_ROUTES[surface]
    validation = 422 if surface in ("native", "scale") else 400
    cases = [(b"[" * 100_000, 400, "depth"), (b'{"a": NaN}', 400, "finite"),
             (b'{"a": "\xff"}', 400, "utf8"),
             (json.dumps({"name": "a" * (2 * 1024 * 1024)}).encode(), 413, "limit"),
             (b'{"a": {"b": ["x", "\\udfff"]}}', validation, "surrogate")]
    for raw, status, named in cases:
        answer = env.http.post(url, content=raw, headers=JSON)
        assert answer.status_code == status, (named, answer.text)
        assert named in answer.text or status == 413  # the rule broken
        in_shape(surface, status, answer.json())


def asgi_post(env: ApiEnv, headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, int]:
    """POST to the native create route straight through ASGI, the body in `chunks` 1 KiB
    messages: (the answer's status, how many messages the app received)."""
    received: list[int] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"[" + b" " * 1023,
                "more_body": len(received) < chunks}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    path = CREATE_ROUTES["native"]
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "headers": [(b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {env.token}".encode()), *headers]}
    asyncio.run(env.app(scope, receive, send))
    return sent[0]["status"], len(received)


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read(
        tmp_path: Path) -> None:
    env = ApiEnv(tmp_path, max_body_bytes=4096)
    assert asgi_post(env, [(b"content-length", b"999999999")], 1000) == (413, 0)
    env.close()


def test_a_streamed_body_is_refused_once_it_passes_the_limit(tmp_path: Path) -> None:
    env = ApiEnv(tmp_path, max_body_bytes=4096)
    assert asgi_post(env, [], 1000) == (413, 5)  # 1 MB sent; reading stopped at 5 KiB
    env.close()


@pytest.mark.parametrize("surface", CREATE_ROUTES)
def test_over_long_path_and_query_values_are_refused(env: ApiEnv, surface: str) -> None:
    long = "a" * 5000
    urls = {"native": f"/v1/projects/{long}/deployments",
            "gcore": f"/cloud/v3/inference/7/deployments/{long}",
            "tir": f"/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference/?x={long}",
            "scale": f"/v5/models/{long}",
            "foundry": f"/api/v2/models/liveDeployments/{long}?preview=true"}
    answer = env.http.get(urls[surface])
    assert answer.status_code == 400, answer.text
    in_shape(surface, 400, answer.json())


@pytest.mark.parametrize(("field", "value", "named"), [
    ("labels", {"team": "\udfff"}, "labels.team"),
    ("labels", {"\ud800": "a"}, "labels.\\ud800"),
    ("envs", {"A": "x\udfffy"}, "envs.A"),
    ("command", ["python3", "\udfff"], "command[1]"),
    ("api_keys", ["\udfff"], "api_keys[0]"),
    ("credentials_name", "\udfff", "credentials_name"),
    ("description", "a\x00b", "description"),
])
def test_non_text_strings_are_refused_and_the_project_still_lists(
        env: ApiEnv, field: str, value: Any, named: str) -> None:
    url = CREATE_ROUTES["native"]
    answer = env.http.post(url, content=encode({**SPEC, field: value}), headers=JSON)
    assert answer.status_code == 422, answer.text
    assert named in [d["field"] for d in answer.json()["error"]["details"]]
    listed = env.http.get(url)
    assert listed.status_code == 200 and listed.json()["count"] == 0


def test_non_text_secret_and_credential_values_are_refused(env: ApiEnv) -> None:
    bodies = {"/v1/projects/p/secrets": {"name": "s1", "type": "aws-iam", "data": {
                  "aws_access_key_id": "id", "aws_secret_access_key": "\udfff"}},
              "/v1/projects/p/registry-credentials": {
                  "name": "r1", "registry_url": "r.example", "username": "u",
                  "password": "\udfff"},
              "/v1/projects/p/api-keys": {"name": "k\udfff"}}
    for url, body in bodies.items():
        answer = env.http.post(url, content=encode(body), headers=JSON)
        assert answer.status_code == 422, (url, answer.text)
        assert env.http.get(url).status_code == 200


def test_mutated_native_bodies_never_answer_5xx(env: ApiEnv) -> None:
    url = CREATE_ROUTES["native"]
    for what, body in mutations(SPEC, seed=16, count=200):
        before = env.rows()
        answer = env.http.post(url, content=encode(body), headers=JSON)
        assert answer.status_code < 500, (what, answer.text)
        if answer.status_code >= 400:
            in_shape("native", answer.status_code, answer.json())
            assert env.rows() == before, what
        else:
            assert env.http.delete(f"{url}/{body['name']}").status_code == 202
    assert env.http.get(url).status_code == 200


def test_every_route_goes_through_the_shared_reader(env: ApiEnv) -> None:
    routes = list(api_routes(env.app.routes))
    assert len(routes) > 50
    assert [path for path, route in routes if not isinstance(route, CheckedRoute)] == []


NAMES = itertools.count()
# Any character a JSON string can carry, lone surrogates and NUL included.
ANY_TEXT = st.lists(st.sampled_from(["\udfff", "\ud800", "\x00"]) | st.characters(codec="utf-8"),
                    max_size=12).map("".join)


@given(label=ANY_TEXT, env_value=ANY_TEXT, arg=ANY_TEXT, key=ANY_TEXT)
@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_free_strings_are_refused_or_stored_and_listed(
        env: ApiEnv, label: str, env_value: str, arg: str, key: str) -> None:
    url = CREATE_ROUTES["native"]
    name = f"echo-{next(NAMES)}"
    spec = {**SPEC, "name": name, "labels": {"team": label}, "envs": {"A": env_value},
            "command": ["python3", arg], "api_keys": [key]}
    created = env.http.post(url, content=encode(spec), headers=JSON)
    assert created.status_code in (202, 422), created.text
    listed = env.http.get(url)
    assert listed.status_code == 200, listed.text
    names = {d["name"] for d in listed.json()["items"]}
    assert (name in names) == (created.status_code == 202)


def test_the_setting_sets_the_limit(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()  # the gateway built beside the app takes the current loop
    asyncio.set_event_loop(loop)
    server = build(Settings(data_dir=tmp_path, max_body_bytes=2048, gpus=""))
    token = server.settings.token_file.read_text().strip()
    body = json.dumps({"name": "a" * 3000}).encode()
    with TestClient(server.app, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.post(CREATE_ROUTES["native"], content=body).status_code == 413
        assert http.post(CREATE_ROUTES["native"], content=body[:1500] + b'"}').status_code == 422
    server.store.close()
    asyncio.set_event_loop(None)
    loop.close()
