"""Each dialect's autoscaling fields drive the one autoscaler of a real `berth serve`:
catalog/echo (200 ms a request), load from 8 clients through the gateway scales it up with
no failed request, and the autoscaler view shows the trigger and target the dialect mapped.

TIR's `update_auto_scale` is sent as the e2enetworks SDK sends it (a raw PUT: the SDK's
upscale/downscale only move min_replicas by one); Gcore's through its SDK's
`deployments.update`. TIR and Scale have no polling-interval field, so the test sets the
native `polling_interval` to 1 s after the dialect call (the dialect's own fields stay)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gcore import Gcore

from tests.e2e.harness import BerthServer, wait_for
from tests.e2e.test_autoscaling import Load

TIR = "/myaccount/api/v1/gpu/teams/11/projects/22/serving/inference"
TIR_PROJECT = "tir-11-22"
GCORE_PROJECT = 7
DELAY = {"ECHO_DELAY_MS": "200"}


@pytest.fixture
def admin(server: BerthServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def view(http: httpx.Client, project: str, name: str) -> dict[str, Any]:
    r = http.get(f"/v1/projects/{project}/deployments/{name}/autoscaler")
    assert r.status_code == 200, r.text
    return dict(r.json()["regions"][0])


def ready(http: httpx.Client, project: str, name: str) -> int:
    d = http.get(f"/v1/projects/{project}/deployments/{name}").json()
    return int(d["containers"][0]["deploy_status"]["ready"])


def poll_every_second(http: httpx.Client, project: str, name: str) -> None:
    """Set the native polling interval, keeping the rest of the scale the dialect wrote."""
    spec = http.get(f"/v1/projects/{project}/deployments/{name}").json()
    containers = [{"region": c["region"], "scale": c["scale"] | {"polling_interval": 1}}
                  for c in spec["containers"]]
    r = http.patch(f"/v1/projects/{project}/deployments/{name}",
                   json={"containers": containers})
    assert r.status_code == 202, r.text


def scaled_under_load(http: httpx.Client, url: str, project: str, name: str,
                      replicas: int) -> None:
    with Load(url, 8) as load:
        wait_for(lambda: ready(http, project, name) >= replicas, 60, 0.25,
                 f"{replicas} ready replicas of {name}")
    assert load.failed == [], load.failed[:5]
    assert load.ok > 0


def test_tir_update_auto_scale_scales_on_concurrency(admin: httpx.Client,
                                                     server: BerthServer) -> None:
    created = admin.post(f"{TIR}/", json={
        "name": "tir-auto", "framework": "custom", "sku_id": 1, "replica": 1,
        "is_auto_scale_enabled": False,
        "custom_endpoint_details": {
            "container": {"container_name": "catalog/echo", "container_type": "public"},
            "resource_details": {"env_variables": [
                {"key": k, "value": v} for k, v in DELAY.items()]}}})
    assert created.status_code == 200, created.text
    eid = created.json()["data"]["id"]
    policy = {"min_replicas": 1, "max_replicas": 3, "stability_period": "5", "rules": [
        {"metric": "concurrency", "condition_type": "limit", "value": 2, "watch_period": "5"}]}
    r = admin.put(f"{TIR}/{eid}/", json={"action": "update_auto_scale",
                                          "auto_scale_policy": policy})
    assert r.status_code == 200, r.text
    shown = admin.get(f"{TIR}/{eid}/").json()["data"]["auto_scale_policy"]
    assert shown["rules"][0]["watch_period"] == "5" and shown["stability_period"] == "5"
    poll_every_second(admin, TIR_PROJECT, "tir-auto")
    scaled_under_load(admin, f"{server.gateway}/{TIR_PROJECT}/tir-auto/predict", TIR_PROJECT,
                      "tir-auto", 3)
    v = view(admin, TIR_PROJECT, "tir-auto")
    assert (v["min"], v["max"]) == (1, 3)
    assert v["metrics"]["concurrency"]["target"] == 2


def test_gcore_http_trigger_scales_on_request_rate(admin: httpx.Client,
                                                   server: BerthServer) -> None:
    sdk = Gcore(api_key=server.token, base_url=server.url, cloud_project_id=GCORE_PROJECT,
                cloud_region_id=1, polling_interval_seconds=1, max_retries=0,
                _strict_response_validation=True)
    try:
        deployments = sdk.cloud.inference.deployments
        flavor = sdk.cloud.inference.flavors.list().results[0].name
        deployments.create_and_poll(
            name="gcore-auto", image="catalog/echo", listening_port=8080, flavor_name=flavor,
            containers=[{"region_id": 1, "scale": {"min": 1, "max": 1}}], envs=DELAY,
            polling_timeout_seconds=60)
        # 8 clients at 200 ms each are ~40 requests/s: a target of 2/s per replica asks
        # for max.
        deployments.update_and_poll(
            deployment_name="gcore-auto", polling_timeout_seconds=60,
            containers=[{"region_id": 1, "scale": {
                "min": 1, "max": 3, "cooldown_period": 5, "polling_interval": 1,
                "triggers": {"http": {"rate": 2, "window": 5}}}}])
        scale = deployments.get("gcore-auto").containers[0].scale
        assert scale.triggers.http is not None and scale.triggers.http.rate == 2
        assert (scale.min, scale.max, scale.cooldown_period) == (1, 3, 5)
    finally:
        sdk.close()
    scaled_under_load(admin, f"{server.gateway}/{GCORE_PROJECT}/gcore-auto/predict",
                      str(GCORE_PROJECT), "gcore-auto", 3)
    v = view(admin, str(GCORE_PROJECT), "gcore-auto")
    assert v["metrics"]["http"]["target"] == 2


def test_scale_per_worker_is_the_concurrency_target(admin: httpx.Client,
                                                    server: BerthServer) -> None:
    headers = {"x-api-key": server.token, "x-selected-account-id": "acct"}
    r = admin.post("/v5/models", headers=headers, json={
        "name": "scale-auto", "vendor_configuration": {
            "model_image": {"repository": "catalog/echo", "env_vars": DELAY},
            "model_infra": {"min_workers": 1, "max_workers": 3, "per_worker": 2}}})
    assert r.status_code == 200, r.text
    (name,) = [d["name"] for d in admin.get("/v1/projects/acct/deployments").json()["items"]]
    poll_every_second(admin, "acct", name)
    scaled_under_load(admin, f"{server.gateway}/acct/{name}/predict", "acct", name, 3)
    v = view(admin, "acct", name)
    assert (v["min"], v["max"]) == (1, 3)
    assert v["metrics"]["concurrency"]["target"] == 2
