"""Spec validation: parse user input into a spec, then check it against the machine."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from berth import __version__
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import PlatformFacts, gpu_type_matches
from berth.domain.spec import DeploymentSpec

CATALOG_PREFIX = "catalog/"
# The tags a catalog image may be written with: each names the built-in server of this Berth.
CATALOG_TAGS = ("latest", __version__)


def split_catalog_image(image: str) -> tuple[str, str | None, str | None]:
    """`catalog/echo:latest` -> ("catalog/echo", "latest", None); a digest comes third."""
    ref, _, digest = image.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:], digest or None
    return ref, None, digest or None


def catalog_name(image: str) -> str | None:
    """The catalog image `image` names (a tag of CATALOG_TAGS allowed), or None."""
    if not image.startswith(CATALOG_PREFIX):
        return None
    name, tag, digest = split_catalog_image(image)
    if digest is not None or (tag is not None and tag not in CATALOG_TAGS):
        return None
    return name


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + ("schema" if part == "schema_" else str(part))
    return path or "body"


def violations_from(error: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[Violation]:
    found = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        found.append(Violation(field_path(prefix + tuple(item["loc"])), str(item["type"]), message))
    return found


def parse_spec(data: Any) -> DeploymentSpec:
    """Build a spec from JSON-like data; SpecInvalid names every broken field."""
    if not isinstance(data, dict):
        raise SpecInvalid([Violation("body", "type", "the deployment spec must be a JSON object")])
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(violations_from(exc)) from None


def check_spec(spec: DeploymentSpec, facts: PlatformFacts) -> list[Violation]:
    """Rules that need to know the platform: regions, catalog, flavors, GPUs, threads."""
    found: list[Violation] = []
    seen: set[str] = set()
    for i, container in enumerate(spec.containers):
        where = f"containers[{i}].region"
        if container.region in seen:
            found.append(Violation(where, "unique", f"region {container.region!r} is listed twice"))
        seen.add(container.region)
        if container.region not in facts.regions:
            known = ", ".join(sorted(facts.regions)) or "none"
            found.append(Violation(
                where, "known_region",
                f"unknown region {container.region!r}; this installation has: {known}"))
    found += _check_image(spec, facts)
    found += _check_resources(spec, facts)
    found += _check_volumes(spec, facts)
    return found


def _check_image(spec: DeploymentSpec, facts: PlatformFacts) -> list[Violation]:
    if spec.image.startswith(CATALOG_PREFIX):
        name, tag, digest = split_catalog_image(spec.image)
        if name not in facts.catalog:
            names = ", ".join(sorted(facts.catalog))
            return [Violation("image", "known_catalog_image",
                              f"{name!r} is not in the catalog; available: {names}")]
        if digest is not None or (tag is not None and tag not in CATALOG_TAGS):
            what = "a digest" if digest is not None else f"tag {tag!r}"
            tags = " or ".join(f"{name}:{t}" for t in CATALOG_TAGS)
            return [Violation("image", "catalog_tag",
                              f"{spec.image!r}: catalog images are built into Berth, so {what} "
                              f"names nothing here; write {name} or {tags}")]
        return []
    if spec.command:
        return []
    found = []
    for container in spec.containers:
        region = facts.regions.get(container.region)
        if region is not None and not region.runs_images:
            image_regions = sorted(r.name for r in facts.regions.values() if r.runs_images)
            found.append(Violation(
                "command", "required_for_process_runtime",
                f"region {region.name!r} uses the {region.runtime} runtime, which runs catalog "
                f"images ({', '.join(sorted(facts.catalog))}) or a command; image "
                f"{spec.image!r} needs `command`, or a region whose runtime runs images"
                + (f" ({', '.join(image_regions)})" if image_regions else
                   " (none is configured here)")
                + (f"; containers are off here: {region.images_off}" if region.images_off
                   else "")))
            break
    return found


def _check_resources(spec: DeploymentSpec, facts: PlatformFacts) -> list[Violation]:
    found: list[Violation] = []
    gpus, gpu_type, threads, where = 0, None, None, "resources"
    if spec.flavor is not None:
        flavor = facts.flavor(spec.flavor)
        if flavor is None:
            names = ", ".join(f.name for f in facts.flavors)
            return [Violation("flavor", "known_flavor",
                              f"unknown flavor {spec.flavor!r}; available: {names}")]
        gpus, gpu_type = flavor.gpus, flavor.gpu_model or None
    elif spec.resources is not None:
        res = spec.resources
        gpus, gpu_type, threads = res.gpus, res.gpu_type, res.threads
        if res.cpu > facts.cpus:
            found.append(Violation(f"{where}.cpu", "max_cpu",
                                   f"{res.cpu} CPUs requested; this machine has {facts.cpus}"))
        if res.memory_bytes > facts.memory_bytes:
            found.append(Violation(f"{where}.memory", "max_memory",
                                   f"{res.memory} requested; this machine has "
                                   f"{facts.memory_bytes // 2**20}MiB"))
    if threads is not None and threads > facts.max_threads:
        found.append(Violation(f"{where}.threads", "max_threads",
                               f"thread count {threads} exceeds the maximum {facts.max_threads}"))
    models = facts.gpu_models()
    if gpu_type is not None and not any(gpu_type_matches(gpu_type, m) for m in models):
        found.append(Violation(f"{where}.gpu_type", "available_gpu_type",
                               f"GPU type {gpu_type!r} is not available; available: "
                               f"{', '.join(models) or 'none'}"))
        return found
    if gpus > 0:
        matching = [g for g in facts.gpus
                    if gpu_type is None or gpu_type_matches(gpu_type, g.model)]
        if gpus > len(matching):
            found.append(Violation(f"{where}.gpus", "max_gpus",
                                   f"{gpus} GPUs requested; at most {len(matching)} "
                                   f"{'of type ' + gpu_type + ' ' if gpu_type else ''}"
                                   "available on this machine"))
    return found


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _check_volumes(spec: DeploymentSpec, facts: PlatformFacts) -> list[Violation]:
    """Volumes mount into containers: the deployment must run in one, and a host path must
    lie under the installation's `volume_host_paths` and exist (checked in that order, so
    nothing is told about paths outside them)."""
    if not spec.volumes:
        return []
    if catalog_name(spec.image) is not None:
        return [Violation("volumes", "container_only",
                          f"{spec.image!r} is a catalog image, which runs as a local process "
                          "and mounts no volumes; volumes need a container image")]
    for container in spec.containers:
        region = facts.regions.get(container.region)
        if region is not None and not region.runs_images:
            return [Violation("volumes", "container_only",
                              f"region {region.name!r} uses the {region.runtime} runtime, "
                              "which runs replicas as local processes and mounts no "
                              "volumes; volumes need a region whose runtime runs containers "
                              "(podman: `image_runtime`)")]
    found: list[Violation] = []
    roots = facts.volume_roots
    allowed = ", ".join(roots)
    for i, volume in enumerate(spec.volumes):
        where, source = f"volumes[{i}].source", volume.source
        if not source.startswith("/"):
            continue  # a podman volume: made empty on first use when missing
        if not _under(source, roots):
            found.append(Violation(where, "allowed_host_path", (
                f"host path {source!r} is outside the directories deployments may mount "
                f"here ({allowed})") if roots else (
                f"this installation lets deployments mount no host path (its admin lists "
                f"directories in `volume_host_paths`); mount a podman volume by name, or "
                f"ask for {source!r} to be allowed")))
            continue
        real = facts.host_path(source)
        if real is None:
            found.append(Violation(where, "host_path_exists",
                                   f"host path {source!r} does not exist on this machine"))
        elif not _under(real, roots):
            found.append(Violation(where, "allowed_host_path",
                                   f"host path {source!r} resolves to {real!r}, outside the "
                                   f"directories deployments may mount here ({allowed})"))
    return found


def validate(data: Any, facts: PlatformFacts) -> DeploymentSpec:
    spec = parse_spec(data)
    problems = check_spec(spec, facts)
    if problems:
        raise SpecInvalid(problems)
    return spec
