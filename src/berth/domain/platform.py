"""What this installation can run: regions, the machine's CPUs, memory and GPUs, flavors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.domain.units import format_size


@dataclass(frozen=True)
class Gpu:
    index: int
    model: str
    memory_mib: int = 0
    compute_capability: str = ""


@dataclass(frozen=True)
class Flavor:
    name: str
    cpu: float
    memory_bytes: int
    gpus: int = 0
    gpu_model: str = ""
    gpu_memory_mib: int = 0
    gpu_compute_capability: str = ""
    description: str = ""


@dataclass(frozen=True)
class Region:
    name: str
    runtime: str  # "process", or a cluster engine's name
    runs_images: bool = False  # whether it can run a container image without a command
    images_off: str = ""  # why it runs no images (podman missing, switched off), if it does not
    number: int = 1  # for APIs that name regions by number (Gcore's region_id)


def no_host_paths(path: str) -> str | None:
    """A host-path lookup that finds nothing (facts that know no file system)."""
    return None


@dataclass(frozen=True)
class PlatformFacts:
    regions: dict[str, Region]
    cpus: int
    memory_bytes: int
    gpus: tuple[Gpu, ...] = ()
    catalog: frozenset[str] = frozenset()
    max_threads: int = 256
    flavors: tuple[Flavor, ...] = field(default=())
    # Host directories a deployment's volumes may mount from (real paths); none: only
    # podman volumes.
    volume_roots: tuple[str, ...] = ()
    # An existing host path's real path (symlinks resolved), or None: the one file-system
    # read validation needs, passed in.
    host_path: Callable[[str], str | None] = no_host_paths

    def flavor(self, name: str) -> Flavor | None:
        return next((f for f in self.flavors if f.name == name), None)

    def gpu_models(self) -> list[str]:
        return sorted({g.model for g in self.gpus})


def _slug(model: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", model.lower()) if w and w != "nvidia"]
    return "-".join(words) or "gpu"


def gpu_type_matches(requested: str, model: str) -> bool:
    """Loose match of a platform's GPU type name ('nvidia-hopper-h100', 'H100') to a model."""
    noise = {"nvidia", "tesla", "ampere", "hopper", "ada", "turing", "volta", "geforce", "rtx"}
    wanted = [w for w in re.split(r"[^a-z0-9]+", requested.lower()) if w and w not in noise]
    have = set(re.split(r"[^a-z0-9]+", model.lower()))
    return bool(wanted) and all(w in have for w in wanted)


def machine_flavors(cpus: int, memory_bytes: int, gpus: tuple[Gpu, ...]) -> tuple[Flavor, ...]:
    """Flavors offered by one machine: CPU shapes up to its size, and 1..n of each GPU model."""
    flavors: list[Flavor] = []
    gib = memory_bytes // 2**30
    size = 1
    while size <= max(cpus, 1):
        mem = max(1, min(gib, size * 2))
        flavors.append(Flavor(
            name=f"cpu-{size}vcpu-{mem}gib", cpu=size, memory_bytes=mem * 2**30,
            description=f"{size} vCPU, {format_size(mem * 2**30)} memory",
        ))
        size *= 2
    by_model: dict[str, list[Gpu]] = {}
    for gpu in gpus:
        by_model.setdefault(gpu.model, []).append(gpu)
    for model, group in sorted(by_model.items()):
        for count in range(1, len(group) + 1):
            share = count / len(gpus)
            cpu = max(1, int(cpus * share))
            mem = max(1, int(gib * share))
            mem_gb = group[0].memory_mib // 1024
            flavors.append(Flavor(
                name=f"gpu-{cpu}vcpu-{mem}gib-{count}x{_slug(model)}-{mem_gb}gb",
                cpu=cpu, memory_bytes=mem * 2**30, gpus=count, gpu_model=model,
                gpu_memory_mib=group[0].memory_mib,
                gpu_compute_capability=group[0].compute_capability,
                description=f"{count}x {model}, {cpu} vCPU, {mem}GiB memory",
            ))
    return tuple(flavors)
