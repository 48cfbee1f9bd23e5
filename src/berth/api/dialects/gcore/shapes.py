"""Gcore <-> Berth shapes. Pure: request bodies to native spec data, records to Gcore JSON.

Gcore's project id (an integer) is the Berth project of that name; a Gcore region id is
the position (from 1) of a Berth region in this installation's list.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from berth.api.dialects.gcore import models
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
SAME_NAME = ("name", "image", "listening_port", "api_keys", "auth_enabled", "command",
             "credentials_name", "envs", "timeout")
DAY = 86400
# A native probe with every field named, unset ones None: as a merge patch it replaces the
# probe whole, so an http probe patched to tcp does not keep its http_get.
BLANK: dict[str, Any] = dict.fromkeys(
    ("exec", "http_get", "tcp_socket", "initial_delay_seconds", "period_seconds",
     "timeout_seconds", "failure_threshold", "success_threshold"))
NATIVE_TO_GCORE = [(re.compile(p), r) for p, r in (
    (r"^flavor\b", "flavor_name"), (r"^ingress\b", "ingress_opts"),
    (r"^logging\.retention_period\b", "logging.retention_policy.period"),
    (r"^(containers\[\d+\])\.region\b", r"\1.region_id"),
    (r"^probes\.(startup|readiness|liveness)\b", r"probes.\1_probe.probe"))]


def region_name(region_id: int, facts: PlatformFacts, where: str) -> str:
    """The region a Gcore region_id names: each region's number (`berth serve --region-id`)."""
    for region in facts.regions.values():
        if region.number == region_id:
            return region.name
    known = ", ".join(f"{r.number} ({r.name})" for r in facts.regions.values())
    raise SpecInvalid([Violation(where, "known_region", f"unknown region_id {region_id!r}; "
                                 f"this installation has {known}")])


def region_id(name: str, facts: PlatformFacts) -> int:
    region = facts.regions.get(name)
    return region.number if region is not None else 0


def to_native(body: models.DeploymentUpdate, facts: PlatformFacts, *,
              partial: bool = False) -> dict[str, Any]:
    """A Gcore create/replace (or, with partial, update) body as native spec data; with
    partial, a field given as null removes the native field (a JSON merge patch)."""
    given = {k: getattr(body, k) for k in body.model_fields_set if k != "project_id"}
    if not partial:
        given = {k: v for k, v in given.items() if v is not None}
    out: dict[str, Any] = {k: v for k, v in given.items() if k in SAME_NAME}
    if "description" in given:
        out["description"] = given["description"] or ""
    if given.get("flavor_name") is not None:
        out["flavor"] = given["flavor_name"]
    if body.containers is not None:
        out["containers"] = [_container(i, c, facts) for i, c in enumerate(body.containers)]
    if body.ingress_opts is not None:
        out["ingress"] = body.ingress_opts.model_dump()
    if body.logging is not None:
        out["logging"] = _logging(body.logging)
    if "probes" in given:
        out["probes"] = _probes(body.probes, partial=partial)
    if not partial:
        out.setdefault("description", "")
    return out


def _container(i: int, c: models.Container, facts: PlatformFacts) -> dict[str, Any]:
    scale: dict[str, Any] = {"min": c.scale.min, "max": c.scale.max}
    for key in ("cooldown_period", "polling_interval"):
        if getattr(c.scale, key) is not None:
            scale[key] = getattr(c.scale, key)
    triggers = c.scale.triggers
    if triggers is not None and triggers.sqs is not None:
        raise SpecInvalid([Violation(f"containers[{i}].scale.triggers.sqs", "unsupported",
                                     "SQS triggers need AWS; Berth scales on its own "
                                     "queue and gateway metrics")])
    scale["triggers"] = triggers.model_dump(exclude_none=True) if triggers else {}
    return {"region": region_name(c.region_id, facts, f"containers[{i}].region_id"),
            "scale": scale}


def _logging(value: models.Logging) -> dict[str, Any]:
    """Native logging; Gcore's retention period is in days. A topic or destination region
    names Gcore's hosted log service, which Berth is not: refused."""
    for field in ("topic_name", "destination_region_id"):
        if getattr(value, field) is not None:
            raise SpecInvalid([Violation(
                f"logging.{field}", "hosted_log_service",
                "names a topic or region of Gcore's hosted log service; Berth keeps each "
                "replica's log lines itself (GET .../logs, native /logs): leave it null")])
    period = value.retention_policy.period if value.retention_policy else None
    return {"enabled": value.enabled,
            "retention_period": period * DAY if period is not None else None}


def _probes(value: models.Probes | None, *, partial: bool) -> dict[str, Any] | None:
    """Native probes. A disabled probe is none; with partial, each probe given replaces
    the deployment's whole (one given disabled removes it), the others are kept."""
    if value is None:
        return None
    out: dict[str, Any] = {}
    for gname, native in PROBES.items():
        config: models.ProbeConfig | None = getattr(value, gname)
        if config is None:
            continue
        probe = _probe(config.probe) if config.enabled and config.probe else None
        if probe is not None:
            out[native] = (BLANK | probe) if partial else probe
        elif partial:
            out[native] = None
    return out if out or partial else None


def _probe(p: models.Probe) -> dict[str, Any]:
    """One native probe: Gcore's examples give all three actions; the first of
    ACTION_PRECEDENCE given is kept."""
    out = p.model_dump(by_alias=True, exclude_none=True,
                       exclude={"exec", "http_get", "tcp_socket"})
    for action in ACTION_PRECEDENCE:
        chosen = getattr(p, action)
        if chosen is not None:
            out[action] = chosen.model_dump(by_alias=True, exclude_none=True)
            break
    return out


def gcore_fields(exc: SpecInvalid) -> SpecInvalid:
    """Native validation errors renamed to the Gcore fields they came from."""
    return SpecInvalid([Violation(_gcore_field(v.field), v.rule, v.message)
                        for v in exc.violations])


def _gcore_field(field: str) -> str:
    for pattern, replacement in NATIVE_TO_GCORE:
        renamed, count = pattern.subn(replacement, field, count=1)
        if count:
            return renamed
    return field


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
        "logging": {"enabled": logging.enabled, "topic_name": None,
                    "destination_region_id": None,
                    "retention_policy": {"period": math.ceil(logging.retention_period / DAY)}
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
