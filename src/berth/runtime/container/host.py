"""What the host offers and keeps: GPU devices, image registries, cgroups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

from berth.runtime.container.argv import CONTROL_DEVICES, GpuHost, parse_cdi_list

_CTK_SECONDS = 10.0


async def detect_gpu_host() -> GpuHost:
    """CDI devices (`nvidia-ctk cdi list`, when installed) and /dev/nvidia* nodes."""
    cdi: frozenset[str] = frozenset()
    ctk = shutil.which("nvidia-ctk")
    if ctk is not None:
        with contextlib.suppress(OSError, TimeoutError):
            proc = await asyncio.create_subprocess_exec(
                ctk, "cdi", "list", stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            try:
                async with asyncio.timeout(_CTK_SECONDS):
                    out, _ = await proc.communicate()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            cdi = parse_cdi_list(out.decode(errors="replace"))
    return GpuHost(cdi, await asyncio.to_thread(_device_nodes))


def registry_host(image: str) -> str:
    """The registry part of an image reference ("" for a short name such as vllm/x)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def remove_empty_cgroups(parent: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """Remove `parent` (and the empty `conmon` child podman leaves in it) from each cgroup
    hierarchy, where empty; a cgroup still in use stays."""
    relative = parent.strip("/")
    if not relative or ".." in relative.split("/"):
        return
    try:
        hierarchies = [root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]
    except OSError:
        return
    for hierarchy in hierarchies:
        for path in (hierarchy / relative / "conmon", hierarchy / relative):
            with contextlib.suppress(OSError):
                path.rmdir()


def _device_nodes() -> frozenset[str]:
    nodes = {p for p in CONTROL_DEVICES if os.path.exists(p)}
    with contextlib.suppress(OSError):
        nodes |= {f"/dev/{n}" for n in os.listdir("/dev")
                  if n.startswith("nvidia") and n[6:].isdigit()}
    return frozenset(nodes)


class Workdirs:
    """One empty private directory per replica that podman (and conmon, which drops its
    `oom` file there) runs in for the replica's container."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rid: str) -> Path:
        return self.root / rid

    def fresh(self, rid: str) -> Path:
        path = self.path(rid)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        return path

    def remove(self, rid: str) -> None:
        shutil.rmtree(self.path(rid), ignore_errors=True)

    def remove_all_but(self, keep: set[str]) -> None:
        with contextlib.suppress(OSError):
            for path in self.root.iterdir():
                if path.name not in keep:
                    shutil.rmtree(path, ignore_errors=True)
