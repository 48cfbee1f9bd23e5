"""E2E Networks TIR <-> Berth shapes. Pure: request bodies to native spec data, records to
TIR JSON.

A TIR team and project is the Berth project `tir-{team}-{project}`; a TIR inference id is
an integer the dialect keeps (dialect record kind `inference`); a TIR SKU id is the position
(from 1) of a flavor in this machine's flavor list; the region is always `local`.
"""

from __future__ import annotations

import ast
import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from berth.api.dialects.tir import probes
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import Flavor, PlatformFacts
from berth.domain.records import Deployment
from berth.domain.spec import DeploymentSpec, Scale
from berth.domain.status import DeploymentStatus

DIALECT = "tir"
KIND = "inference"
REGION = "local"
PORT = 8080  # TIR's custom containers listen on 8080
STATUS = {
    DeploymentStatus.NEW: "Deploying", DeploymentStatus.PENDING: "Deploying",
    DeploymentStatus.DEPLOYING: "Deploying", DeploymentStatus.ACTIVE: "Running",
    DeploymentStatus.PARTIALLYDEPLOYED: "Running", DeploymentStatus.ERROR: "Failed",
    DeploymentStatus.FAILED: "Failed", DeploymentStatus.DISABLED: "Stopped",
    DeploymentStatus.DELETING: "Deleting", DeploymentStatus.DELETED: "Deleted",
}
THRESHOLD_METRICS = {"cpu": "cpu", "memory": "memory"}
TARGET_METRICS = {"concurrency": "concurrency", "requestRate": "request_rate"}
ASYNC_FIELDS = ("async_enabled", "async_concurrent_workers", "async_dataset_id",
                "async_destination_type", "async_target_routes")
# Accepted and kept in the dialect record; they name TIR storage/billing with no Berth
# counterpart (see docs/dialects/tir.md).
KEPT = ("path", "model_id", "committed_replicas", "framework", "model_load_integration_id",
        "dataset_id", "dataset_path", "cluster_type", "storage_type", "sfs_path",
        "disk_path", "sku_item_price_id", "world_size")


def berth_project(team: int | str, project: int | str) -> str:
    return f"tir-{team}-{project}"


_ID = TypeAdapter(int)  # how FastAPI reads the routes' `team: int`, `project: int`


def scope_project(path_params: Mapping[str, Any]) -> str | None:
    """The Berth project a control route acts on, for checking a token's scope: `tir-T-P`
    from the path's `team` and `project` (read as the routes read them, so `/teams/011/`
    is team 11), or None for a route without them (the SKU list). A team or project that
    is not an integer answers 400 naming it."""
    if "team" not in path_params and "project" not in path_params:
        return None
    ids = []
    for name in ("team", "project"):
        try:
            ids.append(_ID.validate_python(path_params.get(name)))
        except ValidationError:
            raise _bad(name, "int_parsing",
                       f"must be an integer; got {path_params.get(name)!r}") from None
    return berth_project(*ids)


def envelope(data: Any, message: str = "Success", code: int = 200) -> dict[str, Any]:
    return {"code": code, "data": data, "message": message, "errors": {}}


def _bad(field: str, rule: str, message: str) -> SpecInvalid:
    return SpecInvalid([Violation(field, rule, message)])


def _gib(n: int) -> str:
    value = n / 2**30
    return f"{int(value)}GB" if value == int(value) else f"{value:.1f}GB"


def _gpu_type(model: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", model) if w and w.lower() != "nvidia"]
    return next((w.upper() for w in words if any(ch.isdigit() for ch in w)),
                words[0].upper() if words else "GPU")


def sku(index: int, f: Flavor) -> dict[str, Any]:
    """One TIR SKU for a flavor; the SDK's plan name is series-type-cpu-memory-gpu."""
    gpu = f.gpus > 0
    return {
        "sku_id": index, "name": f.name, "series": "GPU" if gpu else "CPU",
        "sku_type": _gpu_type(f.gpu_model) if gpu else "local",
        "cpu": int(f.cpu) if f.cpu == int(f.cpu) else f.cpu, "memory": _gib(f.memory_bytes),
        "gpu": f.gpus, "gpu_model": f.gpu_model or None, "is_free": False,
        "is_inventory_available": True, "description": f.description,
        "plans": [{"sku_item_price_id": index, "sku_type": "hourly", "committed_days": 0,
                   "unit_price": 0, "currency": "INR"}],
    }


def skus(facts: PlatformFacts) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"CPU": [], "GPU": []}
    for i, f in enumerate(facts.flavors, 1):
        out["GPU" if f.gpus else "CPU"].append(sku(i, f))
    return out


def flavor_name(sku_id: Any, facts: PlatformFacts) -> str:
    if isinstance(sku_id, int) and not isinstance(sku_id, bool) and (
            1 <= sku_id <= len(facts.flavors)):
        return facts.flavors[sku_id - 1].name
    raise _bad("sku_id", "known_sku", f"unknown sku_id {sku_id!r}; this machine has "
               f"1..{len(facts.flavors)} (GET gpu_service/sku/)")


def sku_id(name: str | None, facts: PlatformFacts) -> int | None:
    names = [f.name for f in facts.flavors]
    return names.index(name) + 1 if name in names else None


def decode_list(value: Any, field: str) -> list[str]:
    """The SDK's base64 of a Python list literal (`str(['a', 'b'])`): parsed, never run."""
    if value in (None, ""):
        return []
    if isinstance(value, list):
        parsed: Any = value
    else:
        try:
            text = base64.b64decode(str(value), validate=True).decode()
            parsed = ast.literal_eval(text)
        except (binascii.Error, UnicodeDecodeError, ValueError, SyntaxError) as exc:
            raise _bad(field, "base64_list", "must be base64 of a list literal such as "
                       "\"['python', 'serve.py']\"") from exc
    if not isinstance(parsed, list | tuple) or not all(isinstance(x, str) for x in parsed):
        raise _bad(field, "list_of_strings", "must be a list of strings")
    return list(parsed)


def _envs(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _bad("custom_endpoint_details.resource_details.env_variables", "type",
                   "must be a list of {key, value}")
    out = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _bad(f"custom_endpoint_details.resource_details.env_variables[{i}]",
                       "key_value", "must be an object with a string 'key'")
        out[item["key"]] = "" if item.get("value") is None else str(item["value"])
    return out


def triggers(rules: Any) -> dict[str, Any]:
    """TIR auto-scale rules as native scale triggers."""
    if rules is None:
        return {}
    if not isinstance(rules, list):
        raise _bad("auto_scale_policy.rules", "type", "must be a list of rules")
    out: dict[str, Any] = {}
    for i, rule in enumerate(rules):
        where = f"auto_scale_policy.rules[{i}]"
        if not isinstance(rule, dict):
            raise _bad(where, "type", "must be an object")
        metric = rule.get("metric")
        value: Any = rule.get("condition_value", rule.get("value"))
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise _bad(f"{where}.condition_value", "number", "must be a number") from exc
        if metric in THRESHOLD_METRICS:
            out[THRESHOLD_METRICS[metric]] = {"threshold": int(number)}
        elif metric in TARGET_METRICS:
            out[TARGET_METRICS[metric]] = {"target": number}
        elif metric == "custom":
            name = rule.get("custom_metric_name")
            if not isinstance(name, str) or not name:
                raise _bad(f"{where}.custom_metric_name", "required",
                           "metric 'custom' requires custom_metric_name")
            out.setdefault("custom", []).append({"metric_name": name, "target": number})
        else:
            raise _bad(f"{where}.metric", "enum", "must be one of concurrency, requestRate, "
                       f"custom, cpu, memory; got {metric!r}")
    return out


def rules(scale: Scale) -> list[dict[str, Any]]:
    """Native triggers as TIR rules."""
    t = scale.triggers
    out: list[dict[str, Any]] = []
    for native, metric in (("cpu", "cpu"), ("memory", "memory")):
        threshold = getattr(t, native)
        if threshold is not None:
            out.append(_rule(metric, threshold.threshold))
    for native, metric in (("concurrency", "concurrency"), ("request_rate", "requestRate")):
        target = getattr(t, native)
        if target is not None:
            out.append(_rule(metric, target.target))
    out.extend(_rule("custom", c.target, c.metric_name) for c in t.custom)
    return out


def _rule(metric: str, value: float, custom: str | None = None) -> dict[str, Any]:
    shown = int(value) if value == int(value) else value
    return {"metric": metric, "condition_type": "limit", "condition_value": shown,
            "value": shown, "custom_metric_name": custom, "watch_period": "60"}


def scale(body: dict[str, Any], *, autoscale: bool, replicas: Any = None) -> dict[str, Any]:
    """A native containers list from TIR's replica count or auto-scale policy."""
    if autoscale:
        policy = body.get("auto_scale_policy")
        if not isinstance(policy, dict):
            raise _bad("auto_scale_policy", "required",
                       "is required when auto scaling is enabled")
        out: dict[str, Any] = {"min": policy.get("min_replicas", 1),
                               "max": policy.get("max_replicas", 1),
                               "triggers": triggers(policy.get("rules"))}
        cooldown = policy.get("stability_period")
        if isinstance(cooldown, int | str) and str(cooldown).isdigit():
            out["cooldown_period"] = int(cooldown)
    else:
        count = 1 if replicas is None else replicas
        out = {"min": count, "max": count, "triggers": {}}
    return {"containers": [{"region": REGION, "scale": out}]}


def _replicas(body: dict[str, Any]) -> Any:
    return body.get("replicas", body.get("replica"))


def create_to_native(body: Any, facts: PlatformFacts) -> dict[str, Any]:
    """A TIR create body as native spec data."""
    if not isinstance(body, dict):
        raise _bad("body", "type", "the request body must be a JSON object")
    details = body.get("custom_endpoint_details") or {}
    container = details.get("container") or {} if isinstance(details, dict) else {}
    resources = details.get("resource_details") or {} if isinstance(details, dict) else {}
    image = container.get("container_name") if isinstance(container, dict) else None
    if not image:
        raise _bad("custom_endpoint_details.container.container_name", "required",
                   "the container image is required")
    out: dict[str, Any] = {"name": body.get("name"), "image": image, "listening_port": PORT,
                           "flavor": flavor_name(body.get("sku_id"), facts),
                           "description": f"TIR {body.get('framework') or 'custom'} endpoint"}
    out |= _command(body.get("detailed_info"))
    if isinstance(resources, dict):
        envs = _envs(resources.get("env_variables"))
        if envs:
            out["envs"] = envs
    out |= scale(body, autoscale=bool(body.get("is_auto_scale_enabled")),
                 replicas=_replicas(body))
    return out | probes.create_probes(body)


def _command(info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        return {}
    command = decode_list(info.get("commands"), "detailed_info.commands")
    command += decode_list(info.get("args"), "detailed_info.args")
    return {"command": command} if command else {}


def patch_to_native(body: dict[str, Any], current: DeploymentSpec,
                    facts: PlatformFacts) -> dict[str, Any]:
    """A TIR `action: patch` body as a native merge patch."""
    out: dict[str, Any] = {}
    if body.get("sku_id") is not None:
        out["flavor"] = flavor_name(body["sku_id"], facts)
    details = body.get("custom_endpoint_details")
    if isinstance(details, dict):
        container = details.get("container") or {}
        if isinstance(container, dict) and container.get("container_name"):
            out["image"] = container["container_name"]
        resources = details.get("resource_details") or {}
        if isinstance(resources, dict) and "env_variables" in resources:
            out["envs"] = _envs(resources["env_variables"])
    if isinstance(body.get("detailed_info"), dict):
        out |= _command(body["detailed_info"]) or {"command": None}
    if body.get("is_auto_scale_enabled") and "auto_scale_policy" in body:
        out |= scale(body, autoscale=True)
    elif _replicas(body) is not None and not body.get("is_auto_scale_enabled"):
        out |= scale(body, autoscale=False, replicas=_replicas(body))
    return out | probes.patch_probes(body, current)


def kept(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in KEPT if k in body} | probes.pull_policy(
        probes.advance_config(body))


def async_config(body: dict[str, Any]) -> dict[str, Any]:
    """Validated `update_async_configuration` settings, as stored."""
    enabled = body.get("async_enabled")
    if not isinstance(enabled, bool):
        raise _bad("async_enabled", "required", "must be true or false")
    if not enabled:
        return {"async_enabled": False}
    workers = body.get("async_concurrent_workers")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise _bad("async_concurrent_workers", "required",
                   "must be an integer >= 1 when enabling async invocation")
    if body.get("async_dataset_id") in (None, ""):
        raise _bad("async_dataset_id", "required",
                   "is required when enabling async invocation")
    routes = body.get("async_target_routes") or []
    if not isinstance(routes, list) or not all(
            isinstance(r, dict) and isinstance(r.get("route_name"), str)
            and isinstance(r.get("route_value"), str) for r in routes):
        raise _bad("async_target_routes", "type",
                   "must be a list of {route_name, route_value}")
    return {"async_enabled": True, "async_concurrent_workers": workers,
            "async_dataset_id": body["async_dataset_id"],
            "async_destination_type": body.get("async_destination_type") or "dataset",
            "async_target_routes": routes}


def to_tir(inference_id: int, d: Deployment, record: dict[str, Any], facts: PlatformFacts,
           address: str | None) -> dict[str, Any]:
    spec = d.spec
    c = spec.containers[0]
    st = d.containers[0] if d.containers else None
    autoscale = bool(record.get("is_auto_scale_enabled"))
    flavor = facts.flavor(spec.flavor) if spec.flavor else None
    index = sku_id(spec.flavor, facts)
    plan = sku(index, flavor) if flavor is not None and index is not None else None
    command = spec.command or []
    out: dict[str, Any] = {
        "id": inference_id, "name": d.name, "status": STATUS[d.status],
        "status_reason": d.status_reason, "framework": record.get("framework", "custom"),
        "replica": c.scale.max if not autoscale else c.scale.min,
        "committed_replicas": record.get("committed_replicas", 0),
        "ready_replicas": st.ready if st else 0, "total_replicas": st.total if st else 0,
        "is_auto_scale_enabled": autoscale,
        "auto_scale_policy": {
            "min_replicas": c.scale.min, "max_replicas": c.scale.max, "rules": rules(c.scale),
            "stability_period": str(c.scale.cooldown_period),
            "initial_cooldown_period": str(c.scale.polling_interval)} if autoscale else None,
        "sku_id": index, "sku_name": spec.flavor,
        "sku_details": {"plan": plan | {"sku_type": "hourly"}} if plan else None,
        "custom_endpoint_details": {
            "container": {"container_name": spec.image, "container_type": "public",
                          "port": spec.listening_port,
                          "advance_config": probes.to_tir(spec, record)},
            "resource_details": {"env_variables": [{"key": k, "value": v}
                                                   for k, v in spec.envs.items()]}},
        "detailed_info": {"commands": command, "args": []},
        "endpoint_url": address, "url": address, "location": REGION,
        "created_at": _iso(d.created_at), "updated_at": _iso(d.updated_at),
        "async_enabled": False, "async_concurrent_workers": None, "async_dataset_id": None,
        "async_destination_type": None, "async_target_routes": [],
    }
    out |= {k: v for k, v in record.get("async", {}).items() if k in ASYNC_FIELDS}
    for key in KEPT:
        if key in record and key not in out:
            out[key] = record[key]
    return out


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))
