"""The container test images and the private registry, with podman alone (no Berth runtime)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.containers.images import BuiltImages
from tests.containers.registry import PrivateRegistry, free_port

LABEL = "berth.test.images=1"


def podman(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, **(env or {})}, cwd=cwd or "/")


def wait_answer(url: str, seconds: float = 20) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"berth-test-{uuid.uuid4().hex[:12]}"
    yield name
    podman("rm", "--force", "--time", "0", "--ignore", name)


@pytest.mark.parametrize("network", [None, "slirp4netns"], ids=["default", "slirp4netns"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_model_image_answers_predict_on_a_loopback_port(
    test_images: BuiltImages, container_name: str, version: str, network: str | None
) -> None:
    port = free_port()
    net = ["--network", network] if network else []
    started = podman("run", "-d", "--rm", "--init", "--label", LABEL, "--name", container_name,
                     *net, "-p", f"127.0.0.1:{port}:8080", test_images.models[version])
    assert started.returncode == 0, started.stderr

    health = wait_answer(f"http://127.0.0.1:{port}/healthz")
    assert health.json() == {"status": "ok", "version": version}
    answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"x": [1, 2]}, timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert body["echo"] == {"x": [1, 2]} and body["version"] == version
    assert started.stdout.strip().startswith(body["hostname"])  # the container's id

    stopped = podman("stop", "--time", "10", container_name)
    assert stopped.returncode == 0, stopped.stderr  # --init forwards SIGTERM: quick


def test_alloc_beyond_the_memory_limit_is_an_oom_kill(
    test_images: BuiltImages, container_name: str, tmp_path: Path
) -> None:
    port = free_port()
    started = podman("run", "-d", "--init", "--label", LABEL, "--name", container_name,
                     "--memory", "64m", "--memory-swap", "64m", "-p", f"127.0.0.1:{port}:8080",
                     test_images.v1, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    wait_answer(f"http://127.0.0.1:{port}/healthz")
    assert httpx.post(f"http://127.0.0.1:{port}/alloc?mb=8", timeout=5).json() == {"held_mb": 8}
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{port}/alloc?mb=200", timeout=20)
    waited = podman("wait", container_name)
    assert waited.stdout.strip() == "137", waited
    # conmon 2.1.6 (Debian 12) writes its `oom` marker into the cwd of `podman run`, where
    # podman does not look, and .State.OOMKilled stays false; a fixed conmon sets it
    oom_killed = podman("inspect", "--format", "{{.State.OOMKilled}}", container_name).stdout
    assert oom_killed.strip() == "true" or (tmp_path / "oom").exists()


def test_the_private_image_pulls_only_with_the_right_password(
    private_registry: PrivateRegistry,
) -> None:
    reg = private_registry
    podman("rmi", "--ignore", reg.image)  # an earlier test of the session may have pulled it
    assert podman("image", "exists", reg.image).returncode == 1  # a pull really pulls

    wrong = podman("pull", "--quiet", "--tls-verify=false", "--creds", f"{reg.user}:wrong",
                   reg.image)
    assert wrong.returncode != 0
    assert "unauthorized: authentication required" in wrong.stderr, wrong.stderr
    none = podman("pull", "--quiet", "--tls-verify=false", reg.image)
    assert "unauthorized" in none.stderr, none.stderr
    https = podman("pull", "--quiet", "--creds", reg.creds, reg.image)
    assert "server gave HTTP response to HTTPS client" in https.stderr, https.stderr

    pulled = podman("pull", "--quiet", "--tls-verify=false", "--creds", reg.creds, reg.image)
    assert pulled.returncode == 0, pulled.stderr
    assert podman("image", "exists", reg.image).returncode == 0
    assert podman("rmi", reg.image).returncode == 0

    # the same through a registries.conf that marks the registry insecure
    conf = {"CONTAINERS_REGISTRIES_CONF": str(reg.registries_conf)}
    again = podman("pull", "--quiet", "--creds", reg.creds, reg.image, env=conf)
    assert again.returncode == 0, again.stderr
    assert podman("rmi", reg.image).returncode == 0
