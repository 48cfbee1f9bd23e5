"""Volumes, end to end: a host directory with a file, mounted read-only into a container of
localhost/berth-test/model:v1 by the native spec and by TIR's `storage_type: sfs`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.containers.images import BuiltImages
from tests.e2e.harness import Api, BerthServer, wait_for
from tests.e2e.test_containers import containers_of, image_spec

pytestmark = pytest.mark.e2e

TIR = "/myaccount/api/v1/gpu/teams/3/projects/4/serving/inference"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory deployments may mount from, holding models/x."""
    root = tmp_path_factory.mktemp("volumes")
    (root / "models").mkdir()
    (root / "models" / "x").write_text("weights v1\n")
    (root / "models").chmod(0o755)
    return root


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, test_images: BuiltImages,
        shared: Path) -> Iterator[BerthServer]:
    server = BerthServer(tmp_path_factory.mktemp("berth-volumes"), env={
        "BERTH_IMAGE_RUNTIME": "podman",
        "BERTH_VOLUME_HOST_PATHS": json.dumps([str(shared)])}).start()
    try:
        yield server
    finally:
        server.stop()
        assert containers_of(server) == []


def read(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}/file", params={"path": path}, timeout=10)


def test_a_host_directory_is_mounted_read_only(srv: BerthServer, shared: Path,
                                               test_images: BuiltImages) -> None:
    models = shared / "models"
    with srv.client() as http:
        api = Api(http)
        outside = http.post(api.base, json=image_spec("outside", test_images.v1, 1, volumes=[
            {"source": str(srv.data_dir), "target": "/mnt/berth"}]))
        assert outside.status_code == 422, outside.text
        (refused,) = outside.json()["error"]["details"]
        assert (refused["field"], refused["rule"]) == ("volumes[0].source", "allowed_host_path")
        api.task(api.create(image_spec("mounted", test_images.v1, 1, volumes=[
            {"source": str(models), "target": "/mnt/models"}]))["task_id"], 120)
        d = api.wait_status("mounted", "ACTIVE", 60)
    url = f"{srv.gateway}/e2e/mounted"
    assert read(url, "/mnt/models/x").json() == {"content": "weights v1\n"}
    (container,) = [c for c in containers_of(srv)
                    if c["Labels"].get("berth.deployment") == d["id"]]
    wrote = subprocess.run(
        ["podman", "exec", container["Id"], "sh", "-c", "echo new > /mnt/models/y"],
        capture_output=True, text=True, timeout=60, check=False)
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr, wrote
    assert sorted(p.name for p in models.iterdir()) == ["x"]
    (models / "x").write_text("weights v2\n")  # a bind mount: the host's file, live
    assert read(url, "/mnt/models/x").json() == {"content": "weights v2\n"}
    (models / "x").write_text("weights v1\n")


def test_tir_storage_sfs_mounts_the_host_directory_at_sfs_path(
        srv: BerthServer, shared: Path, test_images: BuiltImages) -> None:
    sfs = str(shared / "models")
    with srv.client() as http:
        sku = http.get("/myaccount/api/v1/gpu/gpu_service/sku/").json()["data"]["CPU"][0]
        made = http.post(f"{TIR}/", json={
            "name": "tir-sfs", "framework": "custom", "sku_id": sku["sku_id"], "replica": 1,
            "storage_type": "sfs", "sfs_path": sfs,
            "custom_endpoint_details": {"container": {"container_name": test_images.v1}}})
        assert made.status_code == 200, made.text
        number = made.json()["data"]["id"]

        def running() -> bool:
            got = http.get(f"{TIR}/{number}/").json()["data"]
            assert got["status"] != "Failed", got
            return bool(got["status"] == "Running")
        wait_for(running, 60, what="Running")
    assert read(f"{srv.gateway}/tir-3-4/tir-sfs", f"{sfs}/x").json() == {
        "content": "weights v1\n"}
