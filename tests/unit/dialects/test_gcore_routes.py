"""Gcore's deployment, key and credential routes through the real app (SQLite in tmp_path,
the fake runtime): typed bodies, errors naming Gcore's fields, no 500."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.app import create_app
from berth.domain.platform import PlatformFacts
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

PROJECT = 7
BASE = f"/cloud/v3/inference/{PROJECT}/deployments"


class App:
    """The control API over a fresh store, as `berth serve` builds it, with a fake runtime;
    `http` sends the admin token and turns server exceptions into 500 answers."""

    def __init__(self, tmp: Path, platform: PlatformFacts | None = None) -> None:
        self.facts = platform or facts()
        self.store = Store(f"sqlite:///{tmp / 'b.db'}")
        self.store.migrate()
        tokens = TokenService(self.store)
        tokens.ensure_admin_token(tmp / "admin-token", T0)
        self.token = (tmp / "admin-token").read_text().strip()
        self.deployments = DeploymentService(self.store, self.facts, lambda: T0)
        self.app = create_app(
            deployments_service=self.deployments, tasks=TaskService(self.store),
            tokens=tokens, runtime=FakeRuntime(), facts=self.facts,
            api_keys=ApiKeyService(self.store, lambda: T0),
            credentials=CredentialService(self.store, Vault(tmp / "credentials.key"),
                                          lambda: T0))
        self.http = TestClient(self.app, raise_server_exceptions=False,
                               headers={"Authorization": f"Bearer {self.token}"})

    def native(self, project: str, name: str) -> dict[str, Any]:
        d = self.deployments.get(project, name)
        return d.spec.model_dump(mode="json", by_alias=True)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path)
    with a.http:
        yield a
    a.store.close()


def body(**extra: Any) -> dict[str, Any]:
    return {"name": "my-echo", "image": "catalog/echo", "listening_port": 8080,
            "flavor_name": facts().flavors[0].name,
            "containers": [{"region_id": 1, "scale": {"min": 1, "max": 2}}]} | extra


def fields(answer: Any) -> list[str]:
    assert answer.status_code == 400, answer.text
    out = answer.json()
    assert out["exception_class"] == "ValidationError" and out["message"]
    assert answer.headers["x-should-retry"] == "false"
    return [e["field"] for e in out["errors"]]


@pytest.mark.parametrize("where, value", [
    ("scale", "big"), ("scale", 3), ("scale", [1]),
    ("triggers", "cpu"), ("triggers", 5), ("triggers", [{"cpu": 1}]),
])
def test_scale_and_triggers_of_the_wrong_type_are_a_400_naming_them(
        app: App, where: str, value: Any) -> None:
    container: dict[str, Any] = {"region_id": 1, "scale": {"min": 1, "max": 1}}
    if where == "scale":
        container["scale"] = value
        field = "containers[0].scale"
    else:
        container["scale"]["triggers"] = value
        field = "containers[0].scale.triggers"
    assert fields(app.http.post(BASE, json=body(containers=[container]))) == [field]


@pytest.mark.parametrize("value", ["http", 8080, [{"http_get": {}}]])
@pytest.mark.parametrize("kind", ["startup_probe", "readiness_probe", "liveness_probe"])
def test_a_probe_of_the_wrong_type_is_a_400_naming_it(app: App, kind: str, value: Any) -> None:
    answer = app.http.post(BASE, json=body(probes={kind: {"enabled": True, "probe": value}}))
    assert fields(answer) == [f"probes.{kind}.probe"]


def test_unknown_fields_and_types_are_named_as_gcore_names_them(app: App) -> None:
    assert fields(app.http.post(BASE, json=body(colour="red"))) == ["colour"]
    assert fields(app.http.post(BASE, json=body(listening_port="x"))) == ["listening_port"]
    assert fields(app.http.post(BASE, json=body(envs={"A": 1}))) == ["envs.A"]
    missing = body()
    del missing["flavor_name"]
    assert fields(app.http.post(BASE, json=missing)) == ["flavor_name"]
    assert fields(app.http.post(BASE, json=[1])) == ["body"]


def test_native_rule_errors_are_renamed_to_gcore_fields(app: App) -> None:
    bad_probe = {"readiness_probe": {"enabled": True, "probe": {
        "http_get": {"path": "healthz"}}}}
    assert fields(app.http.post(BASE, json=body(probes=bad_probe))) == [
        "probes.readiness_probe.probe.http_get.path"]
    assert fields(app.http.post(BASE, json=body(flavor_name="nope"))) == ["flavor_name"]
    assert fields(app.http.post(BASE, json=body(
        containers=[{"region_id": 1, "scale": {"min": 3, "max": 1}}]))) == [
        "containers[0].scale"]


def test_project_id_in_the_body_must_be_the_paths(app: App) -> None:
    assert fields(app.http.post(BASE, json=body(project_id=8))) == ["project_id"]
    assert app.http.post(BASE, json=body(project_id=PROJECT)).status_code == 200


def test_patch_disabling_a_probe_removes_it_and_a_new_action_replaces_the_old(
        app: App) -> None:
    probes = {"readiness_probe": {"enabled": True, "probe": {
        "tcp_socket": {"port": 8080}, "period_seconds": 2}},
        "liveness_probe": {"enabled": True, "probe": {"exec": {"command": ["true"]}}}}
    assert app.http.post(BASE, json=body(probes=probes)).status_code == 200
    answer = app.http.patch(f"{BASE}/my-echo", json={"probes": {
        "readiness_probe": {"enabled": True, "probe": {"http_get": {"path": "/ready"}}},
        "liveness_probe": {"enabled": False}}})
    assert answer.status_code == 200, answer.text
    native = app.native(str(PROJECT), "my-echo")["probes"]
    assert native["liveness"] is None
    assert native["readiness"]["tcp_socket"] is None
    assert native["readiness"]["http_get"]["path"] == "/ready"
    assert native["readiness"]["period_seconds"] == 5  # replaced whole: the default again


def test_sqs_triggers_are_refused(app: App) -> None:
    sqs = {"queue_url": "q", "queue_length": 1, "activation_queue_length": 1,
           "aws_region": "x", "secret_name": "s"}
    container = {"region_id": 1, "scale": {"min": 1, "max": 1, "triggers": {"sqs": sqs}}}
    assert fields(app.http.post(BASE, json=body(containers=[container]))) == [
        "containers[0].scale.triggers.sqs"]


def test_logging_acts_natively_and_hosted_log_service_fields_are_refused(app: App) -> None:
    logging = {"enabled": False, "retention_policy": {"period": 2}}
    assert app.http.post(BASE, json=body(logging=logging)).status_code == 200
    assert app.native(str(PROJECT), "my-echo")["logging"] == {
        "enabled": False, "retention_period": 2 * 86400}
    got = app.http.get(f"{BASE}/my-echo").json()["logging"]
    assert got == {"enabled": False, "retention_policy": {"period": 2},
                   "topic_name": None, "destination_region_id": None}
    for field, value in (("topic_name", "my-log"), ("destination_region_id", 1)):
        answer = app.http.patch(f"{BASE}/my-echo", json={"logging": {field: value}})
        assert fields(answer) == [f"logging.{field}"]


def test_key_and_credential_bodies_are_typed(app: App) -> None:
    keys = f"/cloud/v3/inference/{PROJECT}/api_keys"
    assert fields(app.http.post(keys, json={"name": 5})) == ["name"]
    assert app.http.post(keys, json={"name": "k1"}).status_code == 200
    assert fields(app.http.patch(f"{keys}/k1", json={"name": "k2"})) == ["name"]
    assert fields(app.http.patch(f"{keys}/k1", json={"description": []})) == ["description"]
    assert app.http.patch(f"{keys}/k1", json={"description": "d"}).json()["description"] == "d"
    registry = f"/cloud/v3/inference/{PROJECT}/registry_credentials"
    assert fields(app.http.post(registry, json={
        "name": "hub", "registry_url": "docker.io", "username": "u", "password": 1})) == [
        "password"]
    secrets = f"/cloud/v3/inference/{PROJECT}/secrets"
    assert fields(app.http.post(secrets, json={"name": "s", "type": "aws-iam", "data": {
        "aws_access_key_id": "a"}})) == ["data.aws_secret_access_key"]


def test_the_openapi_document_has_the_gcore_request_schemas(app: App) -> None:
    paths = app.http.get("/openapi.json").json()["paths"]
    create = paths["/cloud/v3/inference/{project_id}/deployments"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "image", "containers", "flavor_name"} <= set(schema["required"])
    container = schema["properties"]["containers"]["anyOf"][0]["items"] if (
        "anyOf" in schema["properties"]["containers"]) else (
        schema["properties"]["containers"]["items"])
    assert "region_id" in container["properties"]
    v2 = paths["/cloud/v2/inference/deployments/{instance_id}"]["put"]
    assert "flavor_id" in v2["requestBody"]["content"]["application/json"]["schema"][
        "properties"]
