"""The official E2E Networks TIR SDK (e2enetworks 1.4.9) against a real `berth serve`.

The SDK reads its host once, at import, from E2E_TIR_API_HOST into module constants
(`BASE_GPU_URL`, `ASYNC_STATUS_FETCH_URL`); the fixture points those at the test server
with monkeypatch. The SDK's methods themselves run unchanged; its `make_request` opens a
`requests.Session` per call and never closes it, so the fixture closes them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from e2enetworks.cloud import tir
from e2enetworks.cloud.tir import client as sdk_client
from e2enetworks.cloud.tir import skus as sdk_skus
from e2enetworks.cloud.tir.helpers import cpu_plan_short_code
from e2enetworks.cloud.tir.inference import endpoints as sdk_endpoints

from tests.e2e.harness import BerthServer, wait_for

TEAM, PROJECT = 11, 22
BASE = f"/myaccount/api/v1/gpu/teams/{TEAM}/projects/{PROJECT}/serving/inference"


@pytest.fixture
def sdk(server: BerthServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tir.EndPoints]:
    gpu = f"{server.url}/myaccount/api/v1/gpu/"
    monkeypatch.setattr(sdk_endpoints, "BASE_GPU_URL", gpu)
    monkeypatch.setattr(sdk_skus, "BASE_GPU_URL", gpu)
    monkeypatch.setattr(sdk_endpoints, "ASYNC_STATUS_FETCH_URL", gpu + (
        "teams/{team_id}/projects/{project_id}/serving/inference/{endpoint_id}/async_status/"))
    opened: list[requests.Session] = []

    class Tracked(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

    monkeypatch.setattr(sdk_client, "Session", Tracked)
    tir.init(api_key="ignored-api-key", access_token=server.token, team=str(TEAM),
             project=str(PROJECT), location="Delhi")
    yield tir.EndPoints()
    for session in opened:
        session.close()


def _status(sdk: tir.EndPoints, endpoint_id: int) -> str:
    ok, data = sdk.get(endpoint_id)
    assert ok, data
    return str(data.status)


def _plan(sdk: tir.EndPoints) -> str:
    skus = sdk.list_plans("custom")
    assert skus["CPU"], skus
    code = cpu_plan_short_code(skus["CPU"][0])
    assert isinstance(code, str), code
    return code


def test_sdk_lifecycle(sdk: tir.EndPoints, server: BerthServer) -> None:
    ok, created = sdk.create(
        "tir-echo", "custom", _plan(sdk), container_name="catalog/echo",
        env_variables=[{"key": "MODE", "value": "a"}], replicas=1)
    assert ok, created
    eid = created.id
    assert isinstance(eid, int) and created.name == "tir-echo"
    wait_for(lambda: _status(sdk, eid) == "Running", 60, what="Running")
    ok, got = sdk.get(eid)
    assert got.custom_endpoint_details.container.container_name == "catalog/echo"
    assert got.custom_endpoint_details.resource_details.env_variables[0].value == "a"
    with server.client() as http:
        native = http.get(f"/v1/projects/tir-{TEAM}-{PROJECT}/deployments/tir-echo").json()
    assert native["envs"] == {"MODE": "a"}
    ok, items = sdk.list()
    assert ok and [i.id for i in items] == [eid]

    ok, _ = sdk.stop(eid)
    assert ok
    wait_for(lambda: _status(sdk, eid) == "Stopped", 30, what="Stopped")
    ok, _ = sdk.start(eid)
    assert ok
    wait_for(lambda: _status(sdk, eid) == "Running", 30, what="Running again")
    ok, _ = sdk.restart(eid)
    assert ok
    wait_for(lambda: _status(sdk, eid) == "Running", 60, what="Running after restart")

    ok, replicas = sdk.list_replicas(eid)
    assert ok and replicas
    ok, _ = sdk.restart_replica(replicas[0].pod_name, eid)
    assert ok
    ok, logs = sdk.logs(eid)
    assert ok and isinstance(logs, list)

    ok, _ = sdk.manage_replica_count(2, eid)  # action disable_auto_scale
    assert ok
    wait_for(lambda: sdk.get(eid)[1].ready_replicas == 2, 60, what="2 ready replicas")
    _delete(sdk, eid)


def test_sdk_auto_scale_and_errors(sdk: tir.EndPoints, server: BerthServer) -> None:
    ok, created = sdk.create("tir-scaled", "custom", _plan(sdk), container_name="catalog/echo",
                             is_auto_scale_enabled=True, metric="cpu", value=70,
                             min_replicas=1, max_replicas=3)
    assert ok, created
    eid = created.id
    assert created.is_auto_scale_enabled and created.auto_scale_policy.max_replicas == 3
    assert created.auto_scale_policy.rules[0].metric == "cpu"
    # Upscaled while it may still be starting: a change made mid-tick is never undone.
    assert sdk.upscale_replica(eid) == "Replica upscaled successfully"
    ok, got = sdk.get(eid)
    assert got.auto_scale_policy.min_replicas == 2
    wait_for(lambda: sdk.get(eid)[1].ready_replicas == 2, 60, what="2 ready replicas")
    assert sdk.get(eid)[1].auto_scale_policy.min_replicas == 2  # still, after the ticks
    ok, missing = sdk.get(9999)
    assert not ok and missing.status_code == 404 and "errors" in missing.json()
    ok, bad = sdk.create("x", "custom", _plan(sdk), container_name="catalog/echo")
    assert not ok and bad.status_code == 400 and "name" in bad.json()["errors"]
    _delete(sdk, eid)


def _delete(sdk: tir.EndPoints, eid: int) -> None:
    ok, _ = sdk.delete(eid)
    assert ok
    ok, gone = sdk.get(eid)
    assert not ok and gone.status_code == 404


def _put(http: httpx.Client, eid: int, body: dict[str, Any]) -> dict[str, Any]:
    r = http.put(f"{BASE}/{eid}/", json=body,
                 params={"project_id": PROJECT, "active_iam": 5, "location": "Delhi"})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["code"] == 200 and answer["message"]
    return answer


def test_seed_put_actions(server: BerthServer) -> None:
    """Seed 000's PUT bodies, field for field, sent with httpx."""
    with server.client() as http:
        cpu = http.get("/myaccount/api/v1/gpu/gpu_service/sku/",
                       params={"service": "inference_service", "framework": "vllm"})
        sku = cpu.json()["data"]["CPU"][0]
        body = {"name": "seed-echo", "framework": "custom", "sku_id": sku["sku_id"],
                "replica": 1, "custom_endpoint_details": {
                    "container": {"container_name": "catalog/echo"},
                    "resource_details": {"env_variables": []}},
                "detailed_info": {"commands": "", "args": ""}}
        r = http.post(f"{BASE}/", json=body)
        assert r.status_code == 200, r.text
        eid = r.json()["data"]["id"]
        patched = _put(http, eid, {
            "name": "seed-echo", "path": "", "model_id": None, "committed_replicas": 0,
            "replicas": 1, "framework": "vllm", "is_auto_scale_enabled": False,
            "model_load_integration_id": None, "dataset_id": None, "dataset_path": "",
            "cluster_type": "", "storage_type": "disk", "sfs_path": "", "disk_path": "",
            "sku_id": sku["sku_id"], "sku_item_price_id": sku["plans"][0]["sku_item_price_id"],
            "action": "patch"})["data"]
        assert patched["replica"] == 1 and patched["framework"] == "vllm"
        scaled = _put(http, eid, {"action": "update_auto_scale", "auto_scale_policy": {
            "min_replicas": 1, "max_replicas": 4, "rules": [
                {"metric": "concurrency", "condition_value": 10},
                {"metric": "requestRate", "condition_value": 50},
                {"metric": "custom", "condition_value": 5,
                 "custom_metric_name": "vllm:num_requests_waiting"}]}})["data"]
        assert [r["metric"] for r in scaled["auto_scale_policy"]["rules"]] == [
            "concurrency", "requestRate", "custom"]
        native = http.get(f"/v1/projects/tir-{TEAM}-{PROJECT}/deployments/seed-echo").json()
        triggers = native["containers"][0]["scale"]["triggers"]
        assert triggers["concurrency"] == {"target": 10.0}
        assert triggers["custom"][0]["metric_name"] == "vllm:num_requests_waiting"
        bad = http.put(f"{BASE}/{eid}/", json={"action": "update_auto_scale",
                                               "auto_scale_policy": {
            "min_replicas": 1, "max_replicas": 2, "rules": [{"metric": "custom",
                                                              "condition_value": 5}]}})
        assert bad.status_code == 400 and "custom_metric_name" in bad.text
        dataset = http.post(f"/myaccount/api/v1/gpu/teams/{TEAM}/projects/{PROJECT}/datasets/",
                            json={"name": "seed-results", "storage_type": "managed"})
        assert dataset.status_code == 200, dataset.text
        number = dataset.json()["data"]["id"]
        asynced = _put(http, eid, {
            "action": "update_async_configuration", "async_enabled": True,
            "async_concurrent_workers": 2, "async_dataset_id": number,
            "async_destination_type": "dataset",
            "async_target_routes": [{"route_name": "predict", "route_value": "/predict"}]})
        assert asynced["data"]["async_enabled"] is True
        assert asynced["data"]["async_dataset_id"] == number
        native = http.get(f"/v1/projects/tir-{TEAM}-{PROJECT}/deployments/seed-echo").json()
        assert native["async"]["workers"] == 2 and native["async"]["dataset"] == "seed-results"
        unknown_ds = http.put(f"{BASE}/{eid}/", json={
            "action": "update_async_configuration", "async_enabled": True,
            "async_concurrent_workers": 2, "async_dataset_id": "ds-1"})
        assert unknown_ds.status_code == 400 and unknown_ds.json()["errors"]["async_dataset_id"]
        for action in ("stop", "start", "restart"):
            _put(http, eid, {"action": action})
        status = http.get(f"{BASE}/{eid}/async_status/", params={"request_id": "r1"})
        assert status.status_code == 200 and status.json()["data"] == []
        unknown = http.put(f"{BASE}/{eid}/", json={"action": "explode"})
        assert unknown.status_code == 400 and unknown.json()["errors"]["action"]
        assert http.delete(f"{BASE}/{eid}/").status_code == 200
