"""Every route of the control API declares how it is authorized (berth.api.auth): exactly one
`Authorization` among its dependencies, whose rule is admin-only, the project the request
names, or the project that owns the resource it names. The few routes that are neither (the
health check, read-only platform facts) are listed here by name, so a route added later
cannot forget: it fails this walk, or it is admin-only by default.

tests/integration/api/test_cross_project_access.py drives every one of these routes with a
token of another project."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.app import create_app
from berth.api.auth import Authorization, Rule, owned_by, platform_fact, require_token
from berth.api.errors import install_error_handlers
from berth.domain.errors import NotFound
from berth.services.api_keys import ApiKeyService
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

DOCS = {"/openapi.json", "/docs/static"}  # the schema and the docs pages' own assets
PUBLIC = {("GET", "/healthz"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
          ("GET", "/redoc")}
PLATFORM = {
    ("GET", "/v1/flavors"), ("GET", "/v1/regions"),
    ("GET", "/cloud/v3/inference/flavors"), ("GET", "/cloud/v3/inference/flavors/{flavor_name}"),
    ("GET", "/cloud/v3/inference/capacity"),
    ("GET", "/myaccount/api/v1/gpu/gpu_service/sku/"),
}
TIR = "/myaccount/api/v1/gpu/teams/{team}/projects/{project}"
# TIR's async status and datasets: authorized as its endpoints (the project tir-T-P).
TIR_PROJECT = {
    ("GET", f"{TIR}/serving/inference/{{inference_id}}/async_status/"),
    ("GET", f"{TIR}/datasets/"), ("POST", f"{TIR}/datasets/"),
    ("GET", f"{TIR}/datasets/{{dataset_id}}/"), ("DELETE", f"{TIR}/datasets/{{dataset_id}}/"),
}
PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    params: frozenset[str]
    authorizations: tuple[Authorization, ...]
    rule: Rule | None  # None: not exactly one Authorization


def build_app(tmp: Path) -> tuple[FastAPI, Store, str]:
    """The whole control API (native and dialects) over SQLite in `tmp` and the fake runtime;
    also its store and the admin token."""
    store = Store(f"sqlite:///{tmp / 'b.db'}")
    store.migrate()
    tokens = TokenService(store)
    tokens.ensure_admin_token(tmp / "admin-token", T0)
    app = create_app(
        deployments_service=DeploymentService(store, facts(), lambda: T0),
        tasks=TaskService(store), tokens=tokens, runtime=FakeRuntime(), facts=facts(),
        api_keys=ApiKeyService(store, lambda: T0),
        credentials=CredentialService(store, Vault(tmp / "credentials.key"), lambda: T0),
        address=lambda project, name: f"http://127.0.0.1:9/{project}/{name}")  # nothing there
    return app, store, (tmp / "admin-token").read_text().strip()


def _authorizations(dependant: Dependant) -> Iterator[Authorization]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Authorization):
            yield sub.call
        yield from _authorizations(sub)


def _contexts(app: FastAPI) -> Iterator[Any]:
    """Each route as mounted (FastAPI >= 0.16x resolves included routers lazily)."""
    from fastapi import routing
    walk = getattr(routing, "iter_route_contexts", None)
    yield from (walk(app.routes) if walk is not None else app.routes)


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every (method, path) of the app's API routes, with its authorization."""
    out = []
    for route in _contexts(app):
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        params = frozenset(m.group(1) for m in PARAM.finditer(route.path))
        found = tuple(_authorizations(route.dependant))
        rule = found[0].rule_for(route.endpoint, params) if len(found) == 1 else None
        for method in sorted(route.methods):
            out.append(RouteInfo(method, route.path, params, found, rule))
    return out


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[RouteInfo]:
    app, store, _token = build_app(tmp_path_factory.mktemp("routes"))
    store.close()
    return api_routes(app)


def test_the_walk_sees_every_dialect(routes: list[RouteInfo]) -> None:
    prefixes = {"/v1/", "/cloud/v2/", "/cloud/v3/", "/myaccount/", "/project/p-", "/v5/",
                "/api/v2/models"}
    assert {p for p in prefixes if any(r.path.startswith(p) for r in routes)} == prefixes
    assert len(routes) > 100


def test_each_route_declares_exactly_one_authorization(routes: list[RouteInfo]) -> None:
    wrong = [(r.method, r.path, len(r.authorizations)) for r in routes
             if len(r.authorizations) != 1]
    assert wrong == []


def test_each_route_is_admin_only_or_checks_a_project(routes: list[RouteInfo]) -> None:
    allowed = {Rule.ADMIN, Rule.PROJECT, Rule.OWNER}
    rest = {(r.method, r.path, r.rule) for r in routes if r.rule not in allowed}
    assert rest == {(m, p, Rule.PUBLIC) for m, p in PUBLIC} | {
        (m, p, Rule.PLATFORM) for m, p in PLATFORM}


def test_platform_facts_are_read_only(routes: list[RouteInfo]) -> None:
    assert all(r.method in ("GET", "HEAD") for r in routes if r.rule == Rule.PLATFORM)


def test_a_project_rule_reads_a_project_the_route_has(routes: list[RouteInfo]) -> None:
    for r in routes:
        if r.rule == Rule.PROJECT:
            auth = r.authorizations[0]
            assert auth.params is None or set(auth.params) & r.params, (r.method, r.path)


def test_routes_naming_a_resource_by_id_alone_check_its_owner(routes: list[RouteInfo]) -> None:
    owner = {(r.method, r.path) for r in routes if r.rule == Rule.OWNER}
    relays = {(m, "/project/p-{project}/endpoint/is-{inference_id}/{path:path}")
              for m in ("GET", "POST", "PUT", "PATCH", "DELETE")} | {
        (m, "/project/p-{project}/v1/{name}/{rest:path}") for m in ("GET", "POST")}
    assert owner == {
        ("GET", "/v1/tasks/{task_id}"), ("GET", "/cloud/v1/tasks/{task_id}"),
        *{(m, "/cloud/v2/inference/deployments/{instance_id}") for m in ("GET", "PUT", "DELETE")},
        *relays}


def test_tir_async_status_and_datasets_check_the_tir_project(routes: list[RouteInfo]) -> None:
    by_route = {(r.method, r.path): r for r in routes}
    assert set(by_route) >= TIR_PROJECT
    endpoints = by_route[("GET", f"{TIR}/serving/inference/")].authorizations
    for key in TIR_PROJECT:
        assert by_route[key].rule == Rule.PROJECT, key
        assert by_route[key].authorizations == endpoints, key  # the same check


def test_only_inference_relays_take_requests_without_a_control_token(
        routes: list[RouteInfo]) -> None:
    optional = {r.path for r in routes if r.authorizations and r.authorizations[0].optional}
    assert optional and all(p.startswith("/project/p-") for p in optional)
    assert all(r.rule == Rule.OWNER for r in routes if r.path in optional)


def test_admin_only_routes(routes: list[RouteInfo]) -> None:
    assert {(r.method, r.path) for r in routes if r.rule == Rule.ADMIN} == {
        ("POST", "/v1/tokens"), ("GET", "/v1/tokens"), ("DELETE", "/v1/tokens/{name}")}


def test_the_other_routes_are_the_documentation(tmp_path: Path) -> None:
    app, store, _token = build_app(tmp_path)
    store.close()
    others = {getattr(r, "path", repr(r)) for r in _contexts(app)
              if not isinstance(getattr(r, "original_route", r), APIRoute)}
    assert others <= DOCS


# -- the rules at work, on a small app of their own -------------------------------------------


def _app(tmp: Path) -> tuple[TestClient, dict[str, str]]:
    app, _store, admin = build_app(tmp)
    probe = FastAPI()
    probe.state = app.state
    install_error_handlers(probe)
    router = APIRouter(dependencies=[Depends(require_token)])

    @router.get("/things")
    def unmarked() -> dict[str, str]:  # names no project, marks nothing: admin-only
        return {"ok": "unmarked"}

    @router.get("/p/{project}/things")
    def in_project(project: str) -> dict[str, str]:
        return {"ok": project}

    def owner(request: Request) -> str | None:
        return {"t1": "a", "t2": "b"}.get(request.path_params["thing"])

    def missing(request: Request) -> NotFound:
        return NotFound(f"thing {request.path_params['thing']!r} not found")

    @router.api_route("/things/{thing}", methods=["GET", "POST"])
    @owned_by(owner, missing)
    def by_id(thing: str) -> dict[str, str]:
        return {"ok": thing}

    @router.get("/facts")
    @platform_fact
    def facts_() -> dict[str, str]:
        return {"ok": "facts"}

    probe.include_router(router)
    admin_client = TestClient(probe, headers={"Authorization": f"Bearer {admin}"})
    tokens = {"admin": admin}
    for name, body in (("a-write", {"projects": ["a"]}),
                       ("a-read", {"projects": ["a"], "access": "read"})):
        made = TestClient(app, headers={"Authorization": f"Bearer {admin}"}).post(
            "/v1/tokens", json={"name": name, **body})
        assert made.status_code == 201, made.text
        tokens[name] = made.json()["secret"]
    return admin_client, tokens


def test_the_rules_at_work(tmp_path: Path) -> None:
    http, tokens = _app(tmp_path)

    def call(method: str, path: str, token: str) -> tuple[int, str]:
        r = http.request(method, path, headers={"Authorization": f"Bearer {tokens[token]}"})
        return r.status_code, r.json().get("error", {}).get("message", "")

    # A route that names no project and is not marked: the admin token only.
    assert call("GET", "/things", "admin")[0] == 200
    assert call("GET", "/things", "a-write") == (
        403, "token 'a-write' may not use this route: it names no project, so it needs the "
        "admin token")
    # The project in the path.
    assert call("GET", "/p/a/things", "a-read")[0] == 200
    assert call("GET", "/p/b/things", "a-write")[0] == 403
    # By id: another project's thing is missing to the token, word for word.
    assert call("GET", "/things/t1", "a-read")[0] == 200
    hidden, absent = call("GET", "/things/t2", "a-write"), call("GET", "/things/t9", "a-write")
    assert hidden == (404, "thing 't2' not found") and absent == (404, "thing 't9' not found")
    assert call("POST", "/things/t1", "a-read") == (403, "token 'a-read' may not write in "
                                                         "project 'a'")
    assert call("POST", "/things/t2", "a-read")[0] == 404  # out of scope: missing, not 403
    assert call("GET", "/things/t2", "admin")[0] == 200
    # Platform facts: any valid token; none at all is 401.
    assert call("GET", "/facts", "a-read")[0] == 200
    assert http.get("/facts", headers={"Authorization": ""}).status_code == 401


# Routes of a project's resources by name: the project in the path decides (403 outside it).
PROJECT_ROUTES = {
    ("POST", "/v1/projects/{project}/datasets"), ("GET", "/v1/projects/{project}/datasets"),
    ("GET", "/v1/projects/{project}/datasets/{name}"),
    ("DELETE", "/v1/projects/{project}/datasets/{name}"),
    ("GET", "/v1/projects/{project}/datasets/{name}/objects"),
    ("GET", "/v1/projects/{project}/datasets/{name}/objects/{path:path}"),
    ("GET", "/v1/projects/{project}/deployments/{name}/async"),
    ("GET", "/v1/projects/{project}/deployments/{name}/async/{request_id}"),
}


def test_dataset_and_async_routes_check_the_project_in_the_path(
        routes: list[RouteInfo]) -> None:
    found = {(r.method, r.path): r.rule for r in routes if (r.method, r.path) in PROJECT_ROUTES}
    assert found == dict.fromkeys(PROJECT_ROUTES, Rule.PROJECT)
