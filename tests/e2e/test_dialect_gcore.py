"""The official Gcore SDK (strict response validation on) against a real `berth serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gcore
import httpx
import pytest
from gcore import Gcore

from berth.api.dialects.gcore import v2
from tests.e2e.harness import BerthServer, wait_for

PROJECT = 7


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[Gcore]:
    client = Gcore(api_key=server.token, base_url=server.url, cloud_project_id=PROJECT,
                   cloud_region_id=1, polling_interval_seconds=1, max_retries=0,
                   _strict_response_validation=True)
    yield client
    client.close()


def test_sdk_lifecycle(sdk: Gcore, server: BerthServer) -> None:
    deployments = sdk.cloud.inference.deployments
    flavor = sdk.cloud.inference.flavors.list().results[0].name
    assert sdk.cloud.inference.flavors.get(flavor).name == flavor
    created = deployments.create_and_poll(
        name="sdk-echo", image="catalog/echo", listening_port=8080, flavor_name=flavor,
        containers=[{"region_id": 1, "scale": {"min": 1, "max": 2,
                                               "triggers": {"cpu": {"threshold": 80}}}}],
        envs={"MODE": "a"}, description="from the SDK", api_timeout=120,
        probes={"readiness_probe": {"enabled": True, "probe": {
            "http_get": {"path": "/healthz", "port": 8080, "headers": {}, "schema": "HTTP"},
            "period_seconds": 1, "failure_threshold": 3, "success_threshold": 1,
            "initial_delay_seconds": 0, "timeout_seconds": 1}}},
        polling_timeout_seconds=60)
    assert created.status == "ACTIVE" and created.project_id == PROJECT
    assert created.containers[0].deploy_status.ready == 1
    assert created.containers[0].scale.triggers.cpu is not None
    assert created.probes is not None and created.probes.readiness_probe is not None
    assert created.address and created.address.endswith(f"/{PROJECT}/sdk-echo")
    answer = httpx.post(f"{created.address}/predict", json={"via": "gcore"}, timeout=10)
    assert answer.json()["echo"] == {"via": "gcore"}
    assert [d.name for d in deployments.list()] == ["sdk-echo"]
    updated = deployments.update_and_poll(deployment_name="sdk-echo", envs={"MODE": "b"},
                                          polling_timeout_seconds=60)
    assert updated.envs == {"MODE": "b"} and updated.status == "ACTIVE"
    deployments.stop("sdk-echo")
    wait_for(lambda: deployments.get("sdk-echo").status == "DISABLED", 20,
             what="DISABLED")
    deployments.start("sdk-echo")
    wait_for(lambda: deployments.get("sdk-echo").status == "ACTIVE", 20, what="ACTIVE")
    logs = list(deployments.logs.list(deployment_name="sdk-echo", limit=10))
    assert logs and all(entry.pod.startswith("sdk-echo") for entry in logs)
    deployments.delete_and_poll("sdk-echo", polling_timeout_seconds=60)
    with pytest.raises(gcore.NotFoundError):
        deployments.get("sdk-echo")


def test_sdk_sees_gcore_errors(sdk: Gcore, server: BerthServer) -> None:
    deployments = sdk.cloud.inference.deployments
    flavor = sdk.cloud.inference.flavors.list().results[0].name
    base = {"image": "catalog/echo", "listening_port": 8080, "flavor_name": flavor,
            "containers": [{"region_id": 1, "scale": {"min": 1, "max": 1}}]}
    with pytest.raises(gcore.BadRequestError) as short:
        deployments.create(name="abc", **base)  # type: ignore[arg-type]
    assert short.value.response.headers["x-should-retry"] == "false"
    assert "name" in short.value.response.text
    with pytest.raises(gcore.BadRequestError) as both:
        deployments.create(name="both-auth", api_keys=["k"], auth_enabled=True,
                           **base)  # type: ignore[arg-type]
    assert "mutually exclusive" in both.value.response.text
    with pytest.raises(gcore.BadRequestError):
        deployments.create(name="bad-port", **{**base, "listening_port": 70000})  # type: ignore[arg-type]
    with pytest.raises(gcore.BadRequestError) as region:
        deployments.create(name="bad-region", **{**base, "containers": [
            {"region_id": 99, "scale": {"min": 1, "max": 1}}]})  # type: ignore[arg-type]
    assert "region_id" in region.value.response.text
    with pytest.raises(gcore.NotFoundError):
        deployments.get("nowhere")
    with pytest.raises(gcore.AuthenticationError):
        Gcore(api_key="wrong", base_url=server.url, cloud_project_id=PROJECT,
              cloud_region_id=1, max_retries=0).cloud.inference.deployments.list()


def test_seed_replace_request_is_accepted(server: BerthServer) -> None:
    """Seed 002's PUT body (v3 replace), sent as written but for this machine's flavor, with
    the registry credentials it names created first, and without the topic and destination
    region of Gcore's hosted log service (refused: Berth keeps the logs itself)."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"apikey {server.token}"},
                      timeout=30) as http:
        flavor = http.get("/cloud/v3/inference/flavors").json()["results"][0]["name"]
        hub = http.post(f"/cloud/v3/inference/{PROJECT}/registry_credentials", json={
            "name": "dockerhub", "registry_url": "docker.io", "username": "me",
            "password": "pw"})
        assert hub.status_code == 200, hub.text
        body = {"containers": [{"region_id": 1, "scale": {
                    "cooldown_period": 60, "max": 3, "min": 1,
                    "triggers": {"cpu": {"threshold": 80}, "memory": {"threshold": 70}}}}],
                "flavor_name": flavor, "image": "nginx:latest", "listening_port": 80,
                "name": "my-instance", "api_keys": ["key1", "key2"],
                "command": ["python3", "-m", "http.server", "${PORT}"],
                "credentials_name": "dockerhub", "description": "My first instance",
                "envs": {"DEBUG_MODE": "False", "KEY": "12345"},
                "ingress_opts": {"disable_response_buffering": True},
                "logging": {"enabled": True, "retention_policy": {"period": 42}},
                "timeout": 120}
        hosted = http.post(f"/cloud/v3/inference/{PROJECT}/deployments", json={
            **body, "logging": {"enabled": True, "topic_name": "my-log-name"}})
        assert hosted.status_code == 400 and "logging.topic_name" in hosted.text
        r = http.post(f"/cloud/v3/inference/{PROJECT}/deployments", json=body)
        assert r.status_code == 200 and len(r.json()["tasks"]) == 1, r.text
        r = http.put(f"/cloud/v3/inference/{PROJECT}/deployments/my-instance",
                     json={**body, "description": "replaced"})
        assert r.status_code == 200, r.text
        got = http.get(f"/cloud/v3/inference/{PROJECT}/deployments/my-instance").json()
        assert got["description"] == "replaced" and got["credentials_name"] == "dockerhub"
        assert got["logging"]["retention_policy"] == {"period": 42}
        assert got["command"] == "python3 -m http.server '${PORT}'"
        native = http.get(f"/v1/projects/{PROJECT}/deployments/my-instance").json()
        assert native["api_keys"] == ["key1", "key2"]  # one domain underneath
        http.delete(f"/cloud/v3/inference/{PROJECT}/deployments/my-instance")


def test_sdk_api_keys_and_capacity(sdk: Gcore, server: BerthServer) -> None:
    keys = sdk.cloud.inference.api_keys
    created = keys.create(name="sdk-key", description="for the SDK test")
    assert created.secret.startswith("bk_") and created.deployment_names == []
    listed = list(keys.list())
    assert [k.name for k in listed] == ["sdk-key"]
    assert not hasattr(listed[0], "secret") or getattr(listed[0], "secret", None) is None
    flavor = sdk.cloud.inference.flavors.list().results[0].name
    sdk.cloud.inference.deployments.create_and_poll(
        name="keyed-echo", image="catalog/echo", listening_port=8080, flavor_name=flavor,
        containers=[{"region_id": 1, "scale": {"min": 1, "max": 1}}], api_keys=["sdk-key"],
        polling_timeout_seconds=60)
    assert keys.get("sdk-key").deployment_names == ["keyed-echo"]
    assert keys.update("sdk-key", description="renamed").description == "renamed"
    address = sdk.cloud.inference.deployments.get("keyed-echo").address
    assert address is not None
    denied = httpx.post(f"{address}/predict", json={"k": 1}, timeout=10)
    allowed = httpx.post(f"{address}/predict", json={"k": 1}, timeout=10,
                         headers={"Authorization": f"Bearer {created.secret}"})
    assert denied.status_code == 401 and allowed.status_code == 200
    keys.delete("sdk-key")
    with pytest.raises(gcore.NotFoundError):
        keys.get("sdk-key")
    capacity = sdk.cloud.inference.get_capacity_by_region()
    assert capacity.results[0].region_id == 1
    assert {c.flavor_name for c in capacity.results[0].capacity} == {
        f.name for f in sdk.cloud.inference.flavors.list().results}
    sdk.cloud.inference.deployments.delete_and_poll("keyed-echo", polling_timeout_seconds=60)


@pytest.fixture
def region_7(tmp_path: Path) -> Iterator[BerthServer]:
    """A server whose region is number 7, as seed 001's scripts name it."""
    srv = BerthServer(tmp_path / "data", env={"BERTH_REGION_ID": "7"}).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_seed_001_v2_update_is_accepted(region_7: BerthServer) -> None:
    """Seed 001's v2 PUT body as written (region 7 too), but for the flavor and registry ids,
    which are ids of Gcore's own objects (here this machine's flavor's id and an id Berth
    keeps as given), and the project id, which must be the instance's."""
    server = region_7
    with httpx.Client(base_url=server.url, headers={"Authorization": f"apikey {server.token}"},
                      timeout=30) as http:
        flavor = http.get("/cloud/v3/inference/flavors").json()["results"][0]["name"]
        key = http.post(f"/cloud/v3/inference/{PROJECT}/api_keys", json={"name": "seed-key"})
        key_id = http.get(f"/v1/projects/{PROJECT}/api-keys").json()["items"][0]
        assert key.status_code == 200, key.text
        created = http.post(f"/cloud/v3/inference/{PROJECT}/deployments", json={
            "name": "my-instance", "image": "catalog/echo", "listening_port": 8080,
            "flavor_name": flavor, "containers": [{"region_id": 7,
                                                   "scale": {"min": 1, "max": 1}}]})
        assert created.status_code == 200, created.text
        instance = http.get(f"/v1/projects/{PROJECT}/deployments/my-instance").json()["id"]
        probe = {"exec": {"command": ["ls", "-l"]}, "failure_threshold": 3,
                 "http_get": {"headers": {"Authorization": "Bearer token 123"},
                              "host": "127.0.0.1", "path": "/healthz", "port": 80,
                              "schema": "HTTP"},
                 "initial_delay_seconds": 0, "period_seconds": 5, "success_threshold": 1,
                 "tcp_socket": {"port": 80}, "timeout_seconds": 1}
        flavor_uuid = v2.flavor_id(flavor)
        body = {"api_key_ids": [key_id["id"]], "auth_enabled": False,
                "command": ["nginx", "-g", "daemon off;"],
                "containers": [{"region_id": 7, "scale": {
                    "cooldown_period": 60, "max": 3, "min": 1,
                    "triggers": {"cpu": {"threshold": 80}, "memory": {"threshold": 70}}}}],
                "description": "My first instance",
                "envs": {"DEBUG_MODE": "False", "KEY": "12345"}, "flavor_id": flavor_uuid,
                "image": "nginx:latest",
                "image_registry_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "listening_port": 8080, "name": "my-instance",
                "probes": {kind: {"enabled": True, "probe": probe}
                           for kind in ("liveness_probe", "readiness_probe", "startup_probe")},
                "project_id": PROJECT, "timeout": 120}
        r = http.put(f"/cloud/v2/inference/deployments/{instance}", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["id"] == instance and got["flavor_id"] == flavor_uuid
        assert got["api_key_ids"] == [key_id["id"]] and got["command"] == body["command"]
        assert got["image_registry_id"] == body["image_registry_id"]
        assert got["status"] in {"NEW", "PENDING", "DEPLOYING", "ACTIVE", "PARTIALLYDEPLOYED",
                                 "DISABLED", "ERROR", "FAILED", "DELETING", "DELETED"}
        probe_out = got["probes"]["readiness_probe"]["probe"]
        assert probe_out["http_get"]["path"] == "/healthz" and probe_out["exec"] is None
        assert http.get(f"/cloud/v2/inference/deployments/{instance}").json()["id"] == instance
        bad = http.put(f"/cloud/v2/inference/deployments/{instance}",
                       json={**body, "flavor_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"})
        assert bad.status_code == 400 and bad.headers["x-should-retry"] == "false"
        other = http.put(f"/cloud/v2/inference/deployments/{instance}",
                         json={**body, "project_id": 1})
        assert other.status_code == 400 and "project_id" in other.text
        assert http.delete(f"/cloud/v2/inference/deployments/{instance}").status_code == 200
        assert http.get("/cloud/v2/inference/deployments/nope").status_code == 404
        elsewhere = http.post(f"/cloud/v3/inference/{PROJECT}/deployments", json={
            "name": "elsewhere", "image": "catalog/echo", "listening_port": 8080,
            "flavor_name": flavor, "containers": [{"region_id": 1,
                                                   "scale": {"min": 1, "max": 1}}]})
        assert elsewhere.status_code == 400, elsewhere.text
        assert "7 (local)" in elsewhere.text and "region_id" in elsewhere.text
