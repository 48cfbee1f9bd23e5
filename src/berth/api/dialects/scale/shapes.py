"""Scale GP (models v5) <-> Berth shapes. Pure: request bodies to native spec data and
record data, records and deployments to Scale's model JSON.

A Scale model is a dialect record (kind "model", key = the model id) holding what Berth has
no field for (name, type, vendor, metadata, the vendor configuration as given). A `launch`
model also owns one Berth deployment, named from its id so Scale renames never touch it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from berth.api.dialects.request_schema import parse
from berth.api.dialects.scale.models import (
    CPU_RE,
    CREATE,
    VENDOR_CONFIGURATION,
    HostedCreate,
    LaunchCreate,
    LaunchVendorConfiguration,
    LlmEngineCreate,
    ModelInfra,
    PartialLaunchVendorConfiguration,
)
from berth.domain.errors import Conflict, SpecInvalid, Violation
from berth.domain.records import Deployment
from berth.domain.spec import DeploymentSpec, EndpointType
from berth.domain.status import DeploymentStatus

DIALECT, KIND = "scale", "model"
VC, IMG, INFRA = "vendor_configuration", "model_image", "model_infra"
DEFAULT_PORT = 8080
# A deployment still not ready this long after its readiness delay shows deployment_timeout.
DEPLOY_TIMEOUT = timedelta(minutes=15)
STATUS = {
    DeploymentStatus.NEW: "deploying", DeploymentStatus.PENDING: "deploying",
    DeploymentStatus.DEPLOYING: "deploying", DeploymentStatus.ACTIVE: "ready",
    DeploymentStatus.PARTIALLYDEPLOYED: "ready", DeploymentStatus.ERROR: "failed",
    DeploymentStatus.FAILED: "failed", DeploymentStatus.DISABLED: "failed",
    DeploymentStatus.DELETING: "failed", DeploymentStatus.DELETED: "failed",
}
# Native spec fields named back in Scale's terms, longest prefix first.
FIELD_NAMES = [
    ("image", f"{VC}.{IMG}.repository"), ("command", f"{VC}.{IMG}.command"),
    ("envs", f"{VC}.{IMG}.env_vars"), ("listening_port", f"{VC}.{IMG}.env_vars.PORT"),
    ("routes.predict", f"{VC}.{IMG}.predict_route"),
    ("routes.streaming_predict", f"{VC}.{IMG}.streaming_predict_route"),
    ("routes.healthcheck", f"{VC}.{IMG}.healthcheck_route"),
    ("probes.readiness.initial_delay_seconds", f"{VC}.{IMG}.readiness_delay"),
    ("probes", f"{VC}.{IMG}.healthcheck_route"),
    ("resources.cpu", f"{VC}.{INFRA}.cpus"), ("resources.memory", f"{VC}.{INFRA}.memory"),
    ("resources.gpus", f"{VC}.{INFRA}.gpus"), ("resources.gpu_type", f"{VC}.{INFRA}.gpu_type"),
    ("resources", f"{VC}.{INFRA}"),
    ("containers[0].scale.min", f"{VC}.{INFRA}.min_workers"),
    ("containers[0].scale.max", f"{VC}.{INFRA}.max_workers"),
    ("containers[0].scale", f"{VC}.{INFRA}.min_workers"),
    ("per_worker", f"{VC}.{INFRA}.per_worker"), ("endpoint_type", f"{VC}.{INFRA}.endpoint_type"),
    ("async.workers", f"{VC}.{INFRA}.per_worker"), ("async", f"{VC}.{INFRA}.endpoint_type"),
    ("labels", f"{VC}.{INFRA}.labels"), ("auth_enabled", f"{VC}.{INFRA}.public_inference"),
]
COARSE = ("probes", "resources", "containers[0].scale", "async")


def _bad(field: str, rule: str, message: str) -> SpecInvalid:
    return SpecInvalid([Violation(field, rule, message)])


def scale_field(native: str) -> str:
    for prefix, scale in FIELD_NAMES:
        if native == prefix:
            return scale
        if native.startswith((prefix + ".", prefix + "[")):
            return scale if prefix in COARSE else scale + native[len(prefix):]
    return native


def in_scale_terms(exc: SpecInvalid) -> SpecInvalid:
    """A native validation error with its fields named as the Scale request names them."""
    return SpecInvalid([Violation(scale_field(v.field), v.rule, v.message)
                        for v in exc.violations])


def docker_image(registry: str, repository: str, tag: str) -> str:
    """`registry/repository:tag` as Docker normalises it. A `catalog/<name>` repository with
    no registry is Berth's built-in server: as is, or `catalog/<name>:<tag>`; `latest` (as a
    tag or written into the repository) is the catalog entry itself."""
    if repository.startswith("catalog/") and not registry:
        name, colon, written = repository.partition(":")
        tag = tag or (written if colon else "")
        return name if tag in ("", "latest") else f"{name}:{tag}"
    ref = f"{registry.strip('/')}/{repository}" if registry else repository
    first, _, rest = ref.partition("/")
    if not rest:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    if "@" in ref:
        return ref
    return f"{ref}:{tag}" if tag else (ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest")


def stored_config(vc: LaunchVendorConfiguration) -> dict[str, Any]:
    """A vendor configuration as the record keeps it and Scale shows it back: what was sent,
    with `registry`, `tag` and `command` filled."""
    return vc.model_dump(mode="json", exclude_none=True)


def merge_config(stored: dict[str, Any],
                 patch: PartialLaunchVendorConfiguration) -> LaunchVendorConfiguration:
    """Scale's partial vendor_configuration: each key given in model_image / model_infra
    replaces that key (null removes it); the result is checked whole."""
    out = {IMG: dict(stored.get(IMG, {})), INFRA: dict(stored.get(INFRA, {}))}
    for part, given in ((IMG, patch.model_image), (INFRA, patch.model_infra)):
        if given is not None:
            out[part].update(given.model_dump(mode="json", exclude_unset=True))
            out[part] = {k: v for k, v in out[part].items() if v is not None}
    return parse(VENDOR_CONFIGURATION, out, prefix=(VC,))


def _cpus(value: str | int | float) -> float:
    if not isinstance(value, str):
        return float(value)
    match = CPU_RE.match(value)
    assert match is not None  # the model checked it
    amount = float(match.group(1))
    return amount / 1000 if match.group(3) else amount


def _port(envs: dict[str, str]) -> int:
    value = envs.get("PORT", str(DEFAULT_PORT))
    try:
        return int(value)
    except ValueError:
        raise _bad(f"{VC}.{IMG}.env_vars.PORT", "type",
                   f"{value[:50]!r} is not a port number") from None


def _env(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _resources(infra: ModelInfra) -> dict[str, Any] | None:
    """cpus, memory and gpus as native resources; `storage` is not among them (Berth's
    process runtime gives replicas no disk quota: it is kept in the record and shown back)."""
    if infra.cpus is None and infra.memory is None and infra.gpus is None:
        return None
    resources: dict[str, Any] = {"gpus": infra.gpus or 0}
    if infra.cpus is not None:
        resources["cpu"] = _cpus(infra.cpus)
    if infra.memory is not None:
        resources["memory"] = infra.memory
    if infra.gpus and infra.gpu_type is not None:
        resources["gpu_type"] = infra.gpu_type
    return resources


def native_async(infra: ModelInfra, current: DeploymentSpec | None) -> dict[str, Any] | None:
    """The native `async` for a configuration: `endpoint_type: async` turns it on with
    `per_worker` workers (or 1); leaving `async` turns it off (accepted requests still run).
    What was set natively (dataset, routes, retries, ...) is kept."""
    kept = current.async_.model_dump(mode="json") if current is not None else {}
    if infra.endpoint_type == "async":
        return kept | {"enabled": True, "workers": infra.per_worker or 1}
    if current is not None and current.endpoint_type == EndpointType.ASYNC:
        return kept | {"enabled": False}
    return kept or None


def async_route(spec: DeploymentSpec) -> str:
    """The async route name that reaches the predict route: the named target route whose
    path it is, or with none configured the path without its leading '/'."""
    predict = spec.routes.predict
    routes = spec.async_.target_routes
    if not routes:
        return predict.removeprefix("/")
    for name, path in routes.items():
        if path.partition("?")[0] == predict:
            return name
    raise Conflict(f"none of the deployment's async.target_routes ({', '.join(routes)}) "
                   f"reaches the predict route {predict}: add one", name=spec.name)


def to_native(deployment: str, model_name: str, vc: LaunchVendorConfiguration,
              region: str, current: DeploymentSpec | None = None) -> dict[str, Any]:
    """A launch vendor_configuration as native spec data for one deployment (`current`:
    the deployment's spec now, when it has one)."""
    image, infra = vc.model_image, vc.model_infra
    envs = {k: _env(v) for k, v in (image.env_vars or {}).items()}
    streaming = infra.endpoint_type == "streaming"
    command = (image.streaming_command if streaming else None) or image.command
    out: dict[str, Any] = {
        "name": deployment, "description": f"Scale GP model {model_name}"[:1000],
        "image": docker_image(image.registry, image.repository, image.tag),
        "command": command or None, "envs": envs, "listening_port": _port(envs),
        "routes": {k: v for k, v in (("predict", image.predict_route or "/predict"),
                                     ("streaming_predict", image.streaming_predict_route),
                                     ("healthcheck", image.healthcheck_route))
                   if v is not None},
        "labels": infra.labels or {},
    }
    if image.healthcheck_route is not None:
        out["probes"] = {"readiness": {
            "http_get": {"path": image.healthcheck_route}, "period_seconds": 1,
            "initial_delay_seconds": image.readiness_delay or 0}}
    resources = _resources(infra)
    if resources is not None:
        out["resources"] = resources
    most, least = infra.max_workers, infra.min_workers
    if least is None:
        least = min(1, most) if most is not None else 1
    out["containers"] = [{"region": region, "scale": {
        "min": least, "max": most if most is not None else max(least, 1)}}]
    if infra.endpoint_type is not None:
        out["endpoint_type"] = infra.endpoint_type
    if infra.per_worker is not None:
        out["per_worker"] = infra.per_worker
    if infra.public_inference is False:  # private: callers need an API key of the account
        out["auth_enabled"] = True
    queued = native_async(infra, current)
    if queued is not None:
        out["async"] = queued
    return out


Created = LaunchCreate | HostedCreate


def parse_create(body: Any) -> Created:
    """A create body, checked; raises SpecInvalid naming the field."""
    created = parse(CREATE, body, tagged=True)
    assert not isinstance(created, LlmEngineCreate)  # its model refuses it
    return created


def record_data(created: Created) -> dict[str, Any]:
    """A create body as record data (no deployment yet)."""
    vc = created.vendor_configuration
    return {"name": created.name, "model_type": created.model_type,
            "model_vendor": created.model_vendor, "model_metadata": created.model_metadata,
            VC: stored_config(vc) if vc is not None else None}


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _status(data: dict[str, Any], d: Deployment | None, now: datetime) -> tuple[str, str]:
    if data["model_vendor"] != "launch":
        return "ready", f"served by {data['model_vendor']}"
    if d is None or d.status == DeploymentStatus.DELETED:
        return "failed", "its Berth deployment no longer exists"
    status, reason = STATUS[d.status], d.status_reason
    if d.status == DeploymentStatus.DISABLED:
        reason = f"stopped: {reason}"
    if status == "deploying" and d.status_since is not None:
        delay = (data.get(VC) or {}).get(IMG, {}).get("readiness_delay") or 0
        if now - d.status_since > DEPLOY_TIMEOUT + timedelta(seconds=delay):
            status = "deployment_timeout"
    if status == "ready" and d.halted_reason:
        reason = f"update halted, previous version serving: {d.halted_reason}"
    return status, reason


def _infra_out(stored: dict[str, Any], d: Deployment | None) -> dict[str, Any]:
    infra = dict(stored)
    if d is not None:
        spec = d.spec
        infra.update(min_workers=spec.containers[0].scale.min,
                     max_workers=spec.containers[0].scale.max,
                     endpoint_type=spec.endpoint_type.value, labels=dict(spec.labels))
        if spec.per_worker is not None:
            infra["per_worker"] = spec.per_worker
    return infra


def to_scale(model_id: str, created_at: datetime, data: dict[str, Any], d: Deployment | None,
             now: datetime) -> dict[str, Any]:
    status, reason = _status(data, d, now)
    vc = data.get(VC)
    return {
        "id": model_id, "object": "model", "name": data["name"],
        "model_type": data["model_type"], "model_vendor": data["model_vendor"],
        "model_metadata": data.get("model_metadata") or {},
        "created_at": _iso(created_at), "created_by_user_id": data["created_by_user_id"],
        "created_by_identity_type": "user", "status": status, "status_reason": reason,
        "model_availability": "available" if status == "ready" else "unavailable",
        VC: {IMG: vc[IMG], INFRA: _infra_out(vc[INFRA], d)} if vc else None,
    }


def page(items: list[dict[str, Any]], limit: int, starting_after: str | None,
         ending_before: str | None) -> tuple[list[dict[str, Any]], bool]:
    """Cursor paging over sorted items: those after (or before) the item with that id."""
    ids = [i["id"] for i in items]
    if starting_after is not None:
        if starting_after not in ids:
            raise _bad("starting_after", "known_id", f"no model {starting_after!r}")
        rest = items[ids.index(starting_after) + 1:]
        return rest[:limit], len(rest) > limit
    if ending_before is not None:
        if ending_before not in ids:
            raise _bad("ending_before", "known_id", f"no model {ending_before!r}")
        before = items[:ids.index(ending_before)]
        return before[-limit:], len(before) > limit
    return items[:limit], len(items) > limit
