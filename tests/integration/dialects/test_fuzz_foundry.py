"""Foundry's create, replace and transformJson routes driven with mutated bodies,
in-process: no answer is a 5xx, and every 4xx is in Foundry's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz import drive, drive_raw, encode
from tests.unit.dialects.dialect_app import DialectApp

COUNT = 150  # mutations per route (seeded sample of the field mutations)
FOLDER = "ri.compass.main.folder.0a1b2c3d-0000-4000-8000-000000000000"
SOURCE = "ri.magritte..source.0a1b2c3d-0000-4000-8000-000000000001"
LIVE = "/api/v2/models/liveDeployments"
MODEL = {"name": "fuzzed", "parentFolderRid": FOLDER}
CONFIG = {"minReplicas": 0, "maxReplicas": 2, "cpu": 0.5, "memory": "256MiB",
          "threadCount": 4, "gpu": None, "sources": [SOURCE],
          "environmentVariables": {"BERTH_IMAGE": "catalog/echo", "BERTH_PORT": "8080",
                                   "MODE": "a"},
          "scalingConfiguration": {"scaleUpLoadThreshold": 0.5,
                                   "scaleUpDelay": {"value": 30, "unit": "SECONDS"},
                                   "scaleDownDelay": {"value": 2, "unit": "MINUTES"}}}
TRANSFORM = {"input": {"x": [1, 2], "y": {"z": "w"}}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DialectApp]:
    e = DialectApp(tmp_path_factory.mktemp("foundry"))
    yield e
    e.close()


def _headers(env: DialectApp) -> dict[str, str]:
    return {"authorization": f"Bearer {env.token}", "content-type": "application/json"}


def _model_rid(env: DialectApp) -> str:
    r = env.http.post("/api/v2/models", content=encode(MODEL), headers=_headers(env))
    assert r.status_code == 200, r.text
    rid: str = r.json()["rid"]
    return rid


def _create_body(model_rid: str, branch: str = "master") -> dict[str, Any]:
    return {"deploymentType": {"type": "direct", "modelRid": model_rid, "branch": branch},
            "runtimeConfiguration": CONFIG}


def _live_rid(env: DialectApp) -> str:
    r = env.http.post(f"{LIVE}?preview=true", content=encode(_create_body(_model_rid(env))),
                      headers=_headers(env))
    assert r.status_code == 200, r.text
    rid: str = r.json()["rid"]
    return rid


def _foundry_shaped(r: Any, what: str) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:500])
    if r.status_code < 400:
        return
    body = r.json()
    assert set(body) == {"errorCode", "errorName", "errorInstanceId", "parameters"}, (what, body)
    assert body["errorCode"] in ("INVALID_ARGUMENT", "NOT_FOUND", "CONFLICT",
                                 "PERMISSION_DENIED", "UNAUTHORIZED",
                                 "REQUEST_ENTITY_TOO_LARGE"), (what, body)
    assert isinstance(body["parameters"], dict), (what, body)


def _routes(env: DialectApp) -> list[tuple[str, str, dict[str, Any]]]:
    live = _live_rid(env)
    return [("POST", "/api/v2/models", MODEL),
            ("POST", f"{LIVE}?preview=true", _create_body(_model_rid(env), "fuzz")),
            ("PUT", f"{LIVE}/{live}?preview=true", {"runtimeConfiguration": CONFIG}),
            ("POST", f"{LIVE}/{live}/transformJson?preview=true", TRANSFORM)]


@pytest.mark.parametrize("route", range(4))
def test_mutated_bodies_get_foundry_errors_never_a_5xx(env: DialectApp, route: int) -> None:
    method, url, base = _routes(env)[route]
    refused = drive(env.http, method, url, base, _foundry_shaped, headers=_headers(env),
                    count=COUNT)
    assert refused > 0  # the mutations reach the validation
    r = env.http.request(method, url, content=encode(base), headers=_headers(env))
    assert r.status_code < 300 or r.status_code == 409, r.text  # the unmutated body is good


@pytest.mark.parametrize("route", range(4))
def test_malformed_raw_bodies_get_foundry_errors(env: DialectApp, route: int) -> None:
    method, url, _ = _routes(env)[route]
    drive_raw(env.http, method, url, _foundry_shaped, headers=_headers(env))


def test_a_huge_model_name_is_refused(env: DialectApp) -> None:
    r = env.http.post("/api/v2/models", content=encode({**MODEL, "name": "n" * 100_000}),
                      headers=_headers(env))
    assert r.status_code == 400, r.text
    assert r.json()["parameters"]["violations"][0]["field"] == "name"
