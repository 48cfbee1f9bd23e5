"""TIR's advance_config probes <-> Berth spec probes, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.dialects.tir import probes
from berth.domain.errors import SpecInvalid
from berth.domain.merge_patch import merge_patch
from berth.domain.spec import DeploymentSpec
from berth.domain.validation import validate
from tests.unit.dialects.test_tir_shapes import FACTS, create, patch, sdk_body

ADVANCE = "custom_endpoint_details.container.advance_config"


def sdk_probe(**extra: Any) -> dict[str, Any]:
    """The probe object `EndPoints.create(framework='custom')` sends."""
    return {"protocol": "http", "initial_delay_seconds": 10, "success_threshold": 1,
            "failure_threshold": 3, "port": 8080, "period_seconds": 10, "timeout_seconds": 10,
            "path": "/metrics", "grpc_service": "", "commands": ""} | extra


def body_with(advance: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = sdk_body(**extra)
    body["custom_endpoint_details"]["container"]["advance_config"] = advance
    return body


def test_the_sdks_disabled_probes_leave_the_image_defaults() -> None:
    advance = {"image_pull_policy": "Always", "is_readiness_probe_enabled": "false",
               "is_liveness_probe_enabled": "false", "readiness_probe": sdk_probe(),
               "liveness_probe": sdk_probe()}
    native = create(body_with(advance), FACTS)
    assert "probes" not in native
    assert native["image_pull_policy"] == "Always"


def test_enabled_probes_map_onto_the_spec() -> None:
    advance = {"is_readiness_probe_enabled": "true", "is_liveness_probe_enabled": True,
               "readiness_probe": sdk_probe(path="/healthz"),
               "liveness_probe": sdk_probe(protocol="tcp", initial_delay_seconds=2)}
    spec = validate(create(body_with(advance), FACTS), FACTS)
    assert spec.probes is not None and spec.probes.readiness and spec.probes.liveness
    ready, live = spec.probes.readiness, spec.probes.liveness
    assert ready.http_get is not None and ready.http_get.path == "/healthz"
    assert ready.http_get.port == 8080 and ready.period_seconds == 10
    assert live.tcp_socket is not None and live.http_get is None
    assert live.initial_delay_seconds == 2 and spec.probes.startup is None
    shown = probes.to_tir(spec, {})
    assert shown["is_readiness_probe_enabled"] and shown["is_liveness_probe_enabled"]
    assert shown["readiness_probe"]["path"] == "/healthz"
    assert shown["liveness_probe"]["protocol"] == "tcp"
    assert shown["image_pull_policy"] == "IfNotPresent"


def test_exec_probe_commands() -> None:
    advance = {"is_readiness_probe_enabled": True,
               "readiness_probe": sdk_probe(protocol="exec", commands="cat '/tmp/my file'")}
    spec = validate(create(body_with(advance), FACTS), FACTS)
    assert spec.probes and spec.probes.readiness and spec.probes.readiness.exec
    assert spec.probes.readiness.exec.command == ["cat", "/tmp/my file"]
    assert probes.to_tir(spec, {})["readiness_probe"]["commands"] == "cat '/tmp/my file'"


@pytest.mark.parametrize(("advance", "field", "rule"), [
    ({"is_readiness_probe_enabled": "yes"}, f"{ADVANCE}.is_readiness_probe_enabled", "bool_type"),
    ({"is_readiness_probe_enabled": True}, f"{ADVANCE}.readiness_probe", "required"),
    ({"is_readiness_probe_enabled": True, "readiness_probe": sdk_probe(protocol="grpc")},
     f"{ADVANCE}.readiness_probe.protocol", "enum"),
    ({"is_readiness_probe_enabled": True, "readiness_probe": sdk_probe(path="metrics")},
     f"{ADVANCE}.readiness_probe.path", "string_pattern_mismatch"),
    ({"is_readiness_probe_enabled": True, "readiness_probe": sdk_probe(port=70000)},
     f"{ADVANCE}.readiness_probe.port", "less_than_equal"),
    ({"is_readiness_probe_enabled": True, "readiness_probe": sdk_probe(failure_threshold=0)},
     f"{ADVANCE}.readiness_probe.failure_threshold", "greater_than_equal"),
    ({"is_liveness_probe_enabled": True, "liveness_probe": sdk_probe(period_seconds="soon")},
     f"{ADVANCE}.liveness_probe.period_seconds", "float_parsing"),
    ({"is_liveness_probe_enabled": True, "liveness_probe": sdk_probe(success_threshold=2)},
     f"{ADVANCE}.liveness_probe.success_threshold", "equals_one"),
    ({"is_liveness_probe_enabled": True, "liveness_probe": sdk_probe(protocol="exec")},
     f"{ADVANCE}.liveness_probe.commands", "required"),
    ({"is_liveness_probe_enabled": True, "liveness_probe": sdk_probe(grpc_service="svc")},
     f"{ADVANCE}.liveness_probe.grpc_service", "not_supported_here"),
    ({"image_pull_policy": "Sometimes"}, f"{ADVANCE}.image_pull_policy", "literal_error"),
])
def test_bad_probes_name_the_tir_field(advance: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(SpecInvalid) as bad:
        create(body_with(advance), FACTS)
    assert (bad.value.violations[0].field, bad.value.violations[0].rule) == (field, rule)


def test_advance_config_must_be_an_object() -> None:
    with pytest.raises(SpecInvalid) as bad:
        create(body_with("fast"), FACTS)  # type: ignore[arg-type]
    assert bad.value.violations[0].field == ADVANCE


def _patched(spec: DeploymentSpec, body: dict[str, Any]) -> DeploymentSpec:
    native = patch(body, spec, FACTS)
    current = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return validate(merge_patch(current, native), FACTS)


def test_patch_replaces_probes_whole_and_disabling_restores_defaults() -> None:
    http = {"is_readiness_probe_enabled": True, "is_liveness_probe_enabled": False,
            "readiness_probe": sdk_probe(path="/ready")}
    spec = validate(create(body_with(http), FACTS), FACTS)
    tcp = {"is_readiness_probe_enabled": True, "is_liveness_probe_enabled": False,
           "readiness_probe": sdk_probe(protocol="tcp", port=None)}
    body: dict[str, Any] = {"action": "patch",
                            "custom_endpoint_details": {"container": {"advance_config": tcp}}}
    after = _patched(spec, body)
    assert after.probes and after.probes.readiness and after.probes.readiness.http_get is None
    assert after.probes.readiness.tcp_socket is not None
    assert after.probes.readiness.tcp_socket.port is None  # the listening port
    assert _patched(after, body) == after  # the same body again changes nothing
    off = {"is_readiness_probe_enabled": "false", "is_liveness_probe_enabled": "false"}
    body["custom_endpoint_details"]["container"]["advance_config"] = off
    assert _patched(after, body).probes is None
    silent = {"action": "patch", "custom_endpoint_details": {
        "container": {"advance_config": {"image_pull_policy": "Never"}}}}
    assert "probes" not in patch(silent, after, FACTS)


def test_patch_keeps_a_native_startup_probe() -> None:
    native = create(sdk_body(), FACTS) | {"probes": {
        "startup": {"http_get": {"path": "/up"}}, "readiness": {"tcp_socket": {}}}}
    spec = validate(native, FACTS)
    off = {"is_readiness_probe_enabled": False, "is_liveness_probe_enabled": False}
    after = _patched(spec, {"custom_endpoint_details": {"container": {"advance_config": off}}})
    assert after.probes is not None and after.probes.startup is not None
    assert after.probes.readiness is None
