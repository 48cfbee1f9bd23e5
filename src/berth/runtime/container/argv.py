"""`podman run` for a LaunchSpec: name, labels, port, envs, limits, GPUs, mounts. Pure.

Envs: a value reaches the container as `-e NAME` with the value in podman's own environment
(podman copies it), so a secret never shows in a process listing; only names that steer
podman itself (PATH, HOME, LD_*, CONTAINERS_*, ...) are passed as `-e NAME=VALUE`.

GPUs: the host's GPU N is passed as the CDI device `nvidia.com/gpu=N` when `nvidia-ctk cdi
list` names it (the toolkit then also mounts the driver's libraries), else as /dev/nvidiaN
plus the control devices present. Inside, the container sees only those GPUs, numbered from
0: CUDA_VISIBLE_DEVICES counts them so (0,1,..), NVIDIA_VISIBLE_DEVICES names the host's
indexes (what the NVIDIA hook, where installed, reads). A CPU replica gets no device and
NVIDIA_VISIBLE_DEVICES=void, so an image that asks for all GPUs gets none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from berth.runtime.base import LaunchSpec, Mount

OWNER_LABEL = "berth.owner"
REPLICA_LABEL = "berth.replica"
DEPLOYMENT_LABEL = "berth.deployment"
NAME_PREFIX = "berth-"
CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                   "/dev/nvidia-modeset")

_STEERING = frozenset({
    "PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "NOTIFY_SOCKET", "REGISTRY_AUTH_FILE",
    "SHELL", "USER", "LOGNAME", "PWD", "TERM", "GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT",
    "GOTRACEBACK", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
    "NO_PROXY",
})
_STEERING_PREFIXES = ("LD_", "LC_", "CONTAINERS_", "_CONTAINERS", "XDG_", "BUILDAH_", "PODMAN_",
                      "STORAGE_", "DBUS_", "SSL_")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def container_name(replica_id: str) -> str:
    return NAME_PREFIX + replica_id


def check_id(what: str, value: str) -> str:
    """A replica or deployment id, used in a container name, a label and a file name."""
    if not _ID.fullmatch(value) or len(value) > 200:
        raise ValueError(f"{what} {value!r}: letters, digits, '_', '.' or '-' only, "
                         "starting with a letter or digit")
    return value


@dataclass(frozen=True)
class GpuHost:
    """What this host offers for GPUs: CDI device names and /dev/nvidia* nodes present."""

    cdi_devices: frozenset[str] = frozenset()
    device_nodes: frozenset[str] = frozenset()


def parse_cdi_list(output: str) -> frozenset[str]:
    """The device names in `nvidia-ctk cdi list` output (one per line, after a header)."""
    return frozenset(line.strip() for line in output.splitlines()
                     if re.fullmatch(r"[\w.-]+/[\w.-]+=\S+", line.strip()))


def gpu_args(gpus: tuple[int, ...], host: GpuHost) -> tuple[list[str], dict[str, str]]:
    """`--device` arguments and the envs that go with them."""
    if not gpus:
        return [], {"NVIDIA_VISIBLE_DEVICES": "void"}
    args: list[str] = []
    if all(f"nvidia.com/gpu={g}" in host.cdi_devices for g in gpus):
        for g in gpus:
            args += ["--device", f"nvidia.com/gpu={g}"]
    else:
        missing = [g for g in gpus if f"/dev/nvidia{g}" not in host.device_nodes]
        if missing:
            raise ValueError(
                f"GPU {', '.join(map(str, missing))}: this host has neither a CDI device "
                f"nvidia.com/gpu=N (`nvidia-ctk cdi list`) nor /dev/nvidiaN for it")
        for g in gpus:
            args += ["--device", f"/dev/nvidia{g}"]
        for path in CONTROL_DEVICES:
            if path in host.device_nodes:
                args += ["--device", path]
    envs = {"NVIDIA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus),
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(gpus)))}
    return args, envs


def mount_arg(mount: Mount) -> str:
    """`--mount` value: type=bind|volume,source=..,target=..[,ro=true]."""
    if not mount.target.startswith("/") or "," in mount.target or "=" in mount.target:
        raise ValueError(f"mount target {mount.target!r}: an absolute path without ',' or '='")
    if mount.kind == "bind":
        if "," in mount.source or "=" in mount.source:
            raise ValueError(f"mount source {mount.source!r}: a path without ',' or '='")
    elif not _VOLUME.fullmatch(mount.source):
        raise ValueError(f"mount source {mount.source!r}: an absolute host path or a volume "
                         "name (letters, digits, '_', '.', '-')")
    value = f"type={mount.kind},source={mount.source},target={mount.target}"
    return value + (",ro=true" if mount.read_only else "")


def shown_command(launch: LaunchSpec) -> str:
    """The command the container runs, as errors name it: 'vllm', or the image's own."""
    argv = [*(launch.entrypoint or []), *launch.command]
    if launch.entrypoint is None and not launch.command:
        return "the image's command"
    return repr(_port(argv[0], launch.listening_port)) if argv else "the image's command"


def _port(arg: str, port: int) -> str:
    return arg.replace("${PORT}", str(port))


def _steers_podman(name: str) -> bool:
    return name in _STEERING or name.startswith(_STEERING_PREFIXES)


def env_args(envs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """`-e` arguments and the values podman's own environment must carry for them."""
    args: list[str] = []
    carried: dict[str, str] = {}
    for name, value in envs.items():
        if not name or any(c in name for c in "=*\0") or any(c.isspace() for c in name):
            raise ValueError(f"env name {name!r}: no '=', '*', NUL or whitespace")
        if "\0" in value:
            raise ValueError(f"env {name}: the value holds a NUL character")
        if _steers_podman(name):
            args += ["-e", f"{name}={value}"]
        else:
            args += ["-e", name]
            carried[name] = value
    return args, carried


def limit_args(launch: LaunchSpec) -> list[str]:
    args: list[str] = []
    if launch.cpus is not None:
        if not launch.cpus > 0:
            raise ValueError(f"cpus {launch.cpus}: must be above 0")
        args += ["--cpus", f"{launch.cpus:g}"]
    if launch.memory_bytes is not None:
        if launch.memory_bytes < 6 * 2**20:  # podman's own minimum
            raise ValueError(f"memory {launch.memory_bytes} bytes: at least 6MiB")
        # swap as large as memory: no swap, so going over the limit is an OOM kill
        args += ["--memory", str(launch.memory_bytes), "--memory-swap", str(launch.memory_bytes)]
    if launch.pids_limit is not None:
        if launch.pids_limit < 1:
            raise ValueError(f"pids_limit {launch.pids_limit}: at least 1")
        args += ["--pids-limit", str(launch.pids_limit)]
    return args


@dataclass(frozen=True)
class RunCommand:
    args: list[str]  # after `podman`
    env: dict[str, str] = field(default_factory=dict, repr=False)  # for podman's environment


def run_command(
    launch: LaunchSpec, *, owner: str, host_port: int, host_ip: str = "127.0.0.1",
    network: str | None = None, log_max_size: str | None = None,
    cgroup_parent: str | None = None, gpu_host: GpuHost | None = None,
) -> RunCommand:
    image = launch.image
    if not image or image.startswith("-") or any(c.isspace() for c in image):
        raise ValueError(f"image {image!r}: a container replica needs an image reference")
    rid = check_id("replica id", launch.replica_id)
    did = check_id("deployment id", launch.deployment_id)
    port = launch.listening_port
    args = ["run", "--detach", "--init", "--pull", "never", "--name", container_name(rid),
            "--label", f"{OWNER_LABEL}={owner}", "--label", f"{REPLICA_LABEL}={rid}",
            "--label", f"{DEPLOYMENT_LABEL}={did}",
            "--publish", f"{host_ip}:{host_port}:{port}/tcp"]
    if network:
        args += ["--network", network]
    args += ["--log-driver", "k8s-file"]  # the file Berth follows (see logs.py)
    if log_max_size:
        args += ["--log-opt", f"max-size={log_max_size}"]
    if cgroup_parent:
        args += ["--cgroup-parent", cgroup_parent]
    args += limit_args(launch)
    devices, gpu_envs = gpu_args(launch.gpus, gpu_host or GpuHost())
    args += devices
    for mount in launch.mounts:
        args += ["--mount", mount_arg(mount)]
    envs = dict(launch.envs)
    envs.update(PORT=str(port), BERTH_REPLICA_ID=rid, BERTH_DEPLOYMENT_ID=did)
    envs.update(gpu_envs)
    e_args, carried = env_args(envs)
    args += e_args
    if launch.entrypoint is not None:
        args += ["--entrypoint", json.dumps([_port(a, port) for a in launch.entrypoint])]
    args.append(image)
    args += [_port(arg, port) for arg in launch.command]
    return RunCommand(args, carried)
