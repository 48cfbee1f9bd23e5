"""Foundry <-> Berth shapes. Pure: runtime configurations to native spec data, records to
Foundry's LiveDeployment JSON, native validation errors to Foundry's named errors.

Every Foundry object lives in the Berth project `foundry`. Foundry deploys model versions;
Berth runs the image named by the environment variable BERTH_IMAGE, listening on BERTH_PORT.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from berth.api.dialects.foundry.models import (
    UNSUPPORTED,
    Duration,
    LiveDeploymentRuntimeConfiguration,
)
from berth.domain.errors import BerthError, SpecInvalid
from berth.domain.platform import PlatformFacts, gpu_type_matches
from berth.domain.records import Deployment
from berth.domain.spec import DeploymentSpec
from berth.domain.status import DeploymentStatus

DIALECT = "foundry"
PROJECT = "foundry"
MODEL_KIND = "model"
LIVE_KIND = "live-deployment"
BRANCH_KIND = "model-branch"  # one row per model branch with a live deployment: a lock
LIVE_RID = "ri.foundry-ml-live.main.live-deployment."
MODEL_RID = "ri.models.main.model."
VERSION_RID = "ri.models.main.model-version."
IMAGE_ENV = "BERTH_IMAGE"
PORT_ENV = "BERTH_PORT"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 32
# Foundry's GpuType enum (foundry_sdk.v2.models.models.GpuType).
GPU_TYPES = ("A100", "A10G", "A16", "B200", "B300", "H100", "H200", "L4", "L40S", "T4", "V100")
STATUS_CODES = {"INVALID_ARGUMENT": 400, "UNAUTHORIZED": 401, "PERMISSION_DENIED": 403,
                "NOT_FOUND": 404, "CONFLICT": 409, "REQUEST_ENTITY_TOO_LARGE": 413,
                "INTERNAL": 500, "TIMEOUT": 500}
STATE = {
    DeploymentStatus.NEW: "STARTING", DeploymentStatus.PENDING: "STARTING",
    DeploymentStatus.DEPLOYING: "STARTING", DeploymentStatus.ACTIVE: "ACTIVE",
    DeploymentStatus.PARTIALLYDEPLOYED: "DEGRADED", DeploymentStatus.ERROR: "FAILED",
    DeploymentStatus.FAILED: "FAILED", DeploymentStatus.DISABLED: "DISABLED",
    DeploymentStatus.DELETING: "DISABLED", DeploymentStatus.DELETED: "DISABLED",
}
# Foundry's RID syntax (foundry_sdk core.RID); sources are Connection RIDs.
RID_RE = re.compile(
    r"^ri\.[a-z][a-z0-9-]*\.([a-z0-9][a-z0-9\-]*)?\.[a-z][a-z0-9-]*\.[a-zA-Z0-9._-]+$")
# A live-deployment record whose Berth deployment does not exist yet still holds its model
# branch this long: the deployment is being created.
CLAIM_GRACE = timedelta(seconds=60)
GONE = (DeploymentStatus.DELETING, DeploymentStatus.DELETED)
SECONDS = {"MILLISECONDS": 0.001, "SECONDS": 1, "MINUTES": 60, "HOURS": 3600, "DAYS": 86400,
           "WEEKS": 604800}


class FoundryError(BerthError):
    """A Foundry error by name: errorCode (which fixes the HTTP status) and parameters."""

    def __init__(self, name: str, error_code: str, text: str, **parameters: Any) -> None:
        super().__init__(text)
        self.parameters = parameters
        self.name = name
        self.error_code = error_code
        self.status = STATUS_CODES[error_code]


def invalid(message: str, **parameters: Any) -> FoundryError:
    return FoundryError("InvalidLiveDeploymentConfiguration", "INVALID_ARGUMENT", message,
                        message=message, **parameters)


def live_not_found(rid: str) -> FoundryError:
    return FoundryError("LiveDeploymentNotFound", "NOT_FOUND",
                        f"live deployment {rid} not found", liveDeploymentRid=rid)


def model_not_found(rid: str) -> FoundryError:
    return FoundryError("ModelNotFound", "NOT_FOUND", f"model {rid} not found", modelRid=rid)


def already_exists(model_rid: str, branch: str, rid: str) -> FoundryError:
    """Foundry's SDK names no error for this; Foundry's `<Thing>AlreadyExists` pattern."""
    return FoundryError("LiveDeploymentAlreadyExists", "CONFLICT",
                        f"model {model_rid} already has live deployment {rid} on branch "
                        f"{branch!r}; replace that one instead", modelRid=model_rid,
                        branch=branch, liveDeploymentRid=rid)


def sources_locked(rid: str) -> FoundryError:
    return FoundryError("LiveDeploymentSourcesCannotBeUpdatedWhileRunning", "CONFLICT",
                        "sources can only be changed while the live deployment is disabled",
                        liveDeploymentRid=rid)


def version_not_found(model_rid: str, version_rid: str) -> FoundryError:
    return FoundryError("ModelVersionNotFound", "NOT_FOUND",
                        f"model version {version_rid} not found", modelRid=model_rid,
                        modelVersionRid=version_rid)


def branch_key(model_rid: str, branch: str) -> str:
    """The key of a model branch's row (branch names may be long or hold any character)."""
    return model_rid + "@" + hashlib.sha256(branch.encode()).hexdigest()[:32]


def holds_branch(claimed_at: datetime, d: Deployment | None, now: datetime) -> bool:
    """Whether a live-deployment record still occupies its model branch: its deployment is
    there and not being deleted, or it is still being created."""
    if d is None:
        return now - claimed_at < CLAIM_GRACE
    return d.status not in GONE


def deployment_name(uuid_hex: str) -> str:
    """A valid Berth deployment name for a live deployment's uuid."""
    return "fd-" + uuid_hex.replace("-", "")[:12]


def available_gpu_types(facts: PlatformFacts) -> list[str]:
    models = facts.gpu_models()
    return [t for t in GPU_TYPES if any(gpu_type_matches(t, m) for m in models)]


def max_gpu_count(facts: PlatformFacts, gpu_type: str | None) -> int:
    return len([g for g in facts.gpus if gpu_type is None or gpu_type_matches(gpu_type, g.model)])


def _seconds(duration: Duration) -> int:
    return round(duration.value * SECONDS[duration.unit])


def config_invalid(exc: SpecInvalid) -> BerthError:
    """A request body's violations in Foundry's terms: the named error of an unsupported
    deployment type or a bad runtimeConfiguration; else the default invalid argument."""
    if any(v.rule == UNSUPPORTED for v in exc.violations):
        return FoundryError("UnsupportedLiveDeployment", "INVALID_ARGUMENT",
                            "only direct live deployments (deploymentType.type 'direct') "
                            "are supported")
    if all(v.field.startswith("runtimeConfiguration") for v in exc.violations):
        return invalid(exc.message, violations=[
            {"field": v.field, "rule": v.rule, "message": v.message} for v in exc.violations])
    return exc


def check_sources(sources: list[str]) -> list[str]:
    """`sources`: Foundry Connection RIDs. Berth has no connections to attach, so they are
    only kept and shown back."""
    bad = [s for s in sources if not RID_RE.match(s)]
    if bad:
        raise invalid(f"sources must be Connection RIDs (ri.<service>.<instance>.<type>."
                      f"<locator>); not {', '.join(repr(b[:100]) for b in bad[:5])}")
    if len(set(sources)) != len(sources):
        raise invalid("sources lists a Connection RID twice")
    return list(sources)


def _image(envs: dict[str, str], current: DeploymentSpec | None) -> tuple[str, int]:
    """The image and port Berth runs: BERTH_IMAGE / BERTH_PORT; without BERTH_IMAGE on a
    replace (whose model version does not change), those the deployment runs now."""
    kept = current if current is not None and IMAGE_ENV not in envs else None
    image = kept.image if kept is not None else envs.get(IMAGE_ENV)
    if not image:
        raise invalid(f"Berth runs the image named by the environment variable {IMAGE_ENV} "
                      f"(e.g. {IMAGE_ENV}=catalog/echo); set it in environmentVariables",
                      environmentVariable=IMAGE_ENV)
    port_text = envs.get(PORT_ENV, str(kept.listening_port if kept else DEFAULT_PORT))
    if not port_text.isdecimal() or len(port_text) > 5:
        raise invalid(f"{PORT_ENV} must be a port number, got {port_text[:50]!r}",
                      environmentVariable=PORT_ENV)
    return image, int(port_text)


def to_native(config: LiveDeploymentRuntimeConfiguration, name: str, facts: PlatformFacts,
              current: DeploymentSpec | None = None) -> dict[str, Any]:
    """A Foundry runtimeConfiguration as native spec data for the deployment `name`
    (`current`: its spec now, when the configuration replaces it)."""
    envs = config.environment_variables
    image, port = _image(envs, current)
    resources: dict[str, Any] = {}
    if config.cpu is not None:
        resources["cpu"] = config.cpu
    if config.memory is not None:
        resources["memory"] = config.memory
    if config.thread_count is not None:
        resources["threads"] = config.thread_count
    gpu = config.gpu
    if gpu is not None:
        if gpu.count < 1:
            raise FoundryError("InvalidGpuCount", "INVALID_ARGUMENT",
                               "the GPU count must be at least 1", providedGpuCount=gpu.count,
                               maxGpuCount=max_gpu_count(facts, gpu.type))
        resources["gpus"] = gpu.count
        if gpu.type is not None:
            resources["gpu_type"] = gpu.type
    scale: dict[str, Any] = {"min": config.min_replicas, "max": config.max_replicas}
    scaling = config.scaling_configuration
    if scaling is not None:
        scale["cooldown_period"] = _seconds(scaling.scale_down_delay)
        scale["scale_up_delay"] = _seconds(scaling.scale_up_delay)
        threads = config.thread_count or DEFAULT_THREADS
        scale["triggers"] = {"concurrency": {
            "target": max(scaling.scale_up_load_threshold * threads, 0.01)}}
    region = next(iter(facts.regions), "local")
    out: dict[str, Any] = {
        "name": name, "image": image, "listening_port": port,
        "envs": {k: v for k, v in envs.items() if k not in (IMAGE_ENV, PORT_ENV)},
        "resources": resources, "containers": [{"region": region, "scale": scale}]}
    if config.thread_count is not None:  # Foundry's thread count is also its request limit
        out["per_worker"] = config.thread_count
    return out


def translate(exc: SpecInvalid, config: LiveDeploymentRuntimeConfiguration,
              facts: PlatformFacts) -> BerthError:
    """The native validation error as Foundry's named error, where Foundry has one."""
    gpu = config.gpu
    for v in exc.violations:
        if v.rule == "max_threads":
            return FoundryError("ThreadCountTooHigh", "INVALID_ARGUMENT", v.message,
                                maxThreadCount=facts.max_threads,
                                providedThreadCount=config.thread_count)
        if v.rule == "available_gpu_type" and gpu is not None:
            return FoundryError("GpuTypeNotAvailable", "INVALID_ARGUMENT", v.message,
                                requestedGpuType=gpu.type,
                                availableGpuTypes=available_gpu_types(facts))
        if v.rule == "max_gpus" and gpu is not None:
            return FoundryError("InvalidGpuCount", "INVALID_ARGUMENT", v.message,
                                providedGpuCount=gpu.count,
                                maxGpuCount=max_gpu_count(facts, gpu.type))
    return exc


def runtime_configuration(spec: DeploymentSpec, scaling: Any = None,
                          sources: list[str] | None = None) -> dict[str, Any]:
    """The native spec as a Foundry runtimeConfiguration; `scaling` is the caller's own
    scalingConfiguration, shown as sent (its delays in the caller's units), and `sources`
    the Connection RIDs kept as given."""
    res = spec.resources
    scale = spec.containers[0].scale
    envs = dict(spec.envs) | {IMAGE_ENV: spec.image}
    if spec.listening_port != DEFAULT_PORT:
        envs[PORT_ENV] = str(spec.listening_port)
    out: dict[str, Any] = {"minReplicas": scale.min, "maxReplicas": scale.max,
                           "cpu": res.cpu if res else None,
                           "memory": res.memory if res else None,
                           "sources": list(sources or []), "environmentVariables": envs}
    if res is not None and res.gpus:
        out["gpu"] = {"count": res.gpus} | ({"type": res.gpu_type} if res.gpu_type else {})
    if res is not None and res.threads is not None:
        out["threadCount"] = res.threads
    if scaling is not None:
        out["scalingConfiguration"] = scaling
    return {k: v for k, v in out.items() if v is not None}


def status(d: Deployment) -> dict[str, Any]:
    state = STATE[d.status]
    ready = sum(c.ready for c in d.containers)
    return {"state": state, "isReady": state in ("ACTIVE", "DEGRADED") and ready > 0}


def to_foundry(d: Deployment, rid: str, record: dict[str, Any]) -> dict[str, Any]:
    """A Berth deployment and its Foundry record as a LiveDeployment."""
    return {"rid": rid,
            "modelVersion": {"modelRid": record["modelRid"],
                             "modelVersionRid": record["modelVersionRid"]},
            "branch": record.get("branch"),
            "runtimeConfiguration": runtime_configuration(d.spec, record.get("scaling"),
                                                          record.get("sources")),
            "status": status(d)}


def model_version(rid: str, created_at: datetime) -> dict[str, Any]:
    """A live deployment's synthetic model version: Berth runs images, so it has no model
    API, conda environment or repository of its own."""
    return {"rid": rid, "modelApi": {"inputs": [], "outputs": []}, "condaRequirements": [],
            "backingRepositories": [], "createdTime": created_at.isoformat().replace(
                "+00:00", "Z"), "source": {"type": "importedContainerizedModel"}}


def error_body(exc: BerthError, instance_id: str) -> tuple[int, dict[str, Any]]:
    """Foundry's error shape {errorCode, errorName, errorInstanceId, parameters}."""
    if isinstance(exc, FoundryError):
        return exc.status, {"errorCode": exc.error_code, "errorName": exc.name,
                            "errorInstanceId": instance_id, "parameters": exc.parameters}
    status = 400 if exc.status in (400, 422) else exc.status
    code = {400: "INVALID_ARGUMENT", 401: "UNAUTHORIZED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 409: "CONFLICT",
            413: "REQUEST_ENTITY_TOO_LARGE"}.get(status, "INTERNAL")
    name = {"INVALID_ARGUMENT": "Default:InvalidArgument", "UNAUTHORIZED": "MissingCredentials"
            if "missing" in exc.message else "Default:Unauthorized",
            "PERMISSION_DENIED": "Default:PermissionDenied", "NOT_FOUND": "Default:NotFound",
            "CONFLICT": "Default:Conflict", "REQUEST_ENTITY_TOO_LARGE":
            "Default:RequestEntityTooLarge"}.get(code, "Default:Internal")
    parameters: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, SpecInvalid):
        parameters["violations"] = [{"field": v.field, "rule": v.rule, "message": v.message}
                                    for v in exc.violations]
    return STATUS_CODES.get(code, status), {"errorCode": code, "errorName": name,
                                            "errorInstanceId": instance_id,
                                            "parameters": parameters}
