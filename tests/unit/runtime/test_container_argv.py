"""`podman run` arguments from a LaunchSpec: labels, port, envs, limits, GPUs, mounts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from berth.runtime.base import LaunchSpec, Mount
from berth.runtime.container.argv import (
    GpuHost,
    env_args,
    gpu_args,
    mount_arg,
    parse_cdi_list,
    run_command,
    shown_command,
)

BASE = LaunchSpec("r1", "d1", [], image="localhost/berth-test/model:v1")


def flags(args: list[str], flag: str) -> list[str]:
    """The values given to `flag`, in order."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def test_a_plain_image_runs_detached_with_init_labels_and_a_loopback_port() -> None:
    command = run_command(BASE, owner="inst-1", host_port=40123)
    args = command.args
    assert args[:4] == ["run", "--detach", "--init", "--pull"]
    assert flags(args, "--pull") == ["never"]
    assert flags(args, "--name") == ["berth-r1"]
    assert flags(args, "--label") == ["berth.owner=inst-1", "berth.replica=r1",
                                      "berth.deployment=d1"]
    assert flags(args, "--publish") == ["127.0.0.1:40123:8080/tcp"]
    assert flags(args, "--log-driver") == ["k8s-file"]
    assert args[-1] == "localhost/berth-test/model:v1"  # no command: the image's own
    for absent in ("--cpus", "--memory", "--pids-limit", "--device", "--mount", "--network",
                   "--entrypoint", "--cgroup-parent", "--log-opt"):
        assert absent not in args
    assert flags(args, "-e") == ["PORT", "BERTH_REPLICA_ID", "BERTH_DEPLOYMENT_ID",
                                 "NVIDIA_VISIBLE_DEVICES"]
    assert command.env == {"PORT": "8080", "BERTH_REPLICA_ID": "r1", "BERTH_DEPLOYMENT_ID": "d1",
                           "NVIDIA_VISIBLE_DEVICES": "void"}


def test_limits_network_cgroup_entrypoint_and_command_with_port() -> None:
    launch = replace(BASE, cpus=0.5, memory_bytes=64 * 2**20, pids_limit=100,
                     listening_port=9000, entrypoint=["python3", "-m", "srv"],
                     command=["--port=${PORT}", "--verbose"])
    args = run_command(launch, owner="o", host_port=40000, network="slirp4netns",
                       cgroup_parent="/process_api/x/berth", log_max_size="16m").args
    assert flags(args, "--cpus") == ["0.5"]
    assert flags(args, "--memory") == [str(64 * 2**20)]
    assert flags(args, "--memory-swap") == [str(64 * 2**20)]  # no swap beyond the limit
    assert flags(args, "--pids-limit") == ["100"]
    assert flags(args, "--network") == ["slirp4netns"]
    assert flags(args, "--cgroup-parent") == ["/process_api/x/berth"]
    assert flags(args, "--log-driver") == ["k8s-file"]
    assert flags(args, "--log-opt") == ["max-size=16m"]
    assert flags(args, "--publish") == ["127.0.0.1:40000:9000/tcp"]
    assert json.loads(flags(args, "--entrypoint")[0]) == ["python3", "-m", "srv"]
    assert args[-3:] == [BASE.image, "--port=9000", "--verbose"]
    assert shown_command(launch) == "'python3'"
    assert shown_command(BASE) == "the image's command"
    assert shown_command(replace(BASE, command=["vllm", "serve"])) == "'vllm'"


def test_secret_values_travel_in_podmans_environment_not_its_arguments() -> None:
    launch = replace(BASE, envs={"HF_TOKEN": "hf_secret", "PATH": "/opt/bin:/usr/bin",
                                 "LD_LIBRARY_PATH": "/opt/lib", "MULTI": "a\nb", "EMPTY": ""})
    command = run_command(launch, owner="o", host_port=1)
    assert "hf_secret" not in " ".join(command.args)
    assert command.env["HF_TOKEN"] == "hf_secret" and command.env["MULTI"] == "a\nb"
    assert command.env["EMPTY"] == ""
    # names that would steer podman itself are given as NAME=VALUE instead
    assert "PATH=/opt/bin:/usr/bin" in flags(command.args, "-e")
    assert "LD_LIBRARY_PATH=/opt/lib" in flags(command.args, "-e")
    assert "PATH" not in command.env and "LD_LIBRARY_PATH" not in command.env
    # the runtime's own envs win over the user's
    clash = run_command(replace(BASE, envs={"PORT": "1"}), owner="o", host_port=1)
    assert clash.env["PORT"] == "8080"


@pytest.mark.parametrize("name", ["", "A=B", "GLOB*", "WITH SPACE", "NUL\0"])
def test_env_names_podman_would_misread_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="env name"):
        env_args({name: "x"})
    with pytest.raises(ValueError, match="NUL"):
        env_args({"OK": "a\0b"})


def test_gpus_as_cdi_devices_when_the_host_has_a_cdi_spec() -> None:
    host = GpuHost(cdi_devices=parse_cdi_list(
        "INFO[0000] Found 3 CDI devices\nnvidia.com/gpu=0\nnvidia.com/gpu=1\n"
        "nvidia.com/gpu=GPU-8f2c\nnvidia.com/gpu=all\n"))
    assert host.cdi_devices == {"nvidia.com/gpu=0", "nvidia.com/gpu=1",
                                "nvidia.com/gpu=GPU-8f2c", "nvidia.com/gpu=all"}
    args, envs = gpu_args((1, 0), host)
    assert args == ["--device", "nvidia.com/gpu=1", "--device", "nvidia.com/gpu=0"]
    assert envs == {"NVIDIA_VISIBLE_DEVICES": "1,0", "CUDA_VISIBLE_DEVICES": "0,1"}


def test_gpus_as_device_nodes_without_cdi() -> None:
    host = GpuHost(device_nodes=frozenset({"/dev/nvidia0", "/dev/nvidia2", "/dev/nvidiactl",
                                           "/dev/nvidia-uvm"}))
    args, envs = gpu_args((2,), host)
    assert flags(args, "--device") == ["/dev/nvidia2", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    assert envs == {"NVIDIA_VISIBLE_DEVICES": "2", "CUDA_VISIBLE_DEVICES": "0"}
    with pytest.raises(ValueError, match="GPU 3: this host has neither"):
        gpu_args((2, 3), host)
    launch = replace(BASE, gpus=(2,), envs={"CUDA_VISIBLE_DEVICES": ""})
    command = run_command(launch, owner="o", host_port=1, gpu_host=host)
    assert flags(command.args, "--device")[0] == "/dev/nvidia2"
    assert command.env["CUDA_VISIBLE_DEVICES"] == "0"  # the placement wins over the spec's


def test_a_cpu_replica_gets_no_gpu() -> None:
    assert gpu_args((), GpuHost(cdi_devices=frozenset({"nvidia.com/gpu=0"}))) == (
        [], {"NVIDIA_VISIBLE_DEVICES": "void"})


def test_mounts_are_read_only_binds_or_volumes() -> None:
    assert mount_arg(Mount("/srv/models", "/models")) == (
        "type=bind,source=/srv/models,target=/models,ro=true")
    assert mount_arg(Mount("hf-cache", "/root/.cache", read_only=False)) == (
        "type=volume,source=hf-cache,target=/root/.cache")
    args = run_command(replace(BASE, mounts=(Mount("/a", "/b"), Mount("v", "/c"))),
                       owner="o", host_port=1).args
    assert flags(args, "--mount") == ["type=bind,source=/a,target=/b,ro=true",
                                      "type=volume,source=v,target=/c,ro=true"]


@pytest.mark.parametrize("mount, field", [
    (Mount("/a", "relative"), "target"), (Mount("/a", "/b,ro=false"), "target"),
    (Mount("/a,b", "/c"), "source"), (Mount("../up", "/c"), "source"),
    (Mount("", "/c"), "source"),
])
def test_mounts_podman_would_misread_are_refused(mount: Mount, field: str) -> None:
    with pytest.raises(ValueError, match=f"mount {field}"):
        mount_arg(mount)


@pytest.mark.parametrize("change, rule", [
    ({"image": None}, "needs an image"), ({"image": "--privileged"}, "needs an image"),
    ({"image": "a b"}, "needs an image"), ({"replica_id": "../x"}, "replica id"),
    ({"deployment_id": "a/b"}, "deployment id"), ({"cpus": 0.0}, "cpus"),
    ({"memory_bytes": 1024}, "memory"), ({"pids_limit": 0}, "pids_limit"),
])
def test_specs_that_cannot_run_are_refused_naming_the_field(
    change: dict[str, object], rule: str,
) -> None:
    with pytest.raises(ValueError, match=rule):
        run_command(replace(BASE, **change), owner="o", host_port=1)  # type: ignore[arg-type]


def test_registry_credentials_never_show_in_a_launch_spec_repr() -> None:
    launch = replace(BASE, registry_auth=("registry.example.com", "bob", "hunter2"))
    assert "hunter2" not in repr(launch)
