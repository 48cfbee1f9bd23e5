"""TIR <-> Berth translation, without a server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from e2enetworks.cloud.tir.helpers import (
    cpu_plan_short_code,
    gpu_plan_short_code,
    plan_to_sku_id,
)

from berth.api.dialects.tir import models, requests, shapes
from berth.domain.errors import SpecInvalid
from berth.domain.platform import Gpu, PlatformFacts, Region, machine_flavors
from berth.domain.records import ContainerStatus, Deployment
from berth.domain.spec import DeploymentSpec
from berth.domain.status import DeploymentStatus, DesiredState
from berth.domain.validation import validate

GPUS = (Gpu(0, "NVIDIA H100 80GB HBM3", 81559, "9.0"),)
FACTS = PlatformFacts(regions={"local": Region("local", "process")}, cpus=8,
                      memory_bytes=32 * 2**30, gpus=GPUS, catalog=frozenset({"catalog/echo"}),
                      flavors=machine_flavors(8, 32 * 2**30, GPUS))


def b64(value: Any) -> str:
    return base64.b64encode(str(value).encode()).decode()


def create(body: Any, facts: PlatformFacts) -> dict[str, Any]:
    """A create body, parsed as the route parses it, as native spec data."""
    return requests.create_to_native(models.parse(models.EndpointCreate, body), facts)


def patch(body: Any, spec: DeploymentSpec, facts: PlatformFacts) -> dict[str, Any]:
    return requests.patch_to_native(models.parse(models.EndpointAction, body), spec, facts)


def action(body: Any) -> models.EndpointAction:
    return models.parse(models.EndpointAction, body)


def sdk_body(**extra: Any) -> dict[str, Any]:
    """What `EndPoints.create(framework='custom', ...)` sends."""
    body = {"name": "my-echo", "framework": "custom", "sku_id": 1, "replica": 2,
            "custom_endpoint_details": {
                "container": {"container_name": "catalog/echo", "container_type": "public"},
                "resource_details": {"disk_size": 50, "mount_path": "",
                                     "env_variables": [{"key": "MODE", "value": "a"}]}},
            "detailed_info": {"commands": b64(["python", "serve.py"]),
                              "args": b64(["--port", "8080"])},
            "is_auto_scale_enabled": False}
    return body | extra


def test_skus_make_sdk_plan_names_that_resolve() -> None:
    skus = shapes.skus(FACTS)
    assert skus["CPU"] and skus["GPU"]
    gpu = skus["GPU"][0]
    assert gpu["sku_type"] == "H100" and gpu["gpu"] == 1 and not gpu["is_free"]
    assert plan_to_sku_id(skus, cpu_plan_short_code(skus["CPU"][1])) == skus["CPU"][1]["sku_id"]
    assert plan_to_sku_id(skus, gpu_plan_short_code(gpu)) == gpu["sku_id"]
    assert requests.flavor_name(gpu["sku_id"], FACTS) == FACTS.flavors[gpu["sku_id"] - 1].name


def test_create_body_to_native() -> None:
    native = create(sdk_body(), FACTS)
    assert native["image"] == "catalog/echo" and native["listening_port"] == 8080
    assert native["command"] == ["python", "serve.py", "--port", "8080"]
    assert native["envs"] == {"MODE": "a"}
    assert native["flavor"] == FACTS.flavors[0].name
    assert native["containers"] == [{"region": "local",
                                     "scale": {"min": 2, "max": 2, "triggers": {}}}]
    validate(native, FACTS)


def test_commands_are_parsed_never_run() -> None:
    assert requests.decode_list(b64([]), "x") == []
    with pytest.raises(SpecInvalid) as bad:
        requests.decode_list(b64("__import__('os').system('true')"), "detailed_info.commands")
    assert bad.value.violations[0].field == "detailed_info.commands"
    with pytest.raises(SpecInvalid):
        requests.decode_list("not base64!", "detailed_info.args")


def test_auto_scale_rules_map_to_triggers_and_back() -> None:
    policy = {"min_replicas": 0, "max_replicas": 5, "stability_period": "120", "rules": [
        {"metric": "concurrency", "condition_value": 10},
        {"metric": "requestRate", "condition_value": 2.5},
        {"metric": "custom", "condition_value": 4, "custom_metric_name": "queue_depth"},
        {"metric": "cpu", "condition_type": "limit", "value": 70}]}
    native = requests.scale(action({"auto_scale_policy": policy}).auto_scale_policy,
                            autoscale=True)
    scale = native["containers"][0]["scale"]
    assert scale["min"] == 0 and scale["max"] == 5 and scale["cooldown_period"] == 120
    assert scale["triggers"] == {"concurrency": {"target": 10.0},
                                 "request_rate": {"target": 2.5},
                                 "custom": [{"metric_name": "queue_depth", "target": 4.0}],
                                 "cpu": {"threshold": 70}}
    spec = validate({"name": "scaled", "image": "catalog/echo", **native}, FACTS)
    rules = shapes.rules(spec.containers[0].scale)
    assert [(r["metric"], r["condition_value"], r["custom_metric_name"]) for r in rules] == [
        ("cpu", 70, None), ("concurrency", 10, None), ("requestRate", 2.5, None),
        ("custom", 4, "queue_depth")]


@pytest.mark.parametrize("rule, field", [
    ({"metric": "custom", "condition_value": 3}, "auto_scale_policy.rules[0].custom_metric_name"),
    ({"metric": "gpu_magic", "condition_value": 3}, "auto_scale_policy.rules[0].metric"),
    ({"metric": "concurrency", "condition_value": "lots"},
     "auto_scale_policy.rules[0].condition_value"),
])
def test_bad_rules_name_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecInvalid) as bad:
        body = action({"action": "update_auto_scale", "auto_scale_policy": {"rules": [rule]}})
        requests.scale(body.auto_scale_policy, autoscale=True)
    assert bad.value.violations[0].field == field


def test_unknown_sku_and_missing_image() -> None:
    with pytest.raises(SpecInvalid) as sku:
        create(sdk_body(sku_id=999), FACTS)
    assert sku.value.violations[0].field == "sku_id"
    with pytest.raises(SpecInvalid) as image:
        create(sdk_body(custom_endpoint_details={}), FACTS)
    assert "container_name" in image.value.violations[0].field


def test_patch_body_and_read_shape() -> None:
    spec = validate(create(sdk_body(), FACTS), FACTS)
    native = patch({"action": "patch", "replicas": 3, "sku_id": 2, "framework": "vllm"}, spec,
                   FACTS)
    assert native == {"flavor": FACTS.flavors[1].name, "containers": [
        {"region": "local", "scale": {"min": 3, "max": 3, "triggers": {}}}]}
    now = datetime(2025, 1, 1, tzinfo=UTC)
    d = Deployment(id="d1", project="tir-1-2", name=spec.name, spec=spec, generation=1,
                   desired=DesiredState.RUNNING, restart_nonce=0, created_at=now,
                   updated_at=now, status=DeploymentStatus.ACTIVE,
                   containers=[ContainerStatus("local", ready=2, total=2)])
    out = shapes.to_tir(7, d, {"framework": "custom", "async": {"async_enabled": True}},
                        FACTS, "http://gw/tir-1-2/my-echo")
    assert out["id"] == 7 and out["status"] == "Running" and out["replica"] == 2
    assert out["sku_id"] == 1 and out["async_enabled"] is False  # the spec's, not the record's
    assert out["custom_endpoint_details"]["resource_details"]["env_variables"] == [
        {"key": "MODE", "value": "a"}]
    assert shapes.berth_project(1, 2) == "tir-1-2"
    assert {shapes.STATUS[s] for s in DeploymentStatus} >= {
        "Running", "Deploying", "Stopped", "Failed"}


def test_scope_project_is_the_berth_project_a_route_acts_on() -> None:
    assert shapes.scope_project({"team": "11", "project": "22"}) == "tir-11-22"
    assert shapes.scope_project({"team": "011", "project": "022", "inference_id": "7"}) == (
        "tir-11-22")  # read as the routes read `team: int`, `project: int`
    assert shapes.scope_project({}) is None  # the SKU list
    for params, field in (({"team": "x", "project": "22"}, "team"),
                          ({"team": "11", "project": "2.5"}, "project"),
                          ({"team": "11"}, "project")):
        with pytest.raises(SpecInvalid) as err:
            shapes.scope_project(params)
        assert [v.field for v in err.value.violations] == [field]
