"""The official SDKs (gcore, e2enetworks, scale-gp-beta) create image deployments against a
real `berth serve` running them in podman containers: localhost/berth-test/model:v1, built
by this suite (tests/containers), and a private copy of it pulled with Gcore registry
credentials from a registry on 127.0.0.1. Each reaches its platform's running status and
answers /predict through the gateway from its container."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import requests
from e2enetworks.cloud import tir
from e2enetworks.cloud.tir import client as tir_client
from e2enetworks.cloud.tir import skus as tir_skus
from e2enetworks.cloud.tir.helpers import cpu_plan_short_code
from e2enetworks.cloud.tir.inference import endpoints as tir_endpoints
from gcore import Gcore
from scale_gp_beta import SGPClient
from scale_gp_beta.types.launch_vendor_configuration_param import ModelImage

from tests.containers.images import BuiltImages
from tests.containers.registry import PrivateRegistry
from tests.e2e.harness import BerthServer, wait_for
from tests.e2e.test_containers import containers_of

pytestmark = pytest.mark.e2e

GCORE_PROJECT, TIR_TEAM, TIR_PROJECT, SCALE_ACCOUNT = 7, 11, 22, "acct-ctr"
READY = {"readiness_probe": {"enabled": True, "probe": {
    "http_get": {"path": "/healthz", "port": 8080, "headers": {}, "schema": "HTTP"},
    "period_seconds": 1, "failure_threshold": 3, "success_threshold": 1,
    "initial_delay_seconds": 0, "timeout_seconds": 1}}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, test_images: BuiltImages,
        private_registry: PrivateRegistry) -> Iterator[BerthServer]:
    server = BerthServer(tmp_path_factory.mktemp("berth-sdk-containers"), env={
        "BERTH_IMAGE_RUNTIME": "podman",
        "BERTH_INSECURE_REGISTRIES": json.dumps([private_registry.host])}).start()
    try:
        yield server
    finally:
        server.stop()
        assert containers_of(server) == []


def from_a_container(answer: httpx.Response | Any) -> dict[str, Any]:
    """The model server's /predict answer: v1's, from a container (its own hostname)."""
    body = answer.json() if isinstance(answer, httpx.Response) else answer
    assert isinstance(body, dict), body
    assert body["version"] == "v1" and body["hostname"] != socket.gethostname(), body
    return body


def containers_named(srv: BerthServer, deployment_id: str) -> list[dict[str, Any]]:
    return [c for c in containers_of(srv)
            if c["Labels"].get("berth.deployment") == deployment_id and c["State"] == "running"]


def test_gcore_sdk_deploys_an_image_and_a_private_one_with_registry_credentials(
        srv: BerthServer, test_images: BuiltImages, private_registry: PrivateRegistry) -> None:
    sdk = Gcore(api_key=srv.token, base_url=srv.url, cloud_project_id=GCORE_PROJECT,
                cloud_region_id=1, polling_interval_seconds=1, max_retries=0,
                _strict_response_validation=True)
    with sdk:
        sdk.cloud.inference.registry_credentials.create(
            name="local-registry", registry_url=private_registry.host,
            username=private_registry.user, password=private_registry.password)
        # Not in the store: the pull must use the credentials.
        subprocess.run(["podman", "rmi", "--ignore", private_registry.image],
                       capture_output=True, timeout=60, check=False)
        flavor = sdk.cloud.inference.flavors.list().results[0].name
        for name, image, credentials in (
                ("gcore-model", test_images.v1, None),
                ("gcore-private", private_registry.image, "local-registry")):
            made = sdk.cloud.inference.deployments.create_and_poll(
                name=name, image=image, listening_port=8080, flavor_name=flavor,
                containers=[{"region_id": 1, "scale": {"min": 1, "max": 1}}],
                credentials_name=credentials, probes=cast(Any, READY), api_timeout=120,
                polling_timeout_seconds=90)
            assert made.status == "ACTIVE" and made.image == image
            assert made.containers[0].deploy_status.ready == 1
            assert made.address is not None
            from_a_container(httpx.post(f"{made.address}/predict", json={"sdk": "gcore"},
                                        timeout=10))
            assert made.credentials_name == (credentials or "")
        pulled = subprocess.run(["podman", "image", "exists", private_registry.image],
                                timeout=60, check=False)
        assert pulled.returncode == 0  # pulled for the deployment, with the credentials


@pytest.fixture
def tir_sdk(srv: BerthServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tir.EndPoints]:
    """The TIR SDK pointed at `srv` (see test_dialect_tir.py)."""
    gpu = f"{srv.url}/myaccount/api/v1/gpu/"
    monkeypatch.setattr(tir_endpoints, "BASE_GPU_URL", gpu)
    monkeypatch.setattr(tir_skus, "BASE_GPU_URL", gpu)
    opened: list[requests.Session] = []

    class Tracked(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

    monkeypatch.setattr(tir_client, "Session", Tracked)
    tir.init(api_key="ignored-api-key", access_token=srv.token, team=str(TIR_TEAM),
             project=str(TIR_PROJECT), location="Delhi")
    yield tir.EndPoints()
    for session in opened:
        session.close()


def test_tir_sdk_deploys_an_image(srv: BerthServer, tir_sdk: tir.EndPoints,
                                  test_images: BuiltImages) -> None:
    plan = cpu_plan_short_code(tir_sdk.list_plans("custom")["CPU"][0])
    # The SDK sends image_pull_policy "Always" on every create: a localhost/ image (built
    # on this host, served by no registry) is used from the store.
    ok, created = tir_sdk.create("tir-model", "custom", plan, container_name=test_images.v1,
                                 env_variables=[{"key": "MODE", "value": "a"}], replicas=1)
    assert ok, created

    def running() -> bool:
        ok, got = tir_sdk.get(created.id)
        assert ok and got.status != "Failed", got
        return bool(got.status == "Running")
    wait_for(running, 60, what="Running")
    ok, got = tir_sdk.get(created.id)
    assert got.custom_endpoint_details.container.container_name == test_images.v1
    url = f"{srv.gateway}/tir-{TIR_TEAM}-{TIR_PROJECT}/tir-model"
    from_a_container(httpx.post(f"{url}/predict", json={"sdk": "tir"}, timeout=10))
    assert httpx.get(f"{url}/env", params={"name": "MODE"}, timeout=10).json()["value"] == "a"
    with srv.client() as http:
        native = http.get(f"/v1/projects/tir-{TIR_TEAM}-{TIR_PROJECT}/deployments/tir-model")
    assert len(containers_named(srv, native.json()["id"])) == 1


def test_scale_sdk_deploys_an_image(srv: BerthServer, test_images: BuiltImages) -> None:
    image = cast(ModelImage, {
        "registry": "localhost", "repository": "berth-test/model", "tag": "v1", "command": [],
        "predict_route": "/predict", "healthcheck_route": "/healthz", "readiness_delay": 0,
        "env_vars": {"MODE": "scale"}})
    with SGPClient(api_key=srv.token, account_id=SCALE_ACCOUNT, base_url=srv.url,
                   max_retries=0, _strict_response_validation=True) as sdk:
        created = sdk.models.create(model={
            "name": "scale-model", "model_vendor": "launch", "model_type": "generic",
            "vendor_configuration": {"model_image": image, "model_infra": {
                "endpoint_type": "sync", "cpus": "1", "memory": "256Mi",
                "min_workers": 1, "max_workers": 1}}})

        def ready() -> bool:
            model = sdk.models.retrieve(created.id)
            assert model.status != "failed", model.status_reason
            return model.status == "ready"
        wait_for(ready, 60, every=0.5, what="ready")
        answer = sdk.inference.create(model="launch/scale-model", args={"sdk": "scale"})
        assert from_a_container(answer.response)["echo"] == {"sdk": "scale"}
    with srv.client() as http:
        (native,) = http.get(f"/v1/projects/{SCALE_ACCOUNT}/deployments").json()["items"]
    assert native["image"] == test_images.v1
    from_a_container(httpx.post(f"{srv.gateway}/{SCALE_ACCOUNT}/{native['name']}/predict",
                                json={}, timeout=10))
    assert len(containers_named(srv, native["id"])) == 1
