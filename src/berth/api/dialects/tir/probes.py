"""TIR's `advance_config` probes <-> Berth's spec probes. Pure.

TIR sends, under `custom_endpoint_details.container.advance_config`,
`is_readiness_probe_enabled` / `is_liveness_probe_enabled` (booleans, or the SDK's strings
"true"/"false") and `readiness_probe` / `liveness_probe` objects: `protocol` (http, tcp or
exec), `path`, `port`, `commands`, `initial_delay_seconds`, `period_seconds`,
`timeout_seconds`, `failure_threshold`, `success_threshold`, `grpc_service`. A probe applies
only when its flag is true; with no flag given the body says nothing about probes.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

from pydantic import ValidationError

from berth.api.dialects.tir.models import AdvanceConfig, EndpointFields, ProbeConfig
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.spec import DeploymentSpec, Probe

ADVANCE = "custom_endpoint_details.container.advance_config"
KINDS = {"readiness": ("readiness_probe", "is_readiness_probe_enabled"),
         "liveness": ("liveness_probe", "is_liveness_probe_enabled")}
PROTOCOLS = {"http": "http_get", "http_get": "http_get", "tcp": "tcp_socket",
             "tcp_socket": "tcp_socket", "exec": "exec", "command": "exec", "commands": "exec"}
NUMBERS = ("initial_delay_seconds", "period_seconds", "timeout_seconds", "failure_threshold",
           "success_threshold")
# A native probe with every field named, unset ones None: as a merge patch it replaces the
# probe whole (None deletes), so an http probe patched to tcp does not keep its http_get.
BLANK: dict[str, Any] = {"exec": None, "http_get": None, "tcp_socket": None,
                         **dict.fromkeys(NUMBERS)}
BLANK_ACTION: dict[str, dict[str, Any]] = {
    "http_get": {"path": None, "port": None, "host": None, "schema": None, "headers": None},
    "tcp_socket": {"port": None}, "exec": {"command": None}}
# Where a native probe field's error is reported in TIR's body.
TIR_FIELD = {("http_get", "path"): "path", ("http_get", "port"): "port",
             ("tcp_socket", "port"): "port", ("exec", "command"): "commands"}


def _bad(field: str, rule: str, message: str) -> SpecInvalid:
    return SpecInvalid([Violation(field, rule, message)])


def advance_config(body: EndpointFields) -> AdvanceConfig | None:
    """The body's advance_config, if it has one."""
    details = body.custom_endpoint_details
    container = details.container if details else None
    return container.advance_config if container else None


def _commands(value: str | list[str] | None, field: str) -> list[str] | None:
    if value is None or isinstance(value, list):
        return value or None
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise _bad(field, "shell_words", f"cannot split into words: {exc}") from None


def _probe(kind: str, config: ProbeConfig | None) -> dict[str, Any]:
    """One TIR probe as a complete native probe (see BLANK), validated."""
    where = f"{ADVANCE}.{KINDS[kind][0]}"
    if config is None:
        raise _bad(where, "required", f"is required when is_{kind}_probe_enabled is true")
    protocol = (config.protocol or "http").lower()
    action = PROTOCOLS.get(protocol)
    if action is None:
        raise _bad(f"{where}.protocol", "enum", "Berth runs http, tcp and exec probes; got "
                   f"{config.protocol!r}" + (" (grpc is not supported)"
                                             if protocol == "grpc" else ""))
    if config.grpc_service is not None:
        raise _bad(f"{where}.grpc_service", "not_supported_here",
                   "Berth runs no gRPC probes: leave it empty")
    given: dict[str, Any] = {"port": config.port}
    if action == "http_get":
        given["path"] = config.path or "/"
    elif action == "exec":
        given = {"command": _commands(config.commands, f"{where}.commands")}
        if given["command"] is None:
            raise _bad(f"{where}.commands", "required", "an exec probe needs commands")
    native = BLANK | {action: BLANK_ACTION[action] | given}
    native |= {n: getattr(config, n) for n in NUMBERS if getattr(config, n) is not None}
    try:
        Probe.model_validate(_without_none(native))
    except ValidationError as exc:
        raise SpecInvalid([_violation(where, item) for item in exc.errors()]) from None
    if kind == "liveness" and native["success_threshold"] not in (None, 1):
        raise _bad(f"{where}.success_threshold", "equals_one", "must be 1 for a liveness probe")
    return native


def _violation(where: str, item: Any) -> Violation:
    loc = [str(p) for p in item["loc"]]
    field = TIR_FIELD.get((loc[0], loc[1]), loc[0]) if len(loc) > 1 else "".join(loc)
    message = str(item["msg"]).removeprefix("Value error, ")
    return Violation(f"{where}.{field}" if field else where, str(item["type"]), message)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def to_native(advance: AdvanceConfig | None) -> dict[str, dict[str, Any] | None] | None:
    """Readiness and liveness as complete native probes (None: disabled); None when the
    body says nothing about probes."""
    if advance is None or (advance.is_readiness_probe_enabled is None
                           and advance.is_liveness_probe_enabled is None):
        return None
    out: dict[str, dict[str, Any] | None] = {}
    for kind, (name, enabled) in KINDS.items():
        on = bool(getattr(advance, enabled))
        out[kind] = _probe(kind, getattr(advance, name)) if on else None
    return out


def create_probes(body: EndpointFields) -> dict[str, Any]:
    """The native `probes` of a create body: absent unless a probe is enabled."""
    probes = to_native(advance_config(body))
    if not probes or not any(probes.values()):
        return {}
    return {"probes": _without_none(probes)}


def patch_probes(body: EndpointFields, current: DeploymentSpec) -> dict[str, Any]:
    """The native merge patch for a patch body's probes: replaces readiness and liveness,
    keeps a startup probe set natively; no probes at all restores the image defaults."""
    probes = to_native(advance_config(body))
    if probes is None:
        return {}
    startup = current.probes.startup if current.probes else None
    if startup is None and not any(probes.values()):
        return {"probes": None}
    return {"probes": probes}


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


def _probe_out(p: Probe | None, port: int) -> dict[str, Any] | None:
    if p is None:
        return None
    out: dict[str, Any] = {
        "protocol": "http", "path": "", "port": port, "commands": "", "grpc_service": "",
        "initial_delay_seconds": _number(p.initial_delay_seconds),
        "period_seconds": max(1, math.ceil(p.period_seconds)),
        "timeout_seconds": max(1, math.ceil(p.timeout_seconds)),
        "failure_threshold": p.failure_threshold, "success_threshold": p.success_threshold}
    if p.http_get is not None:
        out |= {"path": p.http_get.path, "port": p.http_get.port or port}
    elif p.tcp_socket is not None:
        out |= {"protocol": "tcp", "port": p.tcp_socket.port or port}
    elif p.exec is not None:
        out |= {"protocol": "exec", "commands": shlex.join(p.exec.command)}
    return out


def to_tir(spec: DeploymentSpec, record: dict[str, Any]) -> dict[str, Any]:
    """The advance_config TIR shows back: the spec's readiness and liveness probes."""
    probes = spec.probes
    readiness = _probe_out(probes.readiness if probes else None, spec.listening_port)
    liveness = _probe_out(probes.liveness if probes else None, spec.listening_port)
    return {"image_pull_policy": spec.image_pull_policy,
            "is_readiness_probe_enabled": readiness is not None,
            "is_liveness_probe_enabled": liveness is not None,
            "readiness_probe": readiness, "liveness_probe": liveness}
