"""Whether podman can run here, and the rule for tests that need it: skip off CI, fail on CI."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import NoReturn

import pytest

from berth.runtime import podman_setup


def on_ci() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BERTH_CI"))


@functools.cache
def podman_usable() -> str | None:
    """None when podman can run containers the way Berth needs, else the reason it cannot."""
    if os.geteuid() != 0:
        return "Berth runs podman as root; these tests are not running as root"
    for tool in ("podman", "runc", "slirp4netns"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc slirp4netns)"
    try:
        facts = podman_setup.read_host_facts()
        layers = podman_setup.read_layers(podman_setup.config_files(os.environ))
    except ValueError as exc:
        return f"podman's config: {exc}"
    problems = podman_setup.find_problems(layers, facts)
    if problems:
        return ("podman is not configured for Berth (run `berth doctor --fix`): "
                + "; ".join(p.describe() for p in problems))
    try:
        info = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                              capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "`podman info` did not answer in 60 s"
    if info.returncode != 0:
        return f"`podman info` failed: {info.stderr.strip()[-500:]}"
    return None


def require_podman() -> None:
    """Skip the calling test (with the reason) when podman cannot run; on CI, fail instead."""
    reason = podman_usable()
    if reason is None:
        return
    if on_ci():
        pytest.fail(f"podman is needed on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def fail_or_skip(reason: str) -> NoReturn:
    if on_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
