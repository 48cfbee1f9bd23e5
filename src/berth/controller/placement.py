"""GPU placement: which free GPUs a replica gets. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from berth.domain.platform import Gpu, PlatformFacts, gpu_type_matches
from berth.domain.spec import DeploymentSpec


@dataclass(frozen=True)
class GpuRequest:
    count: int
    gpu_type: str | None


def gpu_request(spec: DeploymentSpec, facts: PlatformFacts) -> GpuRequest:
    if spec.flavor is not None:
        flavor = facts.flavor(spec.flavor)
        if flavor is not None:
            return GpuRequest(flavor.gpus, flavor.gpu_model or None)
    if spec.resources is not None:
        return GpuRequest(spec.resources.gpus, spec.resources.gpu_type)
    return GpuRequest(0, None)


def place(request: GpuRequest, gpus: tuple[Gpu, ...], in_use: set[int]) -> list[int] | str:
    """The GPU indices to give, or why none can be given now."""
    if request.count == 0:
        return []
    fitting = [g for g in gpus if request.gpu_type is None
               or gpu_type_matches(request.gpu_type, g.model)]
    free = [g.index for g in fitting if g.index not in in_use]
    if len(free) >= request.count:
        return sorted(free)[: request.count]
    kind = f" of type {request.gpu_type}" if request.gpu_type else ""
    return (f"needs {request.count} GPU{'s' if request.count > 1 else ''}{kind}; "
            f"{len(free)} of {len(fitting)} free")
