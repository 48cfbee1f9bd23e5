"""`volumes`: the field's own rules, and the machine's (containers only, allowed host paths
that exist), as tables."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from berth.domain.errors import SpecInvalid
from berth.domain.platform import PlatformFacts, Region
from berth.domain.validation import parse_spec, validate
from tests.fakes.builders import facts

IMAGE = "localhost/berth-test/model:v1"


def spec(*volumes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "model", "image": IMAGE, "volumes": list(volumes), **extra}


def real_path(path: str) -> str | None:
    return os.path.realpath(path) if os.path.exists(path) else None


def container_facts(*roots: Path) -> PlatformFacts:
    return replace(facts(), regions={"local": Region("local", "process+podman",
                                                     runs_images=True)},
                   volume_roots=tuple(str(r) for r in roots), host_path=real_path)


def violations(data: dict[str, Any], f: PlatformFacts) -> dict[str, tuple[str, str]]:
    with pytest.raises(SpecInvalid) as info:
        validate(data, f)
    return {v.field: (v.rule, v.message) for v in info.value.violations}


def test_a_host_path_and_a_named_volume_are_valid(tmp_path: Path) -> None:
    (tmp_path / "llama").mkdir()
    got = validate(spec({"source": str(tmp_path / "llama"), "target": "/mnt/models"},
                        {"source": "hf-cache", "target": "/cache", "read_only": False}),
                   container_facts(tmp_path))
    assert [(v.source, v.target, v.read_only) for v in got.volumes] == [
        (str(tmp_path / "llama"), "/mnt/models", True), ("hf-cache", "/cache", False)]
    assert validate(spec(), container_facts()).volumes == []  # none by default


@pytest.mark.parametrize(("volume", "field", "words"), [
    ({"source": "models", "target": "mnt"}, "volumes[0].target", "absolute"),
    ({"source": "models", "target": "/"}, "volumes[0].target", "hide the whole image"),
    ({"source": "models", "target": "/mnt/../etc"}, "volumes[0].target", "normalised"),
    ({"source": "models", "target": "/mnt/"}, "volumes[0].target", "normalised"),
    ({"source": "models", "target": "//mnt"}, "volumes[0].target", "normalised"),
    ({"source": "models", "target": "/a,b"}, "volumes[0].target", "','"),
    ({"source": "models", "target": "/proc/x"}, "volumes[0].target", "/proc"),
    ({"source": "models", "target": "/dev"}, "volumes[0].target", "/dev"),
    ({"source": "my models", "target": "/m"}, "volumes[0].source", "volume name"),
    ({"source": "-models", "target": "/m"}, "volumes[0].source", "volume name"),
    ({"source": "./models", "target": "/m"}, "volumes[0].source", "volume name"),
    ({"source": "/models/./x", "target": "/m"}, "volumes[0].source", "normalised"),
    ({"source": "/models,ro=false", "target": "/m"}, "volumes[0].source", "','"),
    ({"source": "", "target": "/m"}, "volumes[0].source", "at least 1"),
    ({"source": "models", "target": "/m", "mode": "rw"}, "volumes[0].mode", "Extra"),
])
def test_field_rules_name_the_field(volume: dict[str, Any], field: str, words: str) -> None:
    found = violations(spec(volume), container_facts())
    assert list(found) == [field]
    assert words in found[field][1]


def test_a_target_is_mounted_once() -> None:
    found = violations(spec({"source": "a", "target": "/m"}, {"source": "b", "target": "/m"}),
                       container_facts())
    assert found == {"volumes": ("value_error", "target '/m' is mounted twice")}


def test_volumes_need_a_container(tmp_path: Path) -> None:
    volume = {"source": "models", "target": "/m"}
    catalog = violations(spec(volume, image="catalog/echo"), container_facts())
    assert catalog["volumes"][0] == "container_only" and "catalog" in catalog["volumes"][1]
    process = violations(spec(volume, command=["serve"]), facts())  # no container runtime
    assert process["volumes"][0] == "container_only"
    assert "process runtime" in process["volumes"][1]


def test_a_host_path_must_be_allowed_then_exist(tmp_path: Path) -> None:
    allowed, other = tmp_path / "models", tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    (allowed / "escape").symlink_to(other)

    def rule(source: Path, f: PlatformFacts) -> tuple[str, str]:
        return violations(spec({"source": str(source), "target": "/m"}), f)["volumes[0].source"]

    closed = rule(allowed, container_facts())  # no roots: no host path at all
    assert closed[0] == "allowed_host_path" and "volume_host_paths" in closed[1]
    outside = rule(other, container_facts(allowed))
    assert outside[0] == "allowed_host_path" and str(allowed) in outside[1]
    # Outside the roots, nothing says whether a path exists.
    nowhere = rule(tmp_path / "nowhere", container_facts(allowed))
    assert nowhere[0] == "allowed_host_path" and "exist" not in nowhere[1]
    assert rule(allowed / "missing", container_facts(allowed))[0] == "host_path_exists"
    escape = rule(allowed / "escape", container_facts(allowed))
    assert escape[0] == "allowed_host_path" and f"resolves to {str(other)!r}" in escape[1]
    assert rule(allowed, container_facts(tmp_path / "models-2"))[0] == "allowed_host_path"
    for ok in (allowed, allowed / "escape"):
        validate(spec({"source": str(ok), "target": "/m"}), container_facts(tmp_path))


def test_volumes_roll_the_replicas_and_no_volumes_keep_the_old_hash() -> None:
    """A spec without volumes hashes as before the field existed: no replica rolls on an
    upgrade."""
    base = parse_spec(spec())
    assert base.template_hash(0) == "9fea93824825"  # Berth before volumes
    mounted = parse_spec(spec({"source": "models", "target": "/m"}))
    writable = parse_spec(spec({"source": "models", "target": "/m", "read_only": False}))
    assert len({base.template_hash(0), mounted.template_hash(0),
                writable.template_hash(0)}) == 3
