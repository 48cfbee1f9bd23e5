"""Scale GP (models v5) <-> Berth shapes. Pure: request bodies to native spec data and
record data, records and deployments to Scale's model JSON.

A Scale model is a dialect record (kind "model", key = the model id) holding what Berth has
no field for (name, type, vendor, metadata, the vendor configuration as given). A `launch`
model also owns one Berth deployment, named from its id so Scale renames never touch it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from berth.domain.errors import SpecInvalid, Violation
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus

DIALECT, KIND = "scale", "model"
VC, IMG, INFRA = "vendor_configuration", "model_image", "model_infra"
TYPES = ("generic", "completion", "chat_completion")
DEPLOYED_VENDORS = ("launch", "llmengine")
HOSTED_VENDORS = ("openai", "cohere", "vertex_ai", "anthropic", "azure", "gemini", "model_zoo",
                  "bedrock", "xai", "fireworks_ai")
CREATE_FIELDS = {"name", "model_type", "model_vendor", VC, "model_metadata", "on_conflict"}
IMAGE_FIELDS = {"registry", "repository", "tag", "command", "predict_route",
                "streaming_predict_route", "streaming_command", "request_schema",
                "response_schema", "env_vars", "readiness_delay", "healthcheck_route"}
INFRA_FIELDS = {"endpoint_type", "cpus", "gpus", "gpu_type", "memory", "storage", "min_workers",
                "max_workers", "per_worker", "high_priority", "labels", "public_inference"}
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
    ("resources.storage", f"{VC}.{INFRA}.storage"), ("resources", f"{VC}.{INFRA}"),
    ("containers[0].scale.min", f"{VC}.{INFRA}.min_workers"),
    ("containers[0].scale.max", f"{VC}.{INFRA}.max_workers"),
    ("containers[0].scale", f"{VC}.{INFRA}.min_workers"),
    ("per_worker", f"{VC}.{INFRA}.per_worker"), ("endpoint_type", f"{VC}.{INFRA}.endpoint_type"),
    ("labels", f"{VC}.{INFRA}.labels"),
]
COARSE = ("probes", "resources", "containers[0].scale")
CPU_RE = re.compile(r"^(\d+(\.\d+)?)(m?)$")


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
    """`registry/repository:tag` as Docker normalises it; `catalog/...` names pass through."""
    if repository.startswith("catalog/") and not registry and not tag:
        return repository
    ref = f"{registry.strip('/')}/{repository}" if registry else repository
    first, _, rest = ref.partition("/")
    if not rest:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    if "@" in ref:
        return ref
    return f"{ref}:{tag}" if tag else (ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest")


def _dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(field, "type", "must be an object")
    return value


def _unknown(value: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(value) - known)
    if extra:
        raise SpecInvalid([Violation(f"{where}.{k}" if where else k, "extra_forbidden",
                                     "unknown field") for k in extra])


def _str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(field, "type", "must be a list of strings")
    return value


def normalise_config(vc: Any) -> dict[str, Any]:
    """A launch vendor_configuration, checked and with Scale's required fields filled."""
    vc = _dict(vc, VC)
    _unknown(vc, {IMG, INFRA}, VC)
    image = dict(_dict(vc.get(IMG), f"{VC}.{IMG}"))
    infra = dict(_dict(vc.get(INFRA), f"{VC}.{INFRA}"))
    _unknown(image, IMAGE_FIELDS, f"{VC}.{IMG}")
    _unknown(infra, INFRA_FIELDS, f"{VC}.{INFRA}")
    if not isinstance(image.get("repository"), str) or not image["repository"]:
        raise _bad(f"{VC}.{IMG}.repository", "required", "a non-empty string is required")
    for key in ("registry", "tag"):
        if not isinstance(image.setdefault(key, ""), str):
            raise _bad(f"{VC}.{IMG}.{key}", "type", "must be a string")
    image["command"] = _str_list(image.get("command"), f"{VC}.{IMG}.command")
    for key in ("env_vars", "request_schema", "response_schema"):
        if key in image:
            _dict(image[key], f"{VC}.{IMG}.{key}")
    delay = image.get("readiness_delay")
    if delay is not None and (not isinstance(delay, int) or isinstance(delay, bool)
                              or delay < 0):
        raise _bad(f"{VC}.{IMG}.readiness_delay", "type", "must be a whole number >= 0")
    return {IMG: image, INFRA: infra}


def merge_config(old: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Scale's partial vendor_configuration: model_image / model_infra keys replace one by one."""
    patch = _dict(patch, VC)
    _unknown(patch, {IMG, INFRA}, VC)
    out = {IMG: dict(old.get(IMG, {})), INFRA: dict(old.get(INFRA, {}))}
    for part in (IMG, INFRA):
        out[part].update(_dict(patch.get(part), f"{VC}.{part}"))
    return out


def _cpus(value: Any) -> float:
    field = f"{VC}.{INFRA}.cpus"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = CPU_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise _bad(field, "cpu", f"{value!r} is not a CPU amount such as 2, '0.5' or '500m'")
    amount = float(match.group(1))
    return amount / 1000 if match.group(3) else amount


def _port(envs: dict[str, Any]) -> int:
    value = envs.get("PORT", DEFAULT_PORT)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"{VC}.{IMG}.env_vars.PORT", "type",
                   f"{value!r} is not a port number") from None


def _env(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def to_native(deployment: str, model_name: str, vc: dict[str, Any],
              region: str) -> dict[str, Any]:
    """A normalised launch vendor_configuration as native spec data for one deployment."""
    image, infra = vc[IMG], vc[INFRA]
    envs = {str(k): _env(v) for k, v in (image.get("env_vars") or {}).items()}
    streaming = infra.get("endpoint_type") == "streaming"
    command = (image.get("streaming_command") if streaming else None) or image["command"]
    out: dict[str, Any] = {
        "name": deployment, "description": f"Scale GP model {model_name}"[:1000],
        "image": docker_image(image["registry"], image["repository"], image["tag"]),
        "command": command or None, "envs": envs, "listening_port": _port(envs),
        "routes": {k: v for k, v in (("predict", image.get("predict_route") or "/predict"),
                                     ("streaming_predict", image.get("streaming_predict_route")),
                                     ("healthcheck", image.get("healthcheck_route")))
                   if v is not None},
        "labels": infra.get("labels") or {},
    }
    if image.get("healthcheck_route") is not None:
        out["probes"] = {"readiness": {
            "http_get": {"path": image["healthcheck_route"]}, "period_seconds": 1,
            "initial_delay_seconds": image.get("readiness_delay") or 0}}
    gpus = infra.get("gpus") or 0
    if any(infra.get(k) is not None for k in ("cpus", "memory", "gpus", "storage")):
        resources: dict[str, Any] = {"gpus": gpus}
        if infra.get("cpus") is not None:
            resources["cpu"] = _cpus(infra["cpus"])
        for key in ("memory", "storage"):
            if infra.get(key) is not None:
                resources[key] = infra[key]
        if gpus and infra.get("gpu_type") is not None:
            resources["gpu_type"] = infra["gpu_type"]
        out["resources"] = resources
    most = infra.get("max_workers")
    least = infra.get("min_workers")
    if least is None:
        least = min(1, most) if isinstance(most, int) else 1
    out["containers"] = [{"region": region, "scale": {
        "min": least, "max": most if most is not None else max(least, 1)}}]
    for key in ("endpoint_type", "per_worker"):
        if infra.get(key) is not None:
            out[key] = infra[key]
    return out


def parse_create(body: Any) -> dict[str, Any]:
    """A create body as record data (no deployment yet); raises SpecInvalid."""
    body = _dict(body, "body")
    _unknown(body, CREATE_FIELDS, "")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _bad("name", "required", "a name of 1-255 characters is required")
    vendor = body.get("model_vendor", "launch")
    if vendor not in DEPLOYED_VENDORS + HOSTED_VENDORS:
        raise _bad("model_vendor", "enum", f"unknown model_vendor {vendor!r}")
    if vendor == "llmengine":
        raise _bad("model_vendor", "unsupported", "llmengine models need Scale's LLM Engine; "
                   "deploy the serving image as a launch model instead")
    kind = body.get("model_type", "generic")
    if kind not in TYPES:
        raise _bad("model_type", "enum", f"model_type must be one of {', '.join(TYPES)}")
    metadata = _dict(body.get("model_metadata"), "model_metadata")
    if body.get("on_conflict", "error") not in ("error", "update"):
        raise _bad("on_conflict", "enum", "on_conflict must be 'error' or 'update'")
    vc: dict[str, Any] | None = None
    if vendor == "launch":
        if body.get(VC) is None:
            raise _bad(VC, "required", "launch models need model_image and model_infra")
        vc = normalise_config(body[VC])
    elif body.get(VC) is not None:
        raise _bad(VC, "not_applicable", f"{vendor} models are served by {vendor}; "
                   "vendor_configuration applies to launch models only")
    return {"name": name, "model_type": kind, "model_vendor": vendor, "model_metadata": metadata,
            VC: vc}


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
