"""Scale GP shapes: pure translation both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.api.dialects.request_schema import parse
from berth.api.dialects.scale.models import (
    VENDOR_CONFIGURATION,
    LaunchVendorConfiguration,
    PartialLaunchVendorConfiguration,
)
from berth.api.dialects.scale.shapes import (
    async_route,
    docker_image,
    in_scale_terms,
    merge_config,
    page,
    parse_create,
    record_data,
    scale_field,
    stored_config,
    to_native,
    to_scale,
)
from berth.domain.errors import Conflict, SpecInvalid, Violation
from berth.domain.records import Deployment
from berth.domain.spec import AsyncConfig, DeploymentSpec, EndpointType
from berth.domain.status import DeploymentStatus, DesiredState

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def config(**infra: Any) -> LaunchVendorConfiguration:
    return parse(VENDOR_CONFIGURATION, {"model_image": {
        "registry": "", "repository": "catalog/echo", "tag": "", "command": [],
        "healthcheck_route": "/healthz", "readiness_delay": 7, "predict_route": "/p",
        "env_vars": {"PORT": 9000, "A": "b"}}, "model_infra": infra})


@pytest.mark.parametrize(("registry", "repository", "tag", "image"), [
    ("", "nginx", "", "docker.io/library/nginx:latest"),
    ("", "me/app", "v1", "docker.io/me/app:v1"),
    ("ghcr.io", "me/app", "", "ghcr.io/me/app:latest"),
    ("localhost:5000/", "app", "2", "localhost:5000/app:2"),
    ("", "catalog/echo", "", "catalog/echo"),
    ("", "catalog/echo", "latest", "catalog/echo"),
    ("", "catalog/echo:latest", "", "catalog/echo"),
    ("", "catalog/echo", "v2", "catalog/echo:v2"),
    ("", "me/app@sha256:abc", "", "docker.io/me/app@sha256:abc"),
])
def test_docker_image_normalises(registry: str, repository: str, tag: str, image: str) -> None:
    assert docker_image(registry, repository, tag) == image


def test_launch_config_to_native() -> None:
    native = to_native("sgp-abc", "My Model", config(
        cpus="500m", memory="1Gi", gpus=0, gpu_type="nvidia-tesla-t4", min_workers=0,
        max_workers=3, per_worker=5, endpoint_type="streaming", labels={"t": "x"}), "local")
    assert native["image"] == "catalog/echo" and native["command"] is None
    assert native["listening_port"] == 9000 and native["envs"] == {"PORT": "9000", "A": "b"}
    assert native["routes"] == {"predict": "/p", "healthcheck": "/healthz"}
    assert native["probes"]["readiness"]["http_get"] == {"path": "/healthz"}
    assert native["probes"]["readiness"]["initial_delay_seconds"] == 7
    assert native["resources"] == {"cpu": 0.5, "memory": "1Gi", "gpus": 0}  # no GPU, no type
    assert native["containers"] == [{"region": "local", "scale": {"min": 0, "max": 3}}]
    assert native["per_worker"] == 5 and native["endpoint_type"] == "streaming"
    assert native["description"] == "Scale GP model My Model"
    DeploymentSpec.model_validate(native)  # a valid native spec


def test_bad_cpus_and_port_name_the_scale_field() -> None:
    with pytest.raises(SpecInvalid) as cpu:
        parse(VENDOR_CONFIGURATION, {"model_image": {"repository": "x"},
                                     "model_infra": {"cpus": "many"}},
              prefix=("vendor_configuration",))
    assert cpu.value.violations[0].field == "vendor_configuration.model_infra.cpus"
    bad_port = parse(VENDOR_CONFIGURATION, {"model_image": {"repository": "x", "env_vars": {
        "PORT": "http"}}})
    with pytest.raises(SpecInvalid) as port:
        to_native("sgp-abc", "m", bad_port, "local")
    assert port.value.violations[0].field == "vendor_configuration.model_image.env_vars.PORT"


def test_native_fields_are_named_in_scale_terms() -> None:
    assert scale_field("image") == "vendor_configuration.model_image.repository"
    assert scale_field("envs.A") == "vendor_configuration.model_image.env_vars.A"
    assert scale_field("containers[0].scale") == "vendor_configuration.model_infra.min_workers"
    assert scale_field("resources.memory") == "vendor_configuration.model_infra.memory"
    assert scale_field("name") == "name"
    err = in_scale_terms(SpecInvalid([Violation("routes.predict", "pattern", "bad")]))
    assert err.violations[0].field == "vendor_configuration.model_image.predict_route"


def test_parse_create_rules() -> None:
    data = record_data(parse_create({"name": "m", "model_vendor": "openai",
                                     "model_type": "completion"}))
    assert data["vendor_configuration"] is None and data["model_metadata"] == {}
    cases = [({"name": ""}, "name"), ({"name": "m", "model_vendor": "llmengine"}, "model_vendor"),
             ({"name": "m", "model_type": "x"}, "model_type"),
             ({"name": "m"}, "vendor_configuration"),
             ({"name": "m", "model_vendor": "openai", "vendor_configuration": {}},
              "vendor_configuration"),
             ({"name": "m", "extra": 1}, "extra"),
             ({"name": "m", "vendor_configuration": {"model_image": {}}},
              "vendor_configuration.model_image.repository"),
             ({"name": "m", "vendor_configuration": {"model_image": {
                 "repository": "r", "bogus": 1}}}, "vendor_configuration.model_image.bogus")]
    for body, field in cases:
        with pytest.raises(SpecInvalid) as exc:
            parse_create(body)
        assert field in {v.field for v in exc.value.violations}, body


def test_partial_vendor_configuration_merges_per_key() -> None:
    old = config(max_workers=2)
    stored = stored_config(old)
    patch = PartialLaunchVendorConfiguration.model_validate(
        {"model_image": {"tag": "v2"}, "model_infra": {"max_workers": 4}})
    new = merge_config(stored, patch)
    assert new.model_image.tag == "v2" and new.model_image.predict_route == "/p"
    assert new.model_infra.max_workers == 4 and new.model_infra.min_workers is None
    assert stored["model_image"]["tag"] == ""  # not mutated
    cleared = merge_config(stored, PartialLaunchVendorConfiguration.model_validate(
        {"model_image": {"predict_route": None}}))
    assert cleared.model_image.predict_route is None  # null removes the key


def _deployment(status: DeploymentStatus, since: datetime = NOW) -> Deployment:
    spec = DeploymentSpec.model_validate(to_native("sgp-abc", "m", config(
        min_workers=1, max_workers=2), "local"))
    return Deployment(id="d", project="p", name="sgp-abc", spec=spec, generation=1,
                      desired=DesiredState.RUNNING, restart_nonce=0, created_at=NOW,
                      updated_at=NOW, status=status, status_reason="why",
                      status_since=since)


def test_to_scale_status_and_shape() -> None:
    data = {"name": "m", "model_type": "generic", "model_vendor": "launch",
            "model_metadata": {"k": 1}, "created_by_user_id": "berth",
            "vendor_configuration": stored_config(config(min_workers=1, max_workers=2))}
    out = to_scale("id-1", NOW, data, _deployment(DeploymentStatus.ACTIVE), NOW)
    assert out["status"] == "ready" and out["created_at"] == "2025-01-01T00:00:00Z"
    assert out["vendor_configuration"]["model_infra"]["max_workers"] == 2
    assert out["object"] == "model" and out["model_metadata"] == {"k": 1}
    expect = {DeploymentStatus.DEPLOYING: "deploying", DeploymentStatus.FAILED: "failed",
              DeploymentStatus.PARTIALLYDEPLOYED: "ready", DeploymentStatus.DISABLED: "failed"}
    for status, scale in expect.items():
        assert to_scale("i", NOW, data, _deployment(status), NOW)["status"] == scale
    late = to_scale("i", NOW, data, _deployment(DeploymentStatus.DEPLOYING),
                    NOW + timedelta(hours=1))
    assert late["status"] == "deployment_timeout"
    assert to_scale("i", NOW, data, None, NOW)["status"] == "failed"
    hosted = {**data, "model_vendor": "openai", "vendor_configuration": None}
    assert to_scale("i", NOW, hosted, None, NOW)["status"] == "ready"


def test_cursor_paging() -> None:
    items = [{"id": str(i)} for i in range(5)]
    assert page(items, 2, None, None) == (items[:2], True)
    assert page(items, 2, "2", None) == (items[3:5], False)
    assert page(items, 2, None, "3") == (items[1:3], True)
    assert page(items, 10, None, None) == (items, False)
    with pytest.raises(SpecInvalid):
        page(items, 2, "nope", None)


def _violations(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as exc:
        parse_create(body)
    return {v.field: v.rule for v in exc.value.violations}


def launch(**infra: Any) -> dict[str, Any]:
    return {"name": "m", "vendor_configuration": {
        "model_image": {"repository": "catalog/echo"}, "model_infra": infra}}


INFRA = "vendor_configuration.model_infra"


@pytest.mark.parametrize(("infra", "field"), [
    ({"min_workers": "a"}, f"{INFRA}.min_workers"),  # was a TypeError: a 500
    ({"max_workers": [1]}, f"{INFRA}.max_workers"),
    ({"cpus": True}, f"{INFRA}.cpus"), ({"cpus": {"a": 1}}, f"{INFRA}.cpus"),
    ({"gpus": "x"}, f"{INFRA}.gpus"), ({"gpu_type": "nvidia-rtx-9000"}, f"{INFRA}.gpu_type"),
    ({"labels": {"a": 1}}, f"{INFRA}.labels.a"), ({"memory": "lots"}, f"{INFRA}.memory"),
    ({"storage": "lots"}, f"{INFRA}.storage"), ({"endpoint_type": "batch"},
                                                f"{INFRA}.endpoint_type"),
    ({"high_priority": True}, f"{INFRA}.high_priority"),
])
def test_wrong_infra_values_name_the_field(infra: dict[str, Any], field: str) -> None:
    assert field in _violations(launch(**infra))


def test_wrong_image_and_top_level_values_name_the_field() -> None:
    image = "vendor_configuration.model_image"
    bad = launch()
    bad["vendor_configuration"]["model_image"] |= {"command": "python", "readiness_delay": "x"}
    assert {f"{image}.command", f"{image}.readiness_delay"} <= set(_violations(bad))
    assert "name" in _violations(launch() | {"name": "x" * 256})
    assert "name" in _violations(launch() | {"name": "   "})
    assert "model_metadata" in _violations(launch() | {"model_metadata": [1]})
    assert "body" in _violations([launch()])  # type: ignore[arg-type]
    assert "on_conflict" in _violations(launch() | {"on_conflict": "swap"})


def test_public_inference_sets_the_endpoint_auth() -> None:
    def auth(**infra: Any) -> Any:
        return to_native("sgp-abc", "m", config(**infra), "local").get("auth_enabled")
    assert auth(public_inference=False) is True  # private: an API key of the account
    assert auth(public_inference=True) is None and auth() is None  # open
    err = in_scale_terms(SpecInvalid([Violation("auth_enabled", "x", "bad")]))
    assert err.violations[0].field == f"{INFRA}.public_inference"


def test_high_priority_false_and_storage_are_accepted_but_storage_is_not_native() -> None:
    native = to_native("sgp-abc", "m", config(high_priority=False, storage="16Gi",
                                              memory="1Gi"), "local")
    assert "storage" not in native["resources"]
    assert stored_config(config(storage="16Gi"))["model_infra"]["storage"] == "16Gi"  # echoed


def test_a_catalog_image_with_a_tag_is_the_catalog_entry() -> None:
    tagged = parse(VENDOR_CONFIGURATION, {"model_image": {
        "registry": "", "repository": "catalog/echo", "tag": "latest"}})
    spec = DeploymentSpec.model_validate(to_native("sgp-abc", "m", tagged, "local"))
    assert spec.image == "catalog/echo"


def _spec(vc: LaunchVendorConfiguration, current: DeploymentSpec | None = None
          ) -> DeploymentSpec:
    return DeploymentSpec.model_validate(to_native("sgp-abc", "m", vc, "local", current))


def test_an_async_endpoint_turns_on_the_native_async() -> None:
    queued = _spec(config(endpoint_type="async", per_worker=4))
    assert queued.endpoint_type.value == "async"
    assert (queued.async_.enabled, queued.async_.workers) == (True, 4)
    assert _spec(config(endpoint_type="async")).async_.workers == 1  # no per_worker: 1
    assert not _spec(config(endpoint_type="sync")).async_.enabled
    assert "async" not in to_native("sgp-abc", "m", config(endpoint_type="sync"), "local")


def test_async_settings_made_natively_are_kept_and_leaving_async_turns_it_off() -> None:
    current = _spec(config(endpoint_type="async")).model_copy(update={
        "async_": AsyncConfig(enabled=True, dataset="mine", max_attempts=7)})
    again = _spec(config(endpoint_type="async", per_worker=2), current)
    assert (again.async_.dataset, again.async_.max_attempts, again.async_.workers) == (
        "mine", 7, 2)
    synced = _spec(config(endpoint_type="sync"), current)
    assert not synced.async_.enabled and synced.async_.dataset == "mine"
    native = current.model_copy(update={"endpoint_type": EndpointType.SYNC})
    assert _spec(config(endpoint_type="sync"), native).async_.enabled  # set natively: kept


def test_the_async_route_reaches_the_predict_route() -> None:
    spec = _spec(config(endpoint_type="async"))
    assert async_route(spec) == "p"  # predict_route "/p": no target routes, the path
    named = spec.model_copy(update={"async_": AsyncConfig(
        enabled=True, target_routes={"other": "/o", "main": "/p"})})
    assert async_route(named) == "main"
    lost = spec.model_copy(update={"async_": AsyncConfig(enabled=True,
                                                         target_routes={"other": "/o"})})
    with pytest.raises(Conflict, match="predict route /p"):
        async_route(lost)
