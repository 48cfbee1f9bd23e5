from typing import Any

import pytest

from berth.domain.errors import SpecInvalid
from berth.domain.merge_patch import merge_patch
from berth.domain.platform import Gpu, PlatformFacts, Region, gpu_type_matches, machine_flavors
from berth.domain.units import format_size, parse_size
from berth.domain.validation import check_spec, parse_spec, validate

SMALLEST = {"name": "echo", "image": "catalog/echo", "listening_port": 8080,
            "containers": [{"region": "local", "scale": {"min": 2, "max": 2}}]}
H100 = Gpu(0, "NVIDIA H100 80GB HBM3", 81559)


def facts(gpus: tuple[Gpu, ...] = ()) -> PlatformFacts:
    return PlatformFacts(
        regions={"local": Region("local", "process")}, cpus=8, memory_bytes=32 * 2**30,
        gpus=gpus, catalog=frozenset({"catalog/echo"}), max_threads=64,
        flavors=machine_flavors(8, 32 * 2**30, gpus))


def violations(data: dict[str, Any], f: PlatformFacts | None = None) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as info:
        validate(data, f or facts())
    return {v.field: v.rule for v in info.value.violations}


def test_smallest_spec_is_valid_with_defaults() -> None:
    spec = validate(SMALLEST, facts())
    assert spec.containers[0].scale.min == 2
    assert spec.timeout == 120 and spec.endpoint_type == "sync"
    assert spec.routes.predict == "/predict"


@pytest.mark.parametrize(("patch", "field", "rule"), [
    ({"name": "ab"}, "name", "string_too_short"),
    ({"name": "x" * 31}, "name", "string_too_long"),
    ({"name": "Bad_Name"}, "name", "value_error"),
    ({"listening_port": 0}, "listening_port", "greater_than_equal"),
    ({"listening_port": 65536}, "listening_port", "less_than_equal"),
    ({"timeout": -1}, "timeout", "greater_than_equal"),
    ({"containers": []}, "containers", "too_short"),
    ({"containers": [{"scale": {"min": 3, "max": 2}}]}, "containers[0].scale", "value_error"),
    ({"resources": {"memory": "12XB"}}, "resources.memory", "value_error"),
    ({"probes": {"readiness": {}}}, "probes.readiness", "value_error"),
    ({"probes": {"liveness": {"tcp_socket": {}, "success_threshold": 2}}}, "probes", "value_error"),
    ({"probes": {"readiness": {"tcp_socket": {}, "period_seconds": 0}}},
     "probes.readiness.period_seconds", "greater_than_equal"),
    ({"api_keys": ["k"], "auth_enabled": True}, "body", "value_error"),
    ({"flavor": "cpu-1vcpu-2gib", "resources": {"cpu": 1}}, "body", "value_error"),
    ({"envs": {"1BAD": "x"}}, "envs", "value_error"),
    ({"unknown_field": 1}, "unknown_field", "extra_forbidden"),
])
def test_field_rules_name_the_field(patch: dict[str, Any], field: str, rule: str) -> None:
    assert violations({**SMALLEST, **patch}).get(field) == rule


def test_mutually_exclusive_api_keys_message() -> None:
    with pytest.raises(SpecInvalid) as info:
        parse_spec({**SMALLEST, "api_keys": ["a"], "auth_enabled": False})
    assert "mutually exclusive" in info.value.message


def test_platform_rules() -> None:
    assert violations({**SMALLEST, "containers": [{"region": "mars"}]}) == {
        "containers[0].region": "known_region"}
    assert violations({**SMALLEST, "image": "catalog/nope"}) == {"image": "known_catalog_image"}
    assert violations({**SMALLEST, "image": "nginx:latest"}) == {
        "command": "required_for_process_runtime"}
    assert violations({**SMALLEST, "resources": {"threads": 65}}) == {
        "resources.threads": "max_threads"}
    assert violations({**SMALLEST, "resources": {"gpus": 1}}) == {"resources.gpus": "max_gpus"}
    assert violations({**SMALLEST, "resources": {"gpus": 1, "gpu_type": "nvidia-tesla-t4"}},
                      facts((H100,))) == {"resources.gpu_type": "available_gpu_type"}
    assert violations({**SMALLEST, "resources": {"cpu": 64}}) == {"resources.cpu": "max_cpu"}
    assert violations({**SMALLEST, "flavor": "huge"}) == {"flavor": "known_flavor"}


def test_image_error_says_which_runtime_runs_images() -> None:
    with pytest.raises(SpecInvalid) as info:
        validate({**SMALLEST, "image": "nginx:latest"}, facts())
    assert "process runtime" in info.value.message and "command" in info.value.message


def test_image_error_says_why_containers_are_off() -> None:
    from dataclasses import replace as copy
    off = copy(facts(), regions={"local": Region("local", "process",
                                                 images_off="podman is not installed")})
    with pytest.raises(SpecInvalid) as info:
        validate({**SMALLEST, "image": "nginx:latest"}, off)
    assert "containers are off here: podman is not installed" in info.value.message
    images = copy(facts(), regions={"local": Region("local", "process+podman",
                                                    runs_images=True)})
    assert validate({**SMALLEST, "image": "nginx:latest"}, images).image == "nginx:latest"


def test_non_catalog_image_with_command_is_fine() -> None:
    spec = validate({**SMALLEST, "image": "nginx:latest", "command": ["python3", "-V"]}, facts())
    assert check_spec(spec, facts()) == []


def test_gpu_request_against_machine() -> None:
    f = facts((H100, Gpu(1, "NVIDIA H100 80GB HBM3", 81559)))
    ok = validate({**SMALLEST, "resources": {"gpus": 2, "gpu_type": "nvidia-hopper-h100"}}, f)
    assert ok.resources is not None and ok.resources.gpus == 2
    assert violations({**SMALLEST, "resources": {"gpus": 3}}, f) == {"resources.gpus": "max_gpus"}
    gpu_flavors = [fl.name for fl in f.flavors if fl.gpus]
    assert len(gpu_flavors) == 2 and gpu_flavors[0].startswith("gpu-")


def test_gpu_type_matching() -> None:
    assert gpu_type_matches("nvidia-hopper-h100", "NVIDIA H100 80GB HBM3")
    assert gpu_type_matches("H100", "NVIDIA H100 80GB HBM3")
    assert not gpu_type_matches("nvidia-ampere-a100", "NVIDIA H100 80GB HBM3")
    assert not gpu_type_matches("nvidia", "NVIDIA H100")


def test_sizes() -> None:
    assert parse_size("256MiB") == 256 * 2**20
    assert parse_size("8Gi") == 8 * 2**30
    assert parse_size("1G") == 10**9
    assert parse_size("1024") == 1024
    for bad in ("", "12XB", "-1Mi", "Mi", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert format_size(256 * 2**20) == "256MiB"


def test_template_hash_ignores_scale_but_not_envs() -> None:
    base = validate(SMALLEST, facts())
    scaled = validate({**SMALLEST, "containers": [{"scale": {"min": 1, "max": 5}}]}, facts())
    env = validate({**SMALLEST, "envs": {"A": "1"}}, facts())
    assert base.template_hash(0) == scaled.template_hash(0)
    assert base.template_hash(0) != env.template_hash(0)
    assert base.template_hash(0) != base.template_hash(1)


def test_merge_patch_rfc7396() -> None:
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert merge_patch({"a": 1}, {"b": {"c": None}}) == {"a": 1, "b": {}}
