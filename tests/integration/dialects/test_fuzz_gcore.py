"""Gcore's create and update routes, in-process, driven with mutated bodies (tests/fuzz.py):
no answer is a 5xx, and every 4xx is in Gcore's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz import drive, drive_raw
from tests.unit.dialects.test_gcore_routes import PROJECT, App, body

V3 = f"/cloud/v3/inference/{PROJECT}"
COUNT = 120
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    a = App(tmp_path_factory.mktemp("gcore-fuzz"))
    with a.http:
        assert a.http.post(f"{V3}/deployments", json=body(name="fuzz-target")).status_code == 200
        assert a.http.post(f"{V3}/api_keys", json={"name": "fuzz-key"}).status_code == 200
        assert a.http.post(f"{V3}/registry_credentials", json={
            "name": "fuzz-hub", "registry_url": "docker.io", "username": "u",
            "password": "p"}).status_code == 200
        assert a.http.post(f"{V3}/secrets", json=SECRET | {"name": "fuzz-secret"}
                           ).status_code == 200
        yield a
    a.store.close()


SECRET = {"type": "aws-iam", "data": {"aws_access_key_id": "a", "aws_secret_access_key": "s"}}
PROBE = {"enabled": True, "probe": {
    "http_get": {"path": "/healthz", "port": 8080, "headers": {"X": "1"}, "schema": "HTTP"},
    "period_seconds": 1, "failure_threshold": 3, "initial_delay_seconds": 0}}
FULL = body(name="fuzz-new", command=["python3", "-m", "http.server"], envs={"A": "1"},
            api_keys=["fuzz-key"], description="d", timeout=120, credentials_name="fuzz-hub",
            ingress_opts={"disable_response_buffering": True},
            logging={"enabled": True, "retention_policy": {"period": 1}},
            probes={"readiness_probe": PROBE, "liveness_probe": {"enabled": False}},
            containers=[{"region_id": 1, "scale": {
                "min": 1, "max": 2, "cooldown_period": 60, "polling_interval": 30,
                "triggers": {"cpu": {"threshold": 80}, "http": {"rate": 5, "window": 60}}}}])
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", f"{V3}/deployments", FULL),
    ("PUT", f"{V3}/deployments/fuzz-target", FULL | {"name": "fuzz-target"}),
    ("PATCH", f"{V3}/deployments/fuzz-target", {k: v for k, v in FULL.items() if k != "name"}),
    ("POST", f"{V3}/api_keys", {"name": "k2", "description": "d",
                                "expires_at": "2099-01-01T00:00:00Z"}),
    ("PATCH", f"{V3}/api_keys/fuzz-key", {"description": "d"}),
    ("POST", f"{V3}/registry_credentials", {"name": "hub2", "registry_url": "docker.io",
                                            "username": "u", "password": "p"}),
    ("PUT", f"{V3}/registry_credentials/fuzz-hub", {"registry_url": "ghcr.io",
                                                   "username": "u", "password": "p"}),
    ("POST", f"{V3}/secrets", SECRET | {"name": "s2"}),
    ("PUT", f"{V3}/secrets/fuzz-secret", SECRET),
]


def check(answer: Any, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        out = answer.json()
        assert set(out) >= {"exception_class", "message"}, f"{what}: {out}"
        assert answer.headers["x-should-retry"] == "false", what


@pytest.mark.parametrize("method, path, base", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_mutated_bodies_get_no_5xx(app: App, method: str, path: str,
                                   base: dict[str, Any]) -> None:
    drive(app.http, method, path, base, check, headers=JSON, count=COUNT)


def test_v2_instance_put_gets_no_5xx(app: App) -> None:
    instance = app.deployments.get(str(PROJECT), "fuzz-target").id
    v2 = {k: v for k, v in FULL.items() if k not in ("flavor_name", "api_keys")} | {
        "name": "fuzz-target", "project_id": PROJECT, "image_registry_id": "fuzz-hub"}
    drive(app.http, "PUT", f"/cloud/v2/inference/deployments/{instance}", v2, check,
          headers=JSON, count=COUNT)


@pytest.mark.parametrize("method, path", [(m, p) for m, p, _ in ROUTES[:3]])
def test_malformed_raw_bodies_get_no_5xx(app: App, method: str, path: str) -> None:
    drive_raw(app.http, method, path, check, headers=JSON)
