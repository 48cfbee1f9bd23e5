"""TIR's create and PUT (action) routes, in-process, driven with mutated bodies
(tests/fuzz.py): no answer is a 5xx, and every 4xx is in TIR's envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz import drive, drive_raw
from tests.unit.dialects.test_gcore_routes import App
from tests.unit.dialects.test_tir_probes import sdk_probe
from tests.unit.dialects.test_tir_shapes import sdk_body

BASE = "/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference"
DATASETS = "/myaccount/api/v1/gpu/teams/1/projects/2/datasets/"
COUNT = 120
JSON = {"Content-Type": "application/json"}
ADVANCE = {"image_pull_policy": "Always", "is_readiness_probe_enabled": "true",
           "is_liveness_probe_enabled": False, "readiness_probe": sdk_probe(path="/healthz"),
           "liveness_probe": sdk_probe(protocol="exec", commands="true")}
POLICY = {"min_replicas": 1, "max_replicas": 3, "stability_period": "300", "rules": [
    {"metric": "concurrency", "condition_type": "limit", "value": 4, "watch_period": "60"},
    {"metric": "custom", "condition_value": 2, "custom_metric_name": "q"}]}
FULL = sdk_body(name="fuzz-new", sku_item_price_id=1, committed_replicas=0, path="",
                storage_type="disk", cluster_type="", auto_scale_policy=POLICY)
FULL["custom_endpoint_details"]["container"]["advance_config"] = ADVANCE


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    a = App(tmp_path_factory.mktemp("tir-fuzz"))
    with a.http:
        assert a.http.post(f"{BASE}/", json=sdk_body(name="fuzz-target")).status_code == 200
        assert a.http.post(DATASETS, json={"name": "fuzz-results"}).json()["data"]["id"] == 1
        yield a
    a.store.close()


def check(answer: Any, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        out = answer.json()
        assert set(out) == {"code", "data", "message", "errors"}, f"{what}: {out}"
        assert out["code"] == answer.status_code, what


ACTIONS: list[dict[str, Any]] = [
    FULL | {"action": "patch", "is_auto_scale_enabled": True},
    {"action": "update_auto_scale", "auto_scale_policy": POLICY},
    {"action": "disable_auto_scale", "replicas": 2},
    {"action": "update_async_configuration", "async_enabled": True,
     "async_concurrent_workers": 2, "async_dataset_id": 1, "async_destination_type":
     "dataset", "async_target_routes": [{"route_name": "p", "route_value": "/predict"}]},
    {"action": "stop"},
]


def test_mutated_create_bodies_get_no_5xx(app: App) -> None:
    drive(app.http, "POST", f"{BASE}/", FULL, check, headers=JSON, count=COUNT)


@pytest.mark.parametrize("base", ACTIONS, ids=[str(a["action"]) for a in ACTIONS])
def test_mutated_action_bodies_get_no_5xx(app: App, base: dict[str, Any]) -> None:
    drive(app.http, "PUT", f"{BASE}/1/", base, check, headers=JSON, count=COUNT)


def test_mutated_dataset_bodies_get_no_5xx(app: App) -> None:
    body = {"storage_type": "managed", "name": "fuzz-made", "bucket_name": None,
            "encryption_enable": False, "encryption_type": None, "description": "d"}
    drive(app.http, "POST", DATASETS, body, check, headers=JSON, count=COUNT)


@pytest.mark.parametrize("method, path", [("POST", f"{BASE}/"), ("PUT", f"{BASE}/1/"),
                                          ("POST", DATASETS)])
def test_malformed_raw_bodies_get_no_5xx(app: App, method: str, path: str) -> None:
    drive_raw(app.http, method, path, check, headers=JSON)
