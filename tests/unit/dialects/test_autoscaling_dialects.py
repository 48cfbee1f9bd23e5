"""Each dialect's autoscaling fields become the one ScalePolicy the autoscaler reads
(`policy_for` over the stored spec), read back as written; what Berth cannot serve is the
dialect's 400 naming the field, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind, policy_for
from berth.domain.records import Deployment
from tests.unit.dialects.dialect_app import DialectApp
from tests.unit.dialects.test_gcore_routes import PROJECT as GCORE_PROJECT
from tests.unit.dialects.test_gcore_routes import App
from tests.unit.dialects.test_gcore_routes import body as gcore_body
from tests.unit.dialects.test_tir_shapes import sdk_body

TIR = "/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference"
GCORE = f"/cloud/v3/inference/{GCORE_PROJECT}/deployments"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path)
    with a.http:
        yield a
    a.store.close()


def policy(d: Deployment) -> ScalePolicy:
    return policy_for(d.spec, d.spec.containers[0])


# ---- TIR ---------------------------------------------------------------------------------

# What EndPoints.create(..., is_auto_scale_enabled=True, metric="concurrency", value=2) sends.
SDK_POLICY = {"min_replicas": 1, "max_replicas": 4, "stability_period": "300", "rules": [
    {"metric": "concurrency", "condition_type": "limit", "value": 2, "watch_period": "60"}]}


def tir_created(app: App, policy_body: dict[str, Any]) -> int:
    answer = app.http.post(f"{TIR}/", json=sdk_body(is_auto_scale_enabled=True,
                                                    auto_scale_policy=policy_body))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["id"])


def test_tir_sdk_policy_drives_the_autoscaler_and_reads_back_as_written(app: App) -> None:
    number = tir_created(app, SDK_POLICY)
    p = policy(app.deployments.get("tir-1-2", "my-echo"))
    assert (p.min, p.max, p.cooldown, p.stable_window) == (1, 4, 300.0, 60.0)
    assert p.triggers == (Trigger(TriggerKind.CONCURRENCY, 2.0),)
    shown = app.http.get(f"{TIR}/{number}/").json()["data"]["auto_scale_policy"]
    assert shown["rules"] == [{"metric": "concurrency", "condition_type": "limit",
                               "condition_value": 2, "value": 2, "custom_metric_name": None,
                               "watch_period": "60"}]
    assert (shown["min_replicas"], shown["max_replicas"], shown["stability_period"],
            shown["initial_cooldown_period"]) == (1, 4, "300", "0")
    # The SDK's upscale_replica: the policy as read back, min_replicas + 1.
    again = {"action": "update_auto_scale", "auto_scale_policy": {
        "min_replicas": 2, "max_replicas": 4, "rules": [shown["rules"][0]],
        "stability_period": shown["stability_period"],
        "initial_cooldown_period": shown["initial_cooldown_period"]}}
    assert app.http.put(f"{TIR}/{number}/", json=again).status_code == 200
    p = policy(app.deployments.get("tir-1-2", "my-echo"))
    assert (p.min, p.max, p.cooldown, p.stable_window) == (2, 4, 300.0, 60.0)
    assert p.triggers == (Trigger(TriggerKind.CONCURRENCY, 2.0),)


def test_tir_rules_without_a_watch_period_keep_the_default_window(app: App) -> None:
    number = tir_created(app, {"min_replicas": 1, "max_replicas": 3, "stability_period": 5,
                               "rules": [{"metric": "requestRate", "condition_value": 4}]})
    p = policy(app.deployments.get("tir-1-2", "my-echo"))
    assert (p.cooldown, p.stable_window) == (5.0, 60.0)  # 5 s, at least two 30 s polls
    assert p.triggers == (Trigger(TriggerKind.REQUEST_RATE, 4.0),)
    rule = app.http.get(f"{TIR}/{number}/").json()["data"]["auto_scale_policy"]["rules"][0]
    assert (rule["metric"], rule["value"], rule["watch_period"]) == ("requestRate", 4, None)


@pytest.mark.parametrize(("change", "field"), [
    ({"rules": [{"metric": "concurrency", "value": 2, "condition_type": "percentage"}]},
     "auto_scale_policy.rules[0].condition_type"),
    ({"rules": [{"metric": "concurrency", "value": 2, "watch_period": "0"}]},
     "auto_scale_policy.rules[0].watch_period"),
    ({"rules": [{"metric": "concurrency", "value": 2, "watch_period": "60"},
                {"metric": "cpu", "value": 80},
                {"metric": "memory", "value": 80, "watch_period": 30}]},
     "auto_scale_policy.rules[2].watch_period"),
    ({"initial_cooldown_period": "30"}, "auto_scale_policy.initial_cooldown_period"),
    ({"stability_period": -1}, "auto_scale_policy.stability_period"),
])
def test_tir_settings_berth_cannot_serve_are_a_400_naming_the_field(
        app: App, change: dict[str, Any], field: str) -> None:
    number = tir_created(app, SDK_POLICY)
    before = app.native("tir-1-2", "my-echo")
    answer = app.http.put(f"{TIR}/{number}/", json={
        "action": "update_auto_scale", "auto_scale_policy": SDK_POLICY | change})
    assert answer.status_code == 400, answer.text
    assert list(answer.json()["errors"]) == [field]
    assert app.native("tir-1-2", "my-echo") == before


def test_tir_disable_auto_scale_fixes_the_count(app: App) -> None:
    number = tir_created(app, SDK_POLICY)
    answer = app.http.put(f"{TIR}/{number}/", json={"action": "disable_auto_scale",
                                                    "replicas": 3})
    assert answer.status_code == 200, answer.text
    p = policy(app.deployments.get("tir-1-2", "my-echo"))
    assert (p.min, p.max, p.fixed, p.triggers) == (3, 3, True, ())
    data = app.http.get(f"{TIR}/{number}/").json()["data"]
    assert (data["is_auto_scale_enabled"], data["auto_scale_policy"]) == (False, None)


# ---- Gcore -------------------------------------------------------------------------------

GCORE_TRIGGERS: dict[str, Any] = {
    "cpu": {"threshold": 80}, "memory": {"threshold": 70}, "gpu_memory": {"threshold": 60},
    "gpu_utilization": {"threshold": 50}, "http": {"rate": 3, "window": 10}}
GCORE_SCALE: dict[str, Any] = {"min": 1, "max": 4, "cooldown_period": 5, "polling_interval": 2,
                               "triggers": GCORE_TRIGGERS}


def test_gcore_every_trigger_drives_the_autoscaler_and_reads_back(app: App) -> None:
    body = gcore_body(containers=[{"region_id": 1, "scale": GCORE_SCALE}], timeout=30)
    assert app.http.post(GCORE, json=body).status_code == 200
    p = policy(app.deployments.get(str(GCORE_PROJECT), "my-echo"))
    assert (p.min, p.max, p.cooldown, p.polling_interval, p.idle_timeout) == (
        1, 4, 5.0, 2.0, 30.0)
    assert {(t.kind, t.target, t.window) for t in p.triggers} == {
        (TriggerKind.CPU, 80.0, None), (TriggerKind.MEMORY, 70.0, None),
        (TriggerKind.GPU_MEMORY, 60.0, None), (TriggerKind.GPU_UTILIZATION, 50.0, None),
        (TriggerKind.HTTP, 3.0, 10.0)}
    shown = app.http.get(f"{GCORE}/my-echo").json()["containers"][0]["scale"]
    assert shown == GCORE_SCALE | {"triggers": GCORE_TRIGGERS | {"sqs": None}}


# ---- Scale and Foundry -------------------------------------------------------------------

@pytest.fixture
def dialects(tmp_path: Path) -> Iterator[DialectApp]:
    env = DialectApp(tmp_path)
    yield env
    env.close()


def test_scale_per_worker_is_the_concurrency_target(dialects: DialectApp) -> None:
    headers = {"x-api-key": dialects.token, "x-selected-account-id": "acct"}
    infra = {"min_workers": 1, "max_workers": 3, "per_worker": 2}
    answer = dialects.http.post("/v5/models", headers=headers, content=json.dumps({
        "name": "echo-model", "vendor_configuration": {
            "model_image": {"repository": "catalog/echo"}, "model_infra": infra}}))
    assert answer.status_code == 200, answer.text
    (d,) = dialects.deployments("acct")
    assert d.spec.per_worker == 2
    p = policy(d)
    assert (p.min, p.max, p.triggers) == (1, 3, (Trigger(TriggerKind.CONCURRENCY, 2.0),))
    shown = dialects.http.get(f"/v5/models/{answer.json()['id']}", headers=headers).json()
    assert {k: shown["vendor_configuration"]["model_infra"][k] for k in infra} == infra


def test_foundry_scaling_configuration_drives_the_autoscaler(dialects: DialectApp) -> None:
    headers = {"authorization": f"Bearer {dialects.token}"}
    model = dialects.http.post("/api/v2/models", headers=headers, json={
        "name": "m", "parentFolderRid": "ri.compass.main.folder.f"}).json()["rid"]
    scaling = {"scaleUpLoadThreshold": 0.5, "scaleUpDelay": {"value": 2, "unit": "SECONDS"},
               "scaleDownDelay": {"value": 1, "unit": "MINUTES"}}
    config = {"minReplicas": 1, "maxReplicas": 3, "threadCount": 4,
              "scalingConfiguration": scaling,
              "environmentVariables": {"BERTH_IMAGE": "catalog/echo"}}
    answer = dialects.http.post("/api/v2/models/liveDeployments?preview=true", headers=headers,
                                json={"runtimeConfiguration": config,
                                      "deploymentType": {"modelRid": model, "branch": "b"}})
    assert answer.status_code == 200, answer.text
    (d,) = dialects.deployments("foundry")
    p = policy(d)
    assert (p.min, p.max, p.cooldown, p.scale_up_delay) == (1, 3, 60.0, 2.0)
    assert p.triggers == (Trigger(TriggerKind.CONCURRENCY, 2.0),)  # 0.5 x 4 threads
    rid = answer.json()["rid"]
    shown = dialects.http.get(f"/api/v2/models/liveDeployments/{rid}?preview=true",
                              headers=headers).json()["runtimeConfiguration"]
    assert shown["scalingConfiguration"] == scaling
    assert (shown["minReplicas"], shown["maxReplicas"]) == (1, 3)
