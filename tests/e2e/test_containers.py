"""Images in podman containers, end to end: a real `berth serve` with the container runtime,
images this test suite builds (tests/containers), a private registry on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.images import BuiltImages
from tests.containers.registry import PrivateRegistry
from tests.e2e.harness import Api, BerthServer, wait_for

pytestmark = pytest.mark.e2e


def containers_of(srv: BerthServer) -> list[dict[str, Any]]:
    """Every container (running or not) this server's installation labelled."""
    done = subprocess.run(["podman", "ps", "-a", "--filter", f"label=berth.owner={srv.owner}",
                           "--format", "json"], capture_output=True, text=True, timeout=60,
                          check=True)
    return list(json.loads(done.stdout or "[]"))


def image_spec(name: str, image: str, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "listening_port": 8080,
            "containers": [{"region": "local", "scale": {"min": replicas, "max": replicas}}],
            "probes": {"readiness": {"http_get": {"path": "/healthz"}, "period_seconds": 0.5}},
            **extra}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, test_images: BuiltImages,
        private_registry: PrivateRegistry) -> Iterator[BerthServer]:
    server = BerthServer(tmp_path_factory.mktemp("berth-containers"), env={
        "BERTH_IMAGE_RUNTIME": "podman",
        "BERTH_INSECURE_REGISTRIES": json.dumps([private_registry.host])}).start()
    try:
        yield server
    finally:
        server.stop()
        assert containers_of(server) == []  # shutdown leaves no container


def test_two_replicas_of_one_image_serve_and_roll_to_a_new_tag_under_load(
        srv: BerthServer, test_images: BuiltImages) -> None:
    with srv.client() as http:
        api = Api(http)
        task = api.create(image_spec("model", test_images.v1))
        assert api.task(task["task_id"], 120)["state"] == "FINISHED"
        d = api.wait_status("model", "ACTIVE", 60)
        assert d["containers"][0]["deploy_status"] == {"ready": 2, "total": 2}
        url = f"{srv.gateway}/e2e/model/predict"
        hosts = {httpx.post(url, json={"i": i}, timeout=10).json()["hostname"]
                 for i in range(20)}
        assert len(hosts) == 2  # both replicas, both listening on 8080 in their containers
        assert len(containers_of(srv)) == 2

        failures: list[str] = []
        versions: set[str] = set()
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=10) as client:
                for _ in range(5000):  # bounded
                    if stop.is_set():
                        return
                    r = client.post(url, json={"load": 1})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        versions.add(r.json()["version"])
        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            r = http.patch(f"{api.base}/model", json={"image": test_images.models["v2"]})
            assert r.status_code == 202, r.text
            assert api.task(r.json()["task_id"], 120)["state"] == "FINISHED"
            wait_for(lambda: "v2" in versions, 30, what="answers from v2")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert failures == []
        assert {"v1", "v2"} <= versions
        wait_for(lambda: len(containers_of(srv)) == 2, 30, what="the old containers removed")


def test_an_oom_kill_is_an_event_and_the_replica_restarts(srv: BerthServer,
                                                         test_images: BuiltImages) -> None:
    with srv.client() as http:
        api = Api(http)
        spec = image_spec("hungry", test_images.v1, 1,
                          resources={"cpu": 0.5, "memory": "64MiB"})
        api.task(api.create(spec)["task_id"], 120)
        api.wait_status("hungry", "ACTIVE", 60)
        (replica,) = api.serving("hungry")
        with pytest.raises(httpx.HTTPError):
            r = httpx.post(f"http://127.0.0.1:{replica['port']}/alloc?mb=300", timeout=30)
            r.raise_for_status()

        def oom() -> list[dict[str, Any]]:
            items = http.get(f"{api.base}/hungry/events").json()["items"]
            return [e for e in items if e["reason"] == "OOMKilled"]
        (event,) = wait_for(oom, 30, what="an OOMKilled event")[:1]
        assert "64MiB" in event["message"]
        wait_for(lambda: api.serving("hungry"), 60, what="the replica restarted")
        assert api.replicas("hungry")[0]["restarts"] >= 1


def test_a_private_image_is_pulled_with_registry_credentials(
        srv: BerthServer, private_registry: PrivateRegistry) -> None:
    with srv.client() as http:
        api = Api(http)
        for name, password in (("good", private_registry.password), ("bad", "wrong")):
            r = http.post("/v1/projects/e2e/registry-credentials", json={
                "name": f"reg-{name}", "registry_url": private_registry.host,
                "username": private_registry.user, "password": password})
            assert r.status_code == 201, r.text
        api.task(api.create(image_spec("private", private_registry.image, 1,
                                       credentials_name="reg-good",
                                       image_pull_policy="Always"))["task_id"], 120)
        api.wait_status("private", "ACTIVE", 90)
        r = httpx.post(f"{srv.gateway}/e2e/private/predict", json={"x": 1}, timeout=10)
        assert r.status_code == 200 and r.json()["version"] == "v1"
        api.create(image_spec("denied", private_registry.image, 1, credentials_name="reg-bad",
                              image_pull_policy="Always"))
        d = api.wait_status("denied", "FAILED", 60)
        assert "pull" in d["status_reason"] and "unauthorized" in d["status_reason"].lower()


def test_kill9_adopts_the_containers_and_delete_leaves_none(tmp_path: Path,
                                                           test_images: BuiltImages) -> None:
    srv = BerthServer(tmp_path / "data", env={"BERTH_IMAGE_RUNTIME": "podman"}).start()
    try:
        with srv.client() as http:
            api = Api(http)
            api.task(api.create(image_spec("survivor", test_images.v1))["task_id"], 120)
            api.wait_status("survivor", "ACTIVE", 60)
            before = sorted(c["Id"] for c in containers_of(srv))
        srv.kill9()
        srv.start()
        with srv.client() as http:
            api = Api(http)
            api.wait_status("survivor", "ACTIVE", 60)
            time.sleep(2)  # a few ticks: nothing is started twice
            assert sorted(c["Id"] for c in containers_of(srv)) == before
            assert httpx.post(f"{srv.gateway}/e2e/survivor/predict", json={},
                              timeout=10).status_code == 200
            api.task(api.act("survivor", "stop"), 60)
            wait_for(lambda: containers_of(srv) == [], 30, what="stop to remove containers")
            api.task(api.act("survivor", "start"), 120)
            api.wait_status("survivor", "ACTIVE", 60)
            r = http.delete(f"{api.base}/survivor")
            assert r.status_code == 202, r.text
            api.task(r.json()["task_id"], 60)
            wait_for(lambda: containers_of(srv) == [], 30, what="delete to remove containers")
    finally:
        srv.stop()
    assert containers_of(srv) == []
