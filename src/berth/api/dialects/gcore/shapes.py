"""Gcore <-> Berth shapes. Pure: request bodies to native spec data, records to Gcore JSON.

Gcore's project id (an integer) is the Berth project of that name; a Gcore region id is
the position (from 1) of a Berth region in this installation's list.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Task
from berth.domain.spec import Probe
from berth.domain.status import DeploymentStatus, TaskKind, TaskState

PROBES = {"startup_probe": "startup", "readiness_probe": "readiness",
          "liveness_probe": "liveness"}
# Gcore's enum has no NEW/ERROR/FAILED: a failure shows as PARTIALLYDEPLOYED with the reason
# in containers[].error_message; scaled to zero is PENDING.
STATUS = {
    DeploymentStatus.NEW: "DEPLOYING", DeploymentStatus.PENDING: "DEPLOYING",
    DeploymentStatus.DEPLOYING: "DEPLOYING", DeploymentStatus.ACTIVE: "ACTIVE",
    DeploymentStatus.PARTIALLYDEPLOYED: "PARTIALLYDEPLOYED",
    DeploymentStatus.ERROR: "PARTIALLYDEPLOYED", DeploymentStatus.FAILED: "PARTIALLYDEPLOYED",
    DeploymentStatus.DISABLED: "DISABLED", DeploymentStatus.DELETING: "DELETING",
    DeploymentStatus.DELETED: "DELETING",
}
TASK_TYPES = {TaskKind.CREATE: "create_inference_instance",
              TaskKind.UPDATE: "update_inference_instance",
              TaskKind.START: "start_inference_instance",
              TaskKind.STOP: "stop_inference_instance",
              TaskKind.RESTART: "restart_inference_instance",
              TaskKind.DELETE: "delete_inference_instance"}
ACTION_PRECEDENCE = ("http_get", "tcp_socket", "exec")
FIELDS = {"name", "image", "listening_port", "flavor_name", "containers", "api_keys",
          "auth_enabled", "command", "credentials_name", "description", "envs",
          "ingress_opts", "logging", "probes", "timeout"}


def region_name(region_id: Any, facts: PlatformFacts, where: str) -> str:
    """The region a Gcore region_id names: each region's number (`berth serve --region-id`)."""
    if isinstance(region_id, int) and not isinstance(region_id, bool):
        for region in facts.regions.values():
            if region.number == region_id:
                return region.name
    known = ", ".join(f"{r.number} ({r.name})" for r in facts.regions.values())
    raise SpecInvalid([Violation(where, "known_region", f"unknown region_id {region_id!r}; "
                                 f"this installation has {known}")])


def region_id(name: str, facts: PlatformFacts) -> int:
    region = facts.regions.get(name)
    return region.number if region is not None else 0


def to_native(body: Any, facts: PlatformFacts, *, partial: bool = False) -> dict[str, Any]:
    """A Gcore create/replace (or, with partial, update) body as native spec data."""
    if not isinstance(body, dict):
        raise SpecInvalid([Violation("body", "type", "the request body must be a JSON object")])
    unknown = sorted(set(body) - FIELDS - {"project_id"})
    if unknown:
        raise SpecInvalid([Violation(k, "extra_forbidden", "unknown field") for k in unknown])
    out: dict[str, Any] = {}
    for key in ("name", "image", "listening_port", "api_keys", "auth_enabled", "command",
                "credentials_name", "envs", "timeout"):
        if key in body:
            out[key] = body[key]
    if "description" in body:
        out["description"] = body["description"] or ""
    if "flavor_name" in body:
        out["flavor"] = body["flavor_name"]
    if "containers" in body:
        out["containers"] = _containers(body["containers"], facts)
    if body.get("ingress_opts") is not None:
        out["ingress"] = body["ingress_opts"]
    if body.get("logging") is not None:
        out["logging"] = _logging(body["logging"], facts)
    if "probes" in body:
        out["probes"] = _probes(body["probes"])
    if not partial:
        out.setdefault("description", "")
    return out


def _containers(value: Any, facts: PlatformFacts) -> Any:
    if not isinstance(value, list):
        return value  # the native validation names the problem
    out = []
    for i, c in enumerate(value):
        if not isinstance(c, dict):
            out.append(c)
            continue
        scale = dict(c.get("scale") or {})
        triggers = dict(scale.get("triggers") or {})
        if triggers.get("sqs") is not None:
            raise SpecInvalid([Violation(f"containers[{i}].scale.triggers.sqs", "unsupported",
                                         "SQS triggers need AWS; Berth scales on its own "
                                         "queue and gateway metrics")])
        triggers.pop("sqs", None)
        scale["triggers"] = {k: v for k, v in triggers.items() if v is not None}
        for key in ("cooldown_period", "polling_interval"):
            if scale.get(key) is None:
                scale.pop(key, None)
        out.append({"region": region_name(c.get("region_id"), facts,
                                          f"containers[{i}].region_id"), "scale": scale})
    return out


def _logging(value: Any, facts: PlatformFacts) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {"enabled": value.get("enabled", True)}
    policy = value.get("retention_policy") or {}
    if isinstance(policy, dict) and policy.get("period") is not None:
        out["retention_period"] = policy["period"]
    if value.get("topic_name") is not None:
        out["topic"] = value["topic_name"]
    if value.get("destination_region_id") is not None:
        out["destination_region"] = region_name(value["destination_region_id"], facts,
                                                "logging.destination_region_id")
    return out


def _probes(value: Any) -> Any:
    if value is None or not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for gname, native in PROBES.items():
        config = value.get(gname)
        if isinstance(config, dict) and config.get("enabled", True) and config.get("probe"):
            probe = dict(config["probe"])
            given = [a for a in ACTION_PRECEDENCE if probe.get(a) is not None]
            for action in ACTION_PRECEDENCE:  # Gcore's examples give all three: keep one
                if action not in given[:1]:
                    probe.pop(action, None)
            out[native] = probe
    return out or None


def _probe_out(p: Probe | None, port: int) -> dict[str, Any]:
    if p is None:
        return {"enabled": False, "probe": None}
    probe: dict[str, Any] = {
        "exec": p.exec.model_dump() if p.exec else None,
        "http_get": None,
        "tcp_socket": {"port": p.tcp_socket.port or port} if p.tcp_socket else None,
        "initial_delay_seconds": math.ceil(p.initial_delay_seconds),
        "period_seconds": max(1, math.ceil(p.period_seconds)),
        "timeout_seconds": max(1, math.ceil(p.timeout_seconds)),
        "failure_threshold": p.failure_threshold, "success_threshold": p.success_threshold,
    }
    if p.http_get is not None:
        probe["http_get"] = {"path": p.http_get.path, "port": p.http_get.port or port,
                             "host": p.http_get.host, "schema": p.http_get.schema_,
                             "headers": p.http_get.headers}
    return {"enabled": True, "probe": probe}


def to_gcore(d: Deployment, facts: PlatformFacts, address: str | None) -> dict[str, Any]:
    spec = d.spec
    by_region = {c.region: c for c in d.containers}
    scaled_to_zero = d.status == DeploymentStatus.ACTIVE and all(
        c.scale.max == 0 or (c.scale.min == 0 and by_region.get(c.region) is not None
                             and by_region[c.region].total == 0) for c in spec.containers)
    containers = []
    for c in spec.containers:
        st = by_region.get(c.region)
        error = st.error if st else ""
        if d.status in DeploymentStatus.broken() and not error:
            error = d.status_reason
        containers.append({
            "region_id": region_id(c.region, facts), "address": address,
            "deploy_status": {"ready": st.ready if st else 0, "total": st.total if st else 0},
            "error_message": error or None,
            "scale": {"min": c.scale.min, "max": c.scale.max,
                      "cooldown_period": c.scale.cooldown_period,
                      "polling_interval": c.scale.polling_interval,
                      "triggers": c.scale.triggers.model_dump(
                          include={"cpu", "memory", "gpu_memory", "gpu_utilization", "http"},
                          exclude_none=True) | {"sqs": None}},
        })
    logging = spec.logging
    return {
        "name": d.name, "project_id": _int_project(d.project), "image": spec.image,
        "listening_port": spec.listening_port, "flavor_name": spec.flavor or "",
        "description": spec.description, "credentials_name": spec.credentials_name or "",
        "command": shlex.join(spec.command) if spec.command else None,
        "envs": spec.envs, "timeout": spec.timeout, "address": address,
        "auth_enabled": bool(spec.auth_enabled or spec.api_keys),
        "api_keys": spec.api_keys or [], "containers": containers,
        "created_at": d.created_at.isoformat().replace("+00:00", "Z"),
        "ingress_opts": {"disable_response_buffering": spec.ingress.disable_response_buffering},
        "logging": {"enabled": logging.enabled, "topic_name": logging.topic,
                    "destination_region_id": region_id(logging.destination_region, facts)
                    if logging.destination_region else None,
                    "retention_policy": {"period": logging.retention_period}
                    if logging.retention_period else None},
        "object_references": [],
        "probes": {g: _probe_out(getattr(spec.probes, n) if spec.probes else None,
                                 spec.listening_port) for g, n in PROBES.items()},
        "status": "PENDING" if scaled_to_zero else STATUS[d.status],
    }


def task_to_gcore(t: Task) -> dict[str, Any]:
    return {
        "id": t.id, "state": t.state.value, "task_type": TASK_TYPES[t.kind], "user_id": 0,
        "created_on": t.created_at.isoformat().replace("+00:00", "Z"),
        "updated_on": t.updated_at.isoformat().replace("+00:00", "Z"),
        "finished_on": t.updated_at.isoformat().replace("+00:00", "Z")
        if t.state in TaskState.done() else None,
        "error": t.error or None,
        "created_resources": {"inference_instances": [t.deployment_name]}
        if t.kind == TaskKind.CREATE else None,
        "project_id": _int_project(t.project),
    }


def _int_project(project: str) -> int:
    return int(project) if project.isdigit() else 0
