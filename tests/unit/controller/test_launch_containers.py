"""What a replica runs when images run in containers: the launch spec, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from berth.controller.launch import PIDS_LIMIT, launch_spec, limits, runs_in_container
from berth.runtime.base import Mount
from tests.fakes.builders import deployment, facts, replica


def _spec(**spec: Any) -> Any:
    return deployment(1, **spec)


@pytest.mark.parametrize(("image", "command", "containers", "container"), [
    ("catalog/echo", None, True, False),  # the catalog is always a local process
    ("vllm/vllm-openai:latest", None, True, True),
    ("python:3.12", ["python3", "-m", "http.server"], True, True),
    ("python:3.12", ["python3", "-m", "http.server"], False, False),  # no container runtime
])
def test_which_replicas_run_in_a_container(image: str, command: list[str] | None,
                                           containers: bool, container: bool) -> None:
    d = _spec(image=image, command=command)
    assert runs_in_container(d.spec, containers) is container
    launch = launch_spec(d, replica(d, "r1"), containers=containers, facts=facts())
    assert (launch.image is not None) is container


def test_a_container_launch_carries_the_image_limits_and_opened_credentials() -> None:
    d = _spec(image="127.0.0.1:5000/private/model:v1", command=["python3", "/srv/m.py"],
              credentials_name="reg", resources={"cpu": 0.5, "memory": "256MiB"},
              envs={"MODEL": "m"}, listening_port=8080)
    asked: list[tuple[str, str]] = []

    def pull_auth(project: str, name: str) -> tuple[str, str, str]:
        asked.append((project, name))
        return ("127.0.0.1:5000", "user", "secret")

    launch = launch_spec(d, replica(d, "r1"), containers=True, facts=facts(),
                         pull_auth=pull_auth)
    assert launch.image == "127.0.0.1:5000/private/model:v1"
    assert launch.entrypoint == ["python3", "/srv/m.py"] and launch.command == []
    assert (launch.cpus, launch.memory_bytes, launch.pids_limit) == (0.5, 256 * 2**20,
                                                                     PIDS_LIMIT)
    assert launch.registry_auth == ("127.0.0.1:5000", "user", "secret")
    assert asked == [("p", "reg")]
    assert launch.envs["PORT"] == "8080" and launch.envs["MODEL"] == "m"
    assert launch.envs["CUDA_VISIBLE_DEVICES"] == ""  # no GPU placed
    assert "secret" not in repr(launch)


def test_limits_come_from_resources_else_the_flavor_else_none() -> None:
    f = facts()
    flavor = f.flavors[0]
    assert limits(_spec(resources={"cpu": 2, "memory": "1GiB"}).spec, f) == (2, 2**30)
    assert limits(_spec(flavor=flavor.name).spec, f) == (flavor.cpu, flavor.memory_bytes)
    assert limits(_spec().spec, f) == (None, None)


def test_volumes_become_the_container_mounts() -> None:
    d = _spec(image="localhost/model:v1", volumes=[
        {"source": "/models/llama", "target": "/mnt/models"},
        {"source": "hf-cache", "target": "/root/.cache", "read_only": False}])
    launch = launch_spec(d, replica(d, "r1"), containers=True, facts=facts())
    assert launch.mounts == (Mount("/models/llama", "/mnt/models", True),
                             Mount("hf-cache", "/root/.cache", False))
    assert [m.kind for m in launch.mounts] == ["bind", "volume"]


def test_a_replica_with_volumes_is_not_started_as_a_process() -> None:
    """Validation refuses this; a server restarted without podman meets it: the start fails
    saying why, rather than running the image's command without its files."""
    d = _spec(image="localhost/model:v1", command=["serve"],
              volumes=[{"source": "/models", "target": "/mnt/models"}])
    with pytest.raises(ValueError, match="volumes need a container runtime"):
        launch_spec(d, replica(d, "r1"), containers=False, facts=facts())


@pytest.mark.parametrize(("image", "policy", "effective"), [
    ("localhost/berth-test/model:v1", "Always", "IfNotPresent"),  # built here: never pulled
    ("localhost/berth-test/model:v1", "Never", "Never"),
    ("localhost:5000/model:v1", "Always", "Always"),  # a registry on this host
    ("docker.io/library/python:3.12", "Always", "Always"),
])
def test_always_pulls_what_a_registry_serves(image: str, policy: str, effective: str) -> None:
    d = _spec(image=image, image_pull_policy=policy)
    assert launch_spec(d, replica(d, "r1"), containers=True, facts=facts()).pull_policy == effective
