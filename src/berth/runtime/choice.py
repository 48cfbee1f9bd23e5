"""Which runtimes `berth serve` runs replicas with: always processes (catalog images and
commands), and podman containers for images when `image_runtime` allows it and podman is
installed and configured."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from berth.runtime.base import Runtime
from berth.runtime.container.argv import container_name
from berth.runtime.container.podman import Podman
from berth.runtime.container.runtime import ContainerRuntime
from berth.runtime.podman_setup import (
    berth_cgroup_parent,
    config_files,
    find_problems,
    read_host_facts,
    read_layers,
)
from berth.settings import Settings


@dataclass(frozen=True)
class ImageRuntime:
    """The container runtime, or why there is none (shown at start)."""

    runtime: Runtime | None
    summary: str
    exec_prefix: Callable[[str], list[str]] | None = None  # replica id -> `podman exec NAME`
    off_reason: str = ""  # why there is no container runtime


def podman_problem(settings: Settings) -> str | None:
    """Why podman cannot run Berth's containers here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc slirp4netns)"
    try:
        layers = read_layers(config_files(os.environ, settings.podman_config))
    except ValueError as exc:
        return f"podman's configuration cannot be read: {exc}"
    problems = find_problems(layers, read_host_facts())
    if problems:
        return ("podman's configuration needs " + "; ".join(p.describe() for p in problems)
                + " (run `berth doctor --fix`)")
    return None


def image_runtime(settings: Settings, owner: str) -> ImageRuntime:
    if settings.image_runtime == "none":
        return ImageRuntime(None, "off (image_runtime: none): catalog images and commands only",
                            off_reason="image_runtime is none")
    problem = podman_problem(settings)
    if problem is not None:
        if settings.image_runtime == "podman":
            raise SystemExit(f"berth: image_runtime is podman, but {problem}")
        return ImageRuntime(None, f"off: {problem}; catalog images and commands only",
                            off_reason=problem)

    env = {"CONTAINERS_CONF": str(settings.podman_config)} if settings.podman_config else None
    podman = Podman(env=env) if env else Podman()
    runtime = ContainerRuntime(
        settings.logs_dir, owner, run_dir=settings.runtime_dir / "containers", podman=podman,
        cgroup_parent=berth_cgroup_parent(read_host_facts()),
        insecure_registries=frozenset(settings.insecure_registries))
    where = f", config {settings.podman_config}" if settings.podman_config else ""

    def exec_prefix(replica_id: str) -> list[str]:
        # Run with the server's environment by the prober: the config goes along.
        conf = [f"CONTAINERS_CONF={settings.podman_config}"] if settings.podman_config else []
        return ["env", *conf, *podman.argv("exec", container_name(replica_id))] if conf \
            else podman.argv("exec", container_name(replica_id))
    return ImageRuntime(runtime, f"podman ({podman.binary}{where})", exec_prefix)
