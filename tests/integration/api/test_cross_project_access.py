"""Every route of the control API, driven in-process (TestClient, SQLite, the fake runtime) by
a token of another project: each is refused, and nothing changes. The routes come from the
app itself (tests/unit/api/test_route_authorization.py), so a route added later is driven too.

A resource named by id (a task, a Gcore v2 instance, a TIR endpoint URL) of a project the
token may not use answers 404, word for word as a missing one; a project named by the request
that the token may not use answers 403."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.auth import Rule
from berth.api.dialects.foundry.shapes import LIVE_RID
from berth.store.engine import Store
from tests.fakes.builders import facts
from tests.unit.api.test_route_authorization import RouteInfo, api_routes, build_app

with warnings.catch_warnings():  # starlette prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

VICTIM, ATTACKER = "victim", "attacker"  # native and Scale projects
GCORE, GCORE_OTHER = "42", "43"
TEAM, TIR, TIR_OTHER = 1, 2, 3  # TIR team and projects (tir-1-2 is the victim's)
SPEC = {"name": "echo", "image": "catalog/echo",
        "containers": [{"region": "local", "scale": {"min": 0, "max": 1}}]}
SCALE_CONFIG = {"model_image": {"registry": "", "repository": "catalog/echo", "tag": "",
                                "command": [], "predict_route": "/predict",
                                "healthcheck_route": "/healthz", "readiness_delay": 0,
                                "env_vars": {}},
                "model_infra": {"endpoint_type": "sync", "cpus": "1", "memory": "256Mi",
                                "min_workers": 0, "max_workers": 1, "per_worker": 4}}
PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass
class World:
    app: FastAPI
    http: TestClient  # no credentials of its own
    store: Store
    admin: str
    attacker: str
    owner: str
    values: dict[str, dict[str, str]]  # per dialect prefix: path parameter -> victim's value


def _ok(r: Any) -> Any:
    assert r.status_code < 300, r.text
    return r.json()


def _token(http: TestClient, admin: str, name: str, projects: list[str]) -> str:
    made = http.post("/v1/tokens", json={"name": name, "projects": projects},
                     headers={"Authorization": f"Bearer {admin}"})
    return str(_ok(made)["secret"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app, store, admin = build_app(tmp_path)
    http = TestClient(app)
    with http:
        bearer = {"Authorization": f"Bearer {admin}"}
        native = _ok(http.post(f"/v1/projects/{VICTIM}/deployments", json=SPEC, headers=bearer))
        gcore = _ok(http.post(f"/v1/projects/{GCORE}/deployments", json=SPEC, headers=bearer))
        gpu = "/myaccount/api/v1/gpu"
        sku = _ok(http.get(f"{gpu}/gpu_service/sku/", headers=bearer))["data"]["CPU"][0]
        tir = _ok(http.post(
            f"{gpu}/teams/{TEAM}/projects/{TIR}/serving/inference/", headers=bearer,
            json={"name": "tir-echo", "framework": "custom", "sku_id": sku["sku_id"],
                  "replica": 0, "custom_endpoint_details": {
                      "container": {"container_name": "catalog/echo"}}}))["data"]
        tir_dataset = _ok(http.post(f"{gpu}/teams/{TEAM}/projects/{TIR}/datasets/",
                                    headers=bearer, json={"name": "results"}))["data"]
        scale = _ok(http.post("/v5/models", headers={
            "x-api-key": admin, "x-selected-account-id": VICTIM}, json={
            "name": "echo-model", "model_vendor": "launch", "model_type": "generic",
            "vendor_configuration": SCALE_CONFIG}))
        model = _ok(http.post("/api/v2/models", headers=bearer, json={
            "name": "m", "parentFolderRid": "ri.compass.main.folder.x"}))
        values = {
            "/v1/": {"project": VICTIM, "name": "echo", "replica": "r1",
                     "task_id": native["task_id"], "request_id": "r1", "path": "echo/r1.json"},
            "/cloud/": {"project_id": GCORE, "name": "echo", "credential_name": "c",
                        "secret_name": "s", "flavor_name": facts().flavors[0].name,
                        "task_id": _ok(http.get(f"/v1/tasks/{gcore['task_id']}",
                                                headers=bearer))["id"],
                        "instance_id": gcore["deployment"]["id"]},
            "/myaccount/": {"team": str(TEAM), "project": str(TIR),
                            "inference_id": str(tir["id"]), "replica_name": "r1",
                            "dataset_id": str(tir_dataset["id"])},
            "/project/p-": {"project": str(TIR), "name": "tir-echo", "rest": "infer",
                            "inference_id": str(tir["id"]), "path": "predict"},
            "/v5/": {"model_id": scale["id"]},
            "/api/v2/models": {"rid": LIVE_RID + "0", "model_rid": model["rid"],
                               "version_rid": "v"},
        }
        yield World(app, http, store, admin,
                    _token(http, admin, "attacker",
                           [ATTACKER, GCORE_OTHER, f"tir-{TEAM}-{TIR_OTHER}"]),
                    _token(http, admin, "owner", [VICTIM, GCORE, f"tir-{TEAM}-{TIR}"]),
                    values)
    store.close()


def _values(world: World, path: str) -> dict[str, str]:
    for prefix, values in world.values.items():
        if path.startswith(prefix):
            return values
    if not PARAM.search(path):
        return {}
    raise AssertionError(f"no path parameters for {path}: add them to the world fixture")


def _url(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def _call(world: World, route: RouteInfo, token: str, values: dict[str, str],
          account: str = VICTIM) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if route.path.startswith("/v5/"):
        headers = {"x-api-key": token, "x-selected-account-id": account}
    body: dict[str, Any] | None = {} if route.method in ("POST", "PUT", "PATCH") else None
    return world.http.request(route.method, _url(route.path, values) + "?preview=true",
                              json=body, headers=headers)


def _snapshot(store: Store) -> Any:
    with store.read() as tx:
        deployments = sorted((d.id, d.project, d.name, d.generation, d.desired.value,
                              d.spec.model_dump_json()) for d in tx.deployments.active())
        records = [(r.key, r.project, sorted(r.data.items()).__repr__())
                   for dialect, kind in (("tir", "inference"), ("scale", "model"),
                                         ("foundry", "model"))
                   for r in tx.dialect_records.find(dialect, kind)]
        keys = sorted(k.id for k in tx.api_keys.all())
        tokens = sorted(t.name for t in tx.tokens.all())
        datasets = sorted((ds.id, ds.project, ds.name) for ds in tx.datasets.all())
    return deployments, sorted(records), keys, tokens, datasets


EXPECTED = {Rule.ADMIN: 403, Rule.PROJECT: 403, Rule.OWNER: 404, Rule.PLATFORM: 200,
            Rule.PUBLIC: 200}


def test_a_token_of_another_project_is_refused_everywhere_and_changes_nothing(
        world: World) -> None:
    routes = api_routes(world.app)
    before = _snapshot(world.store)
    wrong = []
    for route in routes:
        r = _call(world, route, world.attacker, _values(world, route.path))
        assert route.rule is not None
        if r.status_code != EXPECTED[route.rule]:
            wrong.append((route.method, route.path, route.rule.value, r.status_code, r.text))
    assert wrong == []
    assert _snapshot(world.store) == before


def test_in_its_own_project_a_token_reaches_no_resource_of_another(world: World) -> None:
    """The attacker names its own project, and the victim's ids or names."""
    own = {"project": ATTACKER, "project_id": GCORE_OTHER, "team": str(TEAM)}
    routes = [r for r in api_routes(world.app)
              if r.params - {"project", "project_id", "team"}]
    before = _snapshot(world.store)
    wrong = []
    for route in routes:
        if route.rule != Rule.PROJECT or route.path.startswith("/api/v2/"):
            continue  # driven by the test above: refused before any lookup
        values = _values(world, route.path) | own
        if route.path.startswith(("/myaccount/", "/project/p-")):
            values["project"] = str(TIR_OTHER)
        r = _call(world, route, world.attacker, values, account=ATTACKER)
        if r.status_code < 300 or r.status_code in (401, 403, 500) or (
                route.method == "GET" and r.status_code != 404):
            wrong.append((route.method, route.path, r.status_code, r.text))
    assert wrong == []
    assert _snapshot(world.store) == before


def test_the_owner_reaches_what_the_attacker_could_not(world: World) -> None:
    """The ids the tests above used are real: the owner's token reads each of them."""
    wrong = []
    for route in api_routes(world.http.app):  # type: ignore[arg-type]
        if route.method != "GET" or route.rule not in (Rule.OWNER, Rule.PROJECT) or \
                route.path.startswith("/api/v2/"):
            continue
        r = _call(world, route, world.owner, _values(world, route.path))
        refused = {401, 403} | ({404} if route.rule == Rule.OWNER else set())
        if r.status_code in refused:
            wrong.append((route.method, route.path, r.status_code, r.text))
    assert wrong == []


def test_another_projects_task_is_missing_word_for_word(world: World) -> None:
    task = world.values["/v1/"]["task_id"]
    for path in (f"/v1/tasks/{task}", f"/cloud/v1/tasks/{task}"):
        hidden = world.http.get(path, headers={"Authorization": f"Bearer {world.attacker}"})
        absent = world.http.get(path.replace(task, "nope"),
                                headers={"Authorization": f"Bearer {world.attacker}"})
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == _replace(absent.json(), "nope", task)
        mine = world.http.get(path, headers={"Authorization": f"Bearer {world.owner}"})
        assert mine.status_code == 200, mine.text


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    return value.replace(old, new) if isinstance(value, str) else value


def test_gcore_v2_checks_the_instances_project(world: World) -> None:
    """Seen in the field: a token of project 7 replaced a deployment of project pb whole."""
    instance = world.values["/cloud/"]["instance_id"]
    url = f"/cloud/v2/inference/deployments/{instance}"
    attacker = {"Authorization": f"Bearer {world.attacker}"}
    before = _snapshot(world.store)
    assert world.http.get(url, headers=attacker).status_code == 404
    put = world.http.put(url, headers=attacker, json={
        "name": "echo", "image": "catalog/echo", "listening_port": 8080,
        "containers": [{"region_id": 1, "scale": {"min": 0, "max": 1}}]})
    assert put.status_code == 404, put.text
    assert put.json()["message"] == f"inference instance {instance!r} not found"
    assert world.http.delete(url, headers=attacker).status_code == 404
    assert _snapshot(world.store) == before
    owner = world.http.get(url, headers={"Authorization": f"Bearer {world.owner}"})
    assert owner.status_code == 200 and owner.json()["id"] == instance


def test_the_tir_relay_refuses_dot_segments_before_relaying(world: World) -> None:
    """Seen in the field: `..%2F..%2Fgw%2Fecho%2Fpredict` reached another project's deployment,
    with no token at all."""
    eid = world.values["/project/p-"]["inference_id"]
    for tail in ("..%2F..%2Fgw%2Fecho%2Fpredict", "x/%2e%2e/%2e%2e/%2e%2e/gw/echo/predict",
                 "%252e%252e/%252e%252e/gw/echo/predict", "..%5C..%5Cgw%5Cecho"):
        r = world.http.post(f"/project/p-{TIR}/endpoint/is-{eid}/{tail}", json={})
        assert r.status_code == 400, (tail, r.text)
        assert r.json()["code"] == 400 and "'..' segment" in r.json()["message"]
    named = world.http.post(f"/project/p-{TIR}/v1/tir-echo/..%2F..%2F..%2Fgw%2Fecho", json={})
    assert named.status_code == 400, named.text
