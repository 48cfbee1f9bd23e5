"""E2E Networks TIR <-> Berth shapes. Pure: request bodies to native spec data, records to
TIR JSON.

A TIR team and project is the Berth project `tir-{team}-{project}`; a TIR inference id is
an integer the dialect keeps (dialect record kind `inference`); a TIR SKU id is the position
(from 1) of a flavor in this machine's flavor list; the region is always `local`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from berth.api.dialects.tir import probes
from berth.api.dialects.tir.requests import KEPT, REGION
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import Flavor, PlatformFacts
from berth.domain.records import Deployment
from berth.domain.spec import AsyncConfig, Scale
from berth.domain.status import DeploymentStatus

DIALECT = "tir"
KIND = "inference"
STATUS = {
    DeploymentStatus.NEW: "Deploying", DeploymentStatus.PENDING: "Deploying",
    DeploymentStatus.DEPLOYING: "Deploying", DeploymentStatus.ACTIVE: "Running",
    DeploymentStatus.PARTIALLYDEPLOYED: "Running", DeploymentStatus.ERROR: "Failed",
    DeploymentStatus.FAILED: "Failed", DeploymentStatus.DISABLED: "Stopped",
    DeploymentStatus.DELETING: "Deleting", DeploymentStatus.DELETED: "Deleted",
}


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


def sku_id(name: str | None, facts: PlatformFacts) -> int | None:
    names = [f.name for f in facts.flavors]
    return names.index(name) + 1 if name in names else None


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
    watch = None if scale.stable_window is None else str(scale.stable_window)
    return [r | {"watch_period": watch} for r in out]


def _rule(metric: str, value: float, custom: str | None = None) -> dict[str, Any]:
    shown = int(value) if value == int(value) else value
    return {"metric": metric, "condition_type": "limit", "condition_value": shown,
            "value": shown, "custom_metric_name": custom}


def async_fields(cfg: AsyncConfig, dataset_id: int | None) -> dict[str, Any]:
    """The spec's `async` in TIR's fields; `dataset_id` is the number of its dataset. An
    endpoint never set up for async shows TIR's empty values."""
    if not cfg.enabled and cfg.dataset is None and not cfg.target_routes:
        return {"async_enabled": False, "async_concurrent_workers": None,
                "async_dataset_id": None, "async_destination_type": None,
                "async_target_routes": []}
    return {"async_enabled": cfg.enabled, "async_concurrent_workers": cfg.workers,
            "async_dataset_id": dataset_id, "async_destination_type": cfg.destination_type,
            "async_target_routes": [{"route_name": k, "route_value": v}
                                    for k, v in cfg.target_routes.items()]}


def to_tir(inference_id: int, d: Deployment, record: dict[str, Any], facts: PlatformFacts,
           address: str | None, async_dataset_id: int | None = None) -> dict[str, Any]:
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
            "initial_cooldown_period": "0"} if autoscale else None,
        "sku_id": index, "sku_name": spec.flavor,
        "sku_details": {"plan": plan | {"sku_type": "hourly"}} if plan else None,
        "custom_endpoint_details": {
            "container": {"container_name": spec.image, "container_type": "public",
                          "port": spec.listening_port,
                          "advance_config": probes.to_tir(spec, record)},
            "resource_details": {"disk_size": record.get("disk_size"),
                                 "env_variables": [{"key": k, "value": v}
                                                   for k, v in spec.envs.items()]}},
        "detailed_info": {"commands": command, "args": []},
        "endpoint_url": address, "url": address, "location": REGION,
        "created_at": _iso(d.created_at), "updated_at": _iso(d.updated_at),
    }
    out |= async_fields(spec.async_, async_dataset_id)
    for key in KEPT:
        if key in record and key not in out:
            out[key] = record[key]
    return out


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))
