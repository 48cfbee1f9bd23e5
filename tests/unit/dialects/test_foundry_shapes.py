"""Foundry shapes: runtime configurations <-> native spec, status, named errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from berth.api.dialects.foundry.models import (
    RUNTIME_CONFIGURATION,
    LiveDeploymentRuntimeConfiguration,
)
from berth.api.dialects.foundry.shapes import (
    CLAIM_GRACE,
    FoundryError,
    branch_key,
    check_sources,
    deployment_name,
    error_body,
    holds_branch,
    model_version,
    runtime_configuration,
    status,
    to_foundry,
    to_native,
    translate,
)
from berth.api.dialects.request_schema import parse
from berth.controller.launch import THREAD_ENVS, replica_envs
from berth.domain.errors import NotFound, SpecInvalid
from berth.domain.platform import Gpu
from berth.domain.records import ContainerStatus, Deployment
from berth.domain.status import DeploymentStatus, DesiredState
from berth.domain.validation import validate
from tests.fakes.builders import deployment, facts

SEED = {"minReplicas": 1, "maxReplicas": 3, "cpu": 1.0, "memory": "256MiB", "threadCount": 32}
ECHO = {"environmentVariables": {"BERTH_IMAGE": "catalog/echo", "MODE": "a"}}
SOURCE = "ri.magritte..source.0a1b2c3d-0000-4000-8000-000000000000"
H100 = (Gpu(0, "NVIDIA H100 80GB HBM3", 81559, "9.0"),)


def typed(config: dict[str, Any]) -> LiveDeploymentRuntimeConfiguration:
    return parse(RUNTIME_CONFIGURATION, config)


def native(config: dict[str, Any], name: str = "fd-abc",
           gpus: tuple[Gpu, ...] = ()) -> dict[str, Any]:
    return to_native(typed(config), name, facts(gpus))


def test_seed_configuration_maps_to_a_valid_native_spec() -> None:
    data = native(SEED | ECHO, "fd-0123456789ab")
    spec = validate(data, facts())
    assert spec.image == "catalog/echo" and spec.listening_port == 8080
    assert spec.envs == {"MODE": "a"}
    assert spec.resources is not None and spec.resources.threads == 32
    assert spec.per_worker == 32  # Foundry's thread count also caps requests per replica
    assert spec.resources.memory == "256MiB" and spec.resources.cpu == 1.0
    assert (spec.containers[0].scale.min, spec.containers[0].scale.max) == (1, 3)
    back = runtime_configuration(spec)
    assert back == SEED | {"sources": [], "environmentVariables": {
        "MODE": "a", "BERTH_IMAGE": "catalog/echo"}}


def test_port_gpu_and_scaling_round_trip() -> None:
    scaling = {"scaleUpLoadThreshold": 0.5, "scaleUpDelay": {"value": 30, "unit": "SECONDS"},
               "scaleDownDelay": {"value": 2, "unit": "MINUTES"}}
    config = SEED | {"gpu": {"count": 1, "type": "H100"}, "scalingConfiguration": scaling,
                     "environmentVariables": {"BERTH_IMAGE": "catalog/echo",
                                              "BERTH_PORT": "9000"}}
    spec = validate(native(config, gpus=H100), facts(H100))
    assert spec.listening_port == 9000
    scale = spec.containers[0].scale
    assert scale.cooldown_period == 120
    assert scale.triggers.concurrency is not None and scale.triggers.concurrency.target == 16
    back = runtime_configuration(spec, scaling)
    assert back["gpu"] == {"count": 1, "type": "H100"}
    assert back["scalingConfiguration"] == scaling
    assert back["environmentVariables"]["BERTH_PORT"] == "9000"


@pytest.mark.parametrize("config, words", [
    (SEED, "BERTH_IMAGE"),
    (SEED | {"environmentVariables": {"BERTH_IMAGE": "x", "BERTH_PORT": "http"}}, "BERTH_PORT"),
    (SEED | {"environmentVariables": {"BERTH_IMAGE": "x", "BERTH_PORT": "9" * 5000}},
     "BERTH_PORT"),
])
def test_bad_configurations_name_the_problem(config: dict[str, Any], words: str) -> None:
    with pytest.raises(FoundryError) as exc:
        native(config)
    assert exc.value.status == 400 and words in exc.value.message


@pytest.mark.parametrize("config, field", [
    (SEED | ECHO | {"sources": "ri.magritte..source.1"}, "sources"),
    (SEED | ECHO | {"bogus": 1}, "bogus"),
    (SEED | ECHO | {"minReplicas": "a"}, "minReplicas"),
    (SEED | ECHO | {"threadCount": [1]}, "threadCount"),
    (SEED | ECHO | {"memory": "lots"}, "memory"),
    (SEED | ECHO | {"gpu": {"count": 1, "type": "RTX"}}, "gpu.type"),
    ({"maxReplicas": 1} | ECHO, "minReplicas"),
])
def test_wrong_types_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecInvalid) as exc:
        typed(config)
    assert field in {v.field for v in exc.value.violations}


def test_sources_and_env_may_be_left_out_and_a_replace_keeps_the_image() -> None:
    """Seed 003's PUT body: no sources, no environmentVariables (Conjure: empty)."""
    current = validate(native(SEED | {"environmentVariables": {
        "BERTH_IMAGE": "catalog/echo", "BERTH_PORT": "9000", "MODE": "a"}}), facts())
    data = to_native(typed(SEED), "fd-abc", facts(), current)
    assert (data["image"], data["listening_port"], data["envs"]) == ("catalog/echo", 9000, {})
    with pytest.raises(FoundryError):  # a create has no image to keep
        native(SEED)


def test_sources_are_checked() -> None:
    assert check_sources([SOURCE]) == [SOURCE] and check_sources([]) == []
    for bad, words in ((["not-a-rid"], "not-a-rid"), ([SOURCE, SOURCE], "twice")):
        with pytest.raises(FoundryError) as exc:
            check_sources(bad)
        assert words in exc.value.message


def test_thread_count_sets_the_thread_envs_unless_set() -> None:
    config = SEED | {"environmentVariables": {"BERTH_IMAGE": "catalog/echo",
                                              "MKL_NUM_THREADS": "2"}}
    spec = validate(native(config), facts())
    d = Deployment(id="d1", project="foundry", name="fd-abc", spec=spec, generation=1,
                   desired=DesiredState.RUNNING, restart_nonce=0, created_at=datetime.now(UTC),
                   updated_at=datetime.now(UTC))
    envs = replica_envs(d)
    assert {k: envs[k] for k in THREAD_ENVS} == {k: "2" if k == "MKL_NUM_THREADS" else "32"
                                                 for k in THREAD_ENVS}
    unset = validate(native({k: v for k, v in SEED.items() if k != "threadCount"} | ECHO),
                     facts())
    assert unset.per_worker is None and unset.resources is not None
    assert unset.resources.threads is None


def _translated(config: dict[str, Any], gpus: tuple[Gpu, ...] = ()) -> FoundryError:
    with pytest.raises(SpecInvalid) as exc:
        validate(native(config, gpus=gpus), facts(gpus))
    out = translate(exc.value, typed(config), facts(gpus))
    assert isinstance(out, FoundryError)
    return out


def test_native_violations_become_foundry_named_errors() -> None:
    threads = _translated(SEED | ECHO | {"threadCount": 1000})
    assert (threads.name, threads.parameters) == (
        "ThreadCountTooHigh", {"maxThreadCount": 64, "providedThreadCount": 1000})
    count = _translated(SEED | ECHO | {"gpu": {"count": 2, "type": "H100"}}, H100)
    assert (count.name, count.parameters) == (
        "InvalidGpuCount", {"providedGpuCount": 2, "maxGpuCount": 1})
    kind = _translated(SEED | ECHO | {"gpu": {"count": 1, "type": "A100"}}, H100)
    assert (kind.name, kind.parameters) == (
        "GpuTypeNotAvailable", {"requestedGpuType": "A100", "availableGpuTypes": ["H100"]})
    with pytest.raises(FoundryError) as zero:
        native(SEED | ECHO | {"gpu": {"count": 0}})
    assert zero.value.name == "InvalidGpuCount"


def test_status_and_live_deployment_shape() -> None:
    d = deployment(replicas=1)
    d.status = DeploymentStatus.ACTIVE
    d.containers = [ContainerStatus("local", ready=1, total=1)]
    assert status(d) == {"state": "ACTIVE", "isReady": True}
    d.containers = [ContainerStatus("local", ready=0, total=0)]
    assert status(d) == {"state": "ACTIVE", "isReady": False}  # scaled to zero
    for native, state in ((DeploymentStatus.DEPLOYING, "STARTING"),
                          (DeploymentStatus.PARTIALLYDEPLOYED, "DEGRADED"),
                          (DeploymentStatus.FAILED, "FAILED"),
                          (DeploymentStatus.DISABLED, "DISABLED")):
        d.status = native
        assert status(d)["state"] == state
    record = {"modelRid": "ri.models.main.model.m", "modelVersionRid": "ri.models.main."
              "model-version.v", "branch": "master"}
    shaped = to_foundry(d, "ri.foundry-ml-live.main.live-deployment.x", record)
    assert shaped["modelVersion"] == {"modelRid": "ri.models.main.model.m",
                                      "modelVersionRid": "ri.models.main.model-version.v"}
    assert shaped["branch"] == "master" and shaped["runtimeConfiguration"]["minReplicas"] == 1


def test_names_and_error_bodies() -> None:
    name = deployment_name("f351c1420e4c4b12adc26e1539737ae9")
    assert name == "fd-f351c1420e4c" and validate(
        {"name": name, "image": "catalog/echo"}, facts()).name == name
    status_code, body = error_body(FoundryError("LiveDeploymentNotFound", "NOT_FOUND", "gone",
                                                liveDeploymentRid="r"), "id-1")
    assert status_code == 404 and body == {
        "errorCode": "NOT_FOUND", "errorName": "LiveDeploymentNotFound",
        "errorInstanceId": "id-1", "parameters": {"liveDeploymentRid": "r"}}
    status_code, body = error_body(NotFound("nothing"), "id-2")
    assert status_code == 404 and body["errorName"] == "Default:NotFound"


def test_sources_are_kept_as_given() -> None:
    config = SEED | ECHO | {"sources": [SOURCE]}
    spec = validate(native(config), facts())
    assert runtime_configuration(spec, None, [SOURCE])["sources"] == [SOURCE]
    d = deployment(replicas=1)
    record = {"modelRid": "m", "modelVersionRid": "v", "branch": "master", "sources": [SOURCE]}
    assert to_foundry(d, "r", record)["runtimeConfiguration"]["sources"] == [SOURCE]
    assert to_foundry(d, "r", record | {"sources": None})["runtimeConfiguration"][
        "sources"] == []


def test_a_branch_is_held_by_a_live_or_just_claimed_deployment() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    d = deployment(replicas=1)
    for native, held in ((DeploymentStatus.ACTIVE, True), (DeploymentStatus.DISABLED, True),
                         (DeploymentStatus.FAILED, True), (DeploymentStatus.DELETING, False),
                         (DeploymentStatus.DELETED, False)):
        d.status = native
        assert holds_branch(now - CLAIM_GRACE * 10, d, now) is held, native
    assert holds_branch(now - CLAIM_GRACE / 2, None, now)  # being created
    assert not holds_branch(now - CLAIM_GRACE, None, now)  # its deployment is gone
    keys = {branch_key("ri.models.main.model.m", b) for b in ("master", "dev", "x" * 500)}
    assert len(keys) == 3 and all(len(k) < 200 for k in keys)


def test_model_version_shape() -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert model_version("ri.models.main.model-version.v", created) == {
        "rid": "ri.models.main.model-version.v", "modelApi": {"inputs": [], "outputs": []},
        "condaRequirements": [], "backingRepositories": [],
        "createdTime": "2025-01-02T03:04:05Z", "source": {"type": "importedContainerizedModel"}}
