"""TIR's `storage_type: sfs` + `sfs_path`: the host directory of that path mounted read-only
at it (TIR mounts its shared file system there); `disk_path` stays refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from berth.domain.platform import PlatformFacts, Region
from berth.domain.validation import parse_spec
from tests.fakes.builders import facts
from tests.unit.dialects.test_gcore_routes import App
from tests.unit.dialects.test_tir_routes import BASE, fields
from tests.unit.dialects.test_tir_shapes import FACTS, create, patch, sdk_body

IMAGE = "localhost/berth-test/model:v1"


def image_body(**extra: Any) -> dict[str, Any]:
    body = sdk_body(**extra)
    body["custom_endpoint_details"]["container"]["container_name"] = IMAGE
    return body


def container_facts(*roots: Path) -> PlatformFacts:
    return replace(facts(), regions={"local": Region("local", "process+podman",
                                                     runs_images=True)},
                   volume_roots=tuple(str(r) for r in roots),
                   host_path=lambda p: os.path.realpath(p) if os.path.exists(p) else None)


def test_sfs_mounts_the_host_directory_of_sfs_path_read_only() -> None:
    native = create(image_body(storage_type="sfs", sfs_path="/shared"), FACTS)
    assert native["volumes"] == [{"source": "/shared", "target": "/shared", "read_only": True}]
    assert "volumes" not in create(image_body(storage_type="disk"), FACTS)
    assert "volumes" not in create(image_body(), FACTS)


def test_a_patch_replaces_the_mount_only_when_it_names_the_storage_type() -> None:
    current = parse_spec({"name": "model", "image": IMAGE,
                          "volumes": [{"source": "/shared", "target": "/shared"}]})
    moved = patch({"action": "patch", "storage_type": "sfs", "sfs_path": "/models"},
                  current, FACTS)
    assert moved["volumes"] == [{"source": "/models", "target": "/models", "read_only": True}]
    assert patch({"action": "patch", "storage_type": "disk"}, current, FACTS)["volumes"] == []
    assert "volumes" not in patch({"action": "patch", "replicas": 2}, current, FACTS)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    (tmp_path / "shared").mkdir()
    a = App(tmp_path, container_facts(tmp_path / "shared"))
    with a.http:
        yield a
    a.store.close()


def test_the_endpoint_mounts_an_allowed_existing_directory(app: App, tmp_path: Path) -> None:
    shared = str(tmp_path / "shared")
    answer = app.http.post(f"{BASE}/", json=image_body(storage_type="sfs", sfs_path=shared))
    assert answer.status_code == 200, answer.text
    got = answer.json()["data"]
    assert (got["storage_type"], got["sfs_path"]) == ("sfs", shared)
    assert app.native("tir-1-2", "my-echo")["volumes"] == [
        {"source": shared, "target": shared, "read_only": True}]
    number = got["id"]
    assert app.http.put(f"{BASE}/{number}/", json={"action": "patch",
                                                   "storage_type": "disk"}).status_code == 200
    assert app.native("tir-1-2", "my-echo")["volumes"] == []


@pytest.mark.parametrize(("body", "rule"), [
    ({"storage_type": "sfs"}, "required"),
    ({"storage_type": "sfs", "sfs_path": "shared"}, "value_error"),  # not absolute
    ({"storage_type": "sfs", "sfs_path": "/nowhere"}, "allowed_host_path"),
    ({"storage_type": "sfs", "sfs_path": "{shared}/missing"}, "host_path_exists"),
    ({"sfs_path": "{shared}"}, "not_supported_here"),  # storage_type disk: TIR mounts none
    ({"storage_type": "disk", "sfs_path": "{shared}"}, "not_supported_here"),
])
def test_what_cannot_be_mounted_is_a_400_naming_sfs_path(app: App, tmp_path: Path,
                                                         body: dict[str, str],
                                                         rule: str) -> None:
    values = {k: v.format(shared=tmp_path / "shared") for k, v in body.items()}
    number = app.http.post(f"{BASE}/", json=image_body(name="base-echo")).json()["data"]["id"]
    for answer in (app.http.post(f"{BASE}/", json=image_body(**values)),
                   app.http.put(f"{BASE}/{number}/", json={"action": "patch", **values})):
        assert fields(answer) == ["sfs_path"]
        assert f"({rule})" in answer.json()["errors"]["sfs_path"][0]
    assert app.native("tir-1-2", "base-echo")["volumes"] == []


@pytest.mark.parametrize("where", ["process region", "catalog image"])
def test_a_process_region_or_a_catalog_image_refuses_the_mount(tmp_path: Path,
                                                               where: str) -> None:
    (tmp_path / "shared").mkdir()
    platform, body = container_facts(tmp_path), sdk_body()  # sdk_body runs catalog/echo
    if where == "process region":
        platform = replace(platform, regions={"local": Region("local", "process")})
        body = image_body()
    app = App(tmp_path, platform)
    with app.http:
        answer = app.http.post(f"{BASE}/", json=body | {
            "storage_type": "sfs", "sfs_path": str(tmp_path / "shared")})
        assert fields(answer) == ["sfs_path"]
        assert "(container_only)" in answer.json()["errors"]["sfs_path"][0]
    app.store.close()
