"""Replicas as podman containers (see `runtime.py`)."""

from berth.runtime.container.podman import Podman, PodmanError
from berth.runtime.container.pull import ImagePullFailed
from berth.runtime.container.runtime import ContainerRuntime, oom_reason

__all__ = ["ContainerRuntime", "ImagePullFailed", "Podman", "PodmanError", "oom_reason"]
