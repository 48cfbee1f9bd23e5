"""`berth doctor`'s checks of this machine's podman, over a command runner that tests replace."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.runtime import podman_setup
from berth.runtime.podman_setup import HostFacts, Layers

MIN_PODMAN = (4, 0)
RUN_CHECK_SLOW_S = 10.0  # a store first used with other settings waits ~20 s for conmon


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    def message(self) -> str:
        text = (self.stderr or self.stdout).strip()
        return text.splitlines()[-1] if text else f"exit status {self.returncode}"


Runner = Callable[[Sequence[str], float], CommandResult]


def subprocess_runner(extra_env: Mapping[str, str] | None = None) -> Runner:
    env = {**os.environ, **(extra_env or {})}

    def run(args: Sequence[str], timeout: float) -> CommandResult:
        try:
            proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except FileNotFoundError:
            return CommandResult(127, "", f"{args[0]}: command not found")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{' '.join(args)} did not finish in {timeout:g} s")
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


@dataclass
class DoctorHost:
    """The machine as the checks see it; every field is a seam."""

    run: Runner
    which: Callable[[str], str | None]
    facts: HostFacts
    read_layers: Callable[[], Layers]
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def real(cls, podman_config: Path | None = None) -> DoctorHost:
        env = {"CONTAINERS_CONF": str(podman_config)} if podman_config else None
        return cls(run=subprocess_runner(env), which=shutil.which,
                   facts=podman_setup.read_host_facts(),
                   read_layers=lambda: podman_setup.read_layers(
                       podman_setup.config_files(os.environ, podman_config)))


def parse_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def check_podman(host: DoctorHost) -> Check:
    if host.which("podman") is None:
        return Check("podman", False, "not installed", "apt-get install podman")
    result = host.run(["podman", "version", "--format", "{{.Client.Version}}"], 30)
    if result.returncode != 0:
        return Check("podman", False, f"`podman version` failed: {result.message()}")
    version = parse_version(result.stdout)
    if version is None:
        return Check("podman", False, f"unreadable version {result.stdout.strip()!r}")
    shown = ".".join(map(str, version))
    if version < MIN_PODMAN:
        return Check("podman", False, f"version {shown}; Berth needs 4.0 or later",
                     "install podman 4 or later")
    return Check("podman", True, f"version {shown}")


def check_tool(host: DoctorHost, name: str, package: str) -> Check:
    path = host.which(name)
    if path is None:
        return Check(name, False, "not installed", f"apt-get install {package}")
    result = host.run([name, "--version"], 30)
    if result.returncode != 0:
        return Check(name, False, f"`{name} --version` failed: {result.message()}")
    first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else "?"
    return Check(name, True, f"{path}: {first}")


def check_config(host: DoctorHost) -> Check:
    try:
        layers = host.read_layers()
    except (ValueError, OSError) as exc:
        return Check("config", False, str(exc), "fix the file, then berth doctor --fix")
    problems = podman_setup.find_problems(layers, host.facts)
    files = ", ".join(name for name, _ in layers) or "no containers.conf"
    if problems:
        return Check("config", False, "\n".join(p.describe() for p in problems),
                     "berth doctor --fix")
    return Check("config", True, f"runtime runc, cgroupfs, events file, ulimits ok ({files})")


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def check_store(host: DoctorHost) -> Check:
    if host.which("podman") is None:
        return Check("store", False, "podman is not installed")
    result = host.run(["podman", "info", "--format", "json"], 60)
    if result.returncode != 0:
        return Check("store", False, f"`podman info` failed: {result.message()}")
    try:
        info = json.loads(result.stdout)
    except ValueError:
        return Check("store", False, "`podman info` printed no JSON")
    found = {
        "runtime": _dig(info, "host", "ociRuntime", "name"),
        "cgroup_manager": _dig(info, "host", "cgroupManager"),
        "events_logger": _dig(info, "host", "eventLogger"),
    }
    images = _dig(info, "store", "imageStore", "number")
    detail = (f"{_dig(info, 'store', 'graphDriverName')} at {_dig(info, 'store', 'graphRoot')}"
              f" ({images} images); runtime {found['runtime']}, cgroups "
              f"{found['cgroup_manager']} ({_dig(info, 'host', 'cgroupVersion')}), "
              f"events {found['events_logger']}")
    wrong = [f"{key} is {value}, want {podman_setup.WANTED_ENGINE[key]}"
             for key, value in found.items() if value != podman_setup.WANTED_ENGINE[key]]
    if _dig(info, "host", "security", "rootless"):
        wrong.append("podman runs rootless; Berth runs it as root")
    if wrong:
        return Check("store", False, detail + "\n" + "; ".join(wrong), "berth doctor --fix")
    return Check("store", True, detail)


def check_run(host: DoctorHost) -> Check:
    """Run a container (the host's / as an overlay rootfs: no image needed) under Berth's cgroup."""
    if host.which("podman") is None:
        return Check("run", False, "podman is not installed")
    args = ["podman", "run", "--rm", "--network", "none", "--cgroup-parent",
            podman_setup.berth_cgroup_parent(host.facts), "--rootfs", "/:O", "/bin/true"]
    started = host.clock()
    result = host.run(args, 120)
    elapsed = host.clock() - started
    if result.returncode != 0:
        return Check("run", False, f"`{' '.join(args)}` failed: {result.message()}")
    if elapsed > RUN_CHECK_SLOW_S:
        return Check("run", False, f"a container took {elapsed:.1f} s to run (conmon waits: "
                     "the store was first used with other settings?)",
                     "check the config; `podman system reset` if the store holds nothing needed")
    return Check("run", True, f"ran a container in {elapsed:.2f} s")


def diagnose(host: DoctorHost, *, run_check: bool = False) -> list[Check]:
    checks = [check_podman(host), check_tool(host, "runc", "runc"),
              check_tool(host, "slirp4netns", "slirp4netns"), check_config(host),
              check_store(host)]
    if run_check:
        checks.append(check_run(host))
    return checks
