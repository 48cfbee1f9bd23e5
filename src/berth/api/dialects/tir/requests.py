"""TIR request bodies (typed, `tir.models`) to native spec data. Pure.

Fields that name TIR's hosted storage, registry or billing either act here (the SKU and its
price id pick the flavor; `storage_type: sfs` mounts the host directory `sfs_path`), are
refused with a value Berth cannot honour (a dataset to mount, a committed plan, a per-replica
disk, ...), or are kept and shown back where they only describe the hosted platform
(framework, cluster type, disk size): docs/dialects/tir.md, "Request fields".
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from berth.api.dialects.tir import probes
from berth.api.dialects.tir.models import (
    AutoScalePolicy,
    EndpointAction,
    EndpointFields,
    EnvVariable,
    Rule,
    TargetRoute,
)
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import PlatformFacts
from berth.domain.spec import AsyncConfig, DeploymentSpec

REGION = "local"
PORT = 8080  # TIR's custom containers listen on 8080
MAX_COMMAND = 64 * 1024  # characters of one base64 command list, decoded
THRESHOLD_METRICS = {"cpu": "cpu", "memory": "memory"}
TARGET_METRICS = {"concurrency": "concurrency", "requestRate": "request_rate"}
# Kept in the dialect record and shown back: they describe TIR's hosted platform only.
KEPT = ("path", "model_id", "committed_replicas", "framework", "model_load_integration_id",
        "dataset_id", "dataset_path", "cluster_type", "storage_type", "sfs_path",
        "disk_path", "sku_item_price_id", "world_size")
# A Python string literal, single- or double-quoted, with backslash escapes.
STRING = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""", re.DOTALL)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def bad(field: str, rule: str, message: str) -> SpecInvalid:
    return SpecInvalid([Violation(field, rule, message)])


def flavor_name(sku_id: int | None, facts: PlatformFacts, field: str = "sku_id") -> str:
    if sku_id is not None and 1 <= sku_id <= len(facts.flavors):
        return facts.flavors[sku_id - 1].name
    raise bad(field, "known_sku", f"unknown {field} {sku_id!r}; this machine has "
              f"1..{len(facts.flavors)} (GET gpu_service/sku/)")


def chosen_flavor(body: EndpointFields, facts: PlatformFacts) -> str | None:
    """The flavor the body's SKU names: `sku_id`, or the plan's `sku_item_price_id` (each
    SKU here has one hourly plan, numbered as the SKU); both given must agree."""
    sku, plan = body.sku_id, body.sku_item_price_id
    if sku is not None and plan is not None and sku != plan:
        raise bad("sku_item_price_id", "plan_of_sku", f"plan {plan} is not a plan of SKU "
                  f"{sku}; its one plan is {sku} (GET gpu_service/sku/)")
    if sku is not None:
        return flavor_name(sku, facts)
    if plan is not None:
        return flavor_name(plan, facts, "sku_item_price_id")
    return None


def decode_list(value: str | list[str] | None, field: str) -> list[str]:
    """The SDK's base64 of a Python list literal (`str(['a', 'b'])`), or a list: parsed by
    a small scanner of string literals, never evaluated, at most MAX_COMMAND characters."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    rule = ("must be base64 of a list of strings such as \"['python', 'serve.py']\", "
            f"at most {MAX_COMMAND} characters")
    if len(value) > MAX_COMMAND * 4 // 3 + 4:
        raise bad(field, "base64_list", rule)
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad(field, "base64_list", rule) from None
    items = _string_list(text)
    if items is None:
        raise bad(field, "base64_list", rule)
    return items


def _string_list(text: str) -> list[str] | None:
    """`['a', "b"]` (or a tuple) as its strings; None for anything else."""
    text = text.strip()
    if len(text) < 2 or (text[0], text[-1]) not in (("[", "]"), ("(", ")")):
        return None
    out: list[str] = []
    pos, end = 1, len(text) - 1
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos == end:
            return out
        match = STRING.match(text, pos, end)
        if match is None:
            return None
        out.append(_unquote(match.group()[1:-1]))
        pos = match.end()
        while pos < end and text[pos].isspace():
            pos += 1
        if pos < end and text[pos] == ",":
            pos += 1
        elif pos != end:
            return None


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), "\\" + m.group(1)), body,
                  flags=re.DOTALL)


def _envs(items: list[EnvVariable]) -> dict[str, str]:
    return {e.key: "" if e.value is None else str(e.value) for e in items}


def triggers(rules: list[Rule] | None) -> dict[str, Any]:
    """TIR auto-scale rules as native scale triggers."""
    out: dict[str, Any] = {}
    for i, rule in enumerate(rules or []):
        where = f"auto_scale_policy.rules[{i}]"
        number = rule.condition_value if rule.condition_value is not None else rule.value
        if number is None:
            raise bad(f"{where}.condition_value", "required", "a rule needs a value")
        if rule.metric in THRESHOLD_METRICS:
            out[THRESHOLD_METRICS[rule.metric]] = {"threshold": int(number)}
        elif rule.metric in TARGET_METRICS:
            out[TARGET_METRICS[rule.metric]] = {"target": number}
        else:
            if not rule.custom_metric_name:
                raise bad(f"{where}.custom_metric_name", "required",
                          "metric 'custom' requires custom_metric_name")
            out.setdefault("custom", []).append({"metric_name": rule.custom_metric_name,
                                                 "target": number})
    return out


def watch_period(rules: list[Rule] | None) -> int | None:
    """The rules' watch period, Berth's one stable window per policy: rules that name one
    must agree."""
    found: int | None = None
    for i, rule in enumerate(rules or []):
        if rule.watch_period is None:
            continue
        if found is not None and rule.watch_period != found:
            raise bad(f"auto_scale_policy.rules[{i}].watch_period", "one_window",
                      f"all rules must share one watch period (an earlier rule has {found}): "
                      "Berth "
                      "averages every trigger over one stable window")
        found = rule.watch_period
    return found


def scale(policy: AutoScalePolicy | None, *, autoscale: bool,
          replicas: int | None = None) -> dict[str, Any]:
    """A native containers list from TIR's replica count or auto-scale policy."""
    if autoscale:
        if policy is None:
            raise bad("auto_scale_policy", "required",
                      "is required when auto scaling is enabled")
        out: dict[str, Any] = {"min": policy.min_replicas, "max": policy.max_replicas,
                               "triggers": triggers(policy.rules)}
        if policy.stability_period is not None:
            out["cooldown_period"] = policy.stability_period
        window = watch_period(policy.rules)
        if window is not None:
            out["stable_window"] = window
        if policy.initial_cooldown_period:
            raise bad("auto_scale_policy.initial_cooldown_period", "unsupported",
                      "Berth has no separate cooldown after start: a first scale-down waits "
                      "a full watch_period of load and stability_period sets the cooldown; "
                      "give 0 or leave it out")
    else:
        count = 1 if replicas is None else replicas
        out = {"min": count, "max": count, "triggers": {}}
    return {"containers": [{"region": REGION, "scale": out}]}


def replica_count(body: EndpointFields) -> int | None:
    return body.replicas if body.replicas is not None else body.replica


def check_hosted(body: EndpointFields) -> None:
    """Refuse the values that would need TIR's hosted storage, registry or plans."""
    details = body.custom_endpoint_details
    container = details.container if details else None
    resources = details.resource_details if details else None
    info = body.detailed_info
    refused: list[tuple[str, bool, str]] = [
        ("committed_replicas", bool(body.committed_replicas),
         "committed replicas need a committed plan; this machine's SKUs have one hourly "
         "plan each (committed_days 0): send 0"),
        ("world_size", (body.world_size or 1) != 1,
         "a replica runs on one machine here: multi-node (world_size > 1) is not supported"),
        ("model_id", body.model_id is not None,
         "names a model in TIR's model repository (EOS), which Berth cannot mount: "
         "put the model in the image or fetch it from the command"),
        ("path", body.path is not None, "a path in TIR's model repository: see model_id"),
        ("dataset_id", body.dataset_id is not None,
         "Berth mounts no TIR dataset into replicas"),
        ("dataset_path", body.dataset_path is not None, "see dataset_id"),
        ("model_load_integration_id", body.model_load_integration_id is not None,
         "names a TIR integration (e.g. a Hugging Face token): pass the token in "
         "custom_endpoint_details.resource_details.env_variables (e.g. HF_TOKEN)"),
        ("storage_type", body.storage_type not in (None, "disk", "sfs"),
         "'disk' (the replica's own files) or 'sfs' (a host directory mounted at sfs_path)"),
        ("sfs_path", body.sfs_path is not None and body.storage_type != "sfs",
         "mounts the host directory of that path only with storage_type 'sfs' in the same "
         "body; leave it empty otherwise"),
        ("disk_path", body.disk_path is not None,
         "TIR's disk is a writable volume of disk_size made for the endpoint; Berth makes "
         "none: a replica writes to its container's own file system, or mounts a host "
         "directory read-only with storage_type 'sfs' and sfs_path"),
        ("custom_endpoint_details.container.container_type",
         container is not None and container.container_type not in (None, "public"),
         "private images name TIR's container registry: use a public image"),
        ("custom_endpoint_details.container.private_image_details",
         container is not None and container.private_image_details is not None
         and container.private_image_details.registry_namespace_id is not None,
         "names TIR's container registry: use a public image"),
        ("custom_endpoint_details.resource_details.mount_path",
         resources is not None and resources.mount_path is not None,
         "where TIR puts the model of model_id (EOS), which Berth cannot fetch: mount a "
         "host directory with storage_type 'sfs' and sfs_path"),
        ("detailed_info.hugging_face_id", info is not None and info.hugging_face_id is not None,
         "TIR's framework images read it; Berth runs the container's own command: give the "
         "model in commands/args or env_variables"),
        ("detailed_info.tokenizer", info is not None and info.tokenizer is not None,
         "see detailed_info.hugging_face_id"),
    ]
    found = [Violation(f, "not_supported_here", m) for f, given, m in refused if given]
    if found:
        raise SpecInvalid(found)


def _command(body: EndpointFields) -> list[str]:
    info = body.detailed_info
    if info is None:
        return []
    return (decode_list(info.commands, "detailed_info.commands")
            + decode_list(info.args, "detailed_info.args"))


def create_to_native(body: EndpointFields, facts: PlatformFacts) -> dict[str, Any]:
    """A TIR create body as native spec data."""
    check_hosted(body)
    details = body.custom_endpoint_details
    container = details.container if details else None
    if container is None or not container.container_name:
        raise bad("custom_endpoint_details.container.container_name", "required",
                  "the container image is required")
    flavor = chosen_flavor(body, facts)
    if flavor is None:
        raise bad("sku_id", "required", "a SKU is required (GET gpu_service/sku/)")
    out: dict[str, Any] = {"name": body.name, "image": container.container_name,
                           "listening_port": PORT, "flavor": flavor,
                           "description": f"TIR {body.framework or 'custom'} endpoint"}
    command = _command(body)
    if command:
        out["command"] = command
    resources = details.resource_details if details else None
    if resources is not None and resources.env_variables:
        out["envs"] = _envs(resources.env_variables)
    volumes = sfs_volumes(body)
    if volumes:
        out["volumes"] = volumes
    out |= scale(body.auto_scale_policy, autoscale=bool(body.is_auto_scale_enabled),
                 replicas=replica_count(body))
    return out | _pull_policy(body) | probes.create_probes(body)


def sfs_volumes(body: EndpointFields) -> list[dict[str, Any]] | None:
    """TIR mounts the shared file system at `sfs_path` in the container when `storage_type`
    is 'sfs'; here the host directory of that path is mounted there, read-only (it must be
    under the installation's `volume_host_paths` and exist). The storage fields own the
    deployment's volumes: 'sfs' -> that one mount, 'disk' -> none, absent -> unchanged."""
    if body.storage_type == "sfs":
        if body.sfs_path is None:
            raise bad("sfs_path", "required", "storage_type 'sfs' needs sfs_path: the "
                      "absolute path the shared file system is mounted at, e.g. /shared")
        return [{"source": body.sfs_path, "target": body.sfs_path, "read_only": True}]
    return [] if body.storage_type == "disk" else None


def _pull_policy(body: EndpointFields) -> dict[str, Any]:
    advance = probes.advance_config(body)
    if advance is not None and advance.image_pull_policy is not None:
        return {"image_pull_policy": advance.image_pull_policy}
    return {}


def patch_to_native(body: EndpointAction, current: DeploymentSpec,
                    facts: PlatformFacts) -> dict[str, Any]:
    """A TIR `action: patch` body as a native merge patch."""
    check_hosted(body)
    out: dict[str, Any] = {}
    flavor = chosen_flavor(body, facts)
    if flavor is not None:
        out["flavor"] = flavor
    details = body.custom_endpoint_details
    if details is not None:
        if details.container is not None and details.container.container_name:
            out["image"] = details.container.container_name
        resources = details.resource_details
        if resources is not None and "env_variables" in resources.model_fields_set:
            out["envs"] = _envs(resources.env_variables or [])
    if body.detailed_info is not None:
        out["command"] = _command(body) or None
    volumes = sfs_volumes(body)
    if volumes is not None:
        out["volumes"] = volumes
    count = replica_count(body)
    if body.is_auto_scale_enabled and "auto_scale_policy" in body.model_fields_set:
        out |= scale(body.auto_scale_policy, autoscale=True)
    elif count is not None and not body.is_auto_scale_enabled:
        out |= scale(None, autoscale=False, replicas=count)
    return out | _pull_policy(body) | probes.patch_probes(body, current)


def kept(body: EndpointFields) -> dict[str, Any]:
    """What the dialect record keeps of a body: the KEPT fields given and the disk size
    (the image pull policy is the spec's `image_pull_policy`)."""
    out = {k: getattr(body, k) for k in KEPT if k in body.model_fields_set}
    details = body.custom_endpoint_details
    if details is not None and details.resource_details is not None and (
            details.resource_details.disk_size is not None):
        out["disk_size"] = details.resource_details.disk_size
    return out


ASYNC_FIELDS = {"async.enabled": "async_enabled", "async.workers": "async_concurrent_workers",
                "async.dataset": "async_dataset_id",
                "async.destination_type": "async_destination_type",
                "async.target_routes": "async_target_routes"}
NATIVE_NAMES = ASYNC_FIELDS | {"volumes": "sfs_path"}


def result_prefix(inference_id: int) -> str:
    """Where an endpoint's results land in its dataset: the folder the SDK's
    `get_async_invocation_request_response` reads (`ASYNC_DATASET_RESPONSE_PATH`)."""
    return f"api/is-{inference_id}/response/"


def async_dataset_number(body: EndpointAction) -> int | None:
    """`async_dataset_id` as the TIR dataset number it names (None when not given)."""
    value = body.async_dataset_id
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.isdigit():
        raise bad("async_dataset_id", "dataset_id", f"must be the number of a dataset of the "
                  f"project (GET …/datasets/); got {value!r}")
    return int(text)


def _route_path(value: str, where: str) -> str:
    path = value.strip()
    if not path or any(c.isspace() for c in path):
        raise bad(where, "route", "must be a path on the model server without spaces, "
                  "e.g. api/v1/chat/completions")
    return path if path.startswith("/") else "/" + path


def target_routes(routes: list[TargetRoute], current: dict[str, str]) -> dict[str, str | None]:
    """TIR's `[{route_name, route_value}]` as a merge patch of native `target_routes`
    ({name: path on the replica}; TIR types the route without its leading '/'): the list
    replaces the routes whole."""
    out: dict[str, str | None] = {}
    for i, r in enumerate(routes):
        where = f"async_target_routes[{i}]"
        if r.route_name in out:
            raise bad(f"{where}.route_name", "unique", f"route {r.route_name!r} is given "
                      "twice: each queue needs its own name")
        out[r.route_name] = _route_path(r.route_value, f"{where}.route_value")
    return {name: None for name in current if name not in out} | out


def async_patch(body: EndpointAction, current: AsyncConfig, dataset: str | None,
                inference_id: int) -> dict[str, Any]:
    """`update_async_configuration` as a native merge patch of `async`. `dataset` is the
    native name of the dataset `async_dataset_id` names (the route looks it up). Disabling
    only turns intake off: the rest stays, and accepted requests still run."""
    if body.async_enabled is None:
        raise bad("async_enabled", "required", "must be true or false")
    if not body.async_enabled:
        return {"async": {"enabled": False}}
    workers = body.async_concurrent_workers
    if workers is None or workers < 1:
        raise bad("async_concurrent_workers", "required",
                  "must be an integer >= 1 when enabling async invocation")
    if dataset is None:
        raise bad("async_dataset_id", "required", "is required when enabling async "
                  "invocation: the number of a dataset of the project (GET …/datasets/)")
    if body.async_destination_type not in (None, "dataset"):
        raise bad("async_destination_type", "dataset_only", "results are written to a "
                  f"dataset: only 'dataset' is supported, not {body.async_destination_type!r}")
    out: dict[str, Any] = {"enabled": True, "workers": workers, "dataset": dataset,
                           "destination_type": "dataset",
                           "result_prefix": result_prefix(inference_id)}
    if body.async_target_routes is not None:
        out["target_routes"] = target_routes(body.async_target_routes, current.target_routes)
    return {"async": out}


def in_tir_terms(exc: SpecInvalid) -> SpecInvalid:
    """A native validation error of `async.*` or `volumes` (made from `sfs_path`) named as
    TIR's body names the field."""
    out = []
    for v in exc.violations:
        field = next((tir for native, tir in NATIVE_NAMES.items()
                      if v.field == native or v.field.startswith((native + ".", native + "["))),
                     v.field)
        out.append(Violation(field, v.rule, v.message))
    return SpecInvalid(out)
