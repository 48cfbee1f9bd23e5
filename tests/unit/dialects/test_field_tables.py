"""Each dialect's request-field table (docs/dialects/<dialect>.md, `## Request fields`) is
true: every field of the dialect's request models is in it, every field it says is refused
is refused by the API, every field it says acts changes the native spec, and every field it
says is kept is echoed back.

`field_table(path)` is shared: test_field_tables_scale_foundry.py walks the other two.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

import pytest
from pydantic import BaseModel

from berth.api.dialects.gcore import models as gcore_models
from berth.api.dialects.gcore.v2 import flavor_id as v2_flavor_id
from berth.api.dialects.tir import datasets as tir_datasets
from berth.api.dialects.tir import models as tir_models
from berth.domain.platform import PlatformFacts, Region
from tests.fakes.builders import facts as gcore_facts
from tests.unit.dialects.test_gcore_routes import PROJECT as GCORE_PROJECT
from tests.unit.dialects.test_gcore_routes import App
from tests.unit.dialects.test_gcore_routes import body as gcore_body
from tests.unit.dialects.test_tir_shapes import sdk_body as tir_body

ROOT = Path(__file__).resolve().parents[3]
HEADING = "## Request fields"
Handling = Literal["acts", "refused", "kept"]
HANDLINGS: tuple[str, ...] = get_args(Handling)


@dataclass(frozen=True)
class FieldRow:
    """One table row: `field` is the dotted path as the dialect names it (`[]` marks a list
    item); a row covers the fields below it too, unless a more specific row names them."""

    field: str
    handling: Handling
    note: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def field_table(path: Path, heading: str = HEADING) -> list[FieldRow]:
    """The rows of the first markdown table under `heading`: columns `field`, `handling`
    (acts, refused or kept: the first word of the cell), then a note. Backticks are
    stripped from the field cell; one cell may name several fields, comma-separated."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise AssertionError(f"{path} has no {heading!r} section") from None
    table = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    assert len(table) > 2, f"{path}: no table under {heading!r}"
    header = [c.lower() for c in _cells(table[0])]
    assert header[:2] == ["field", "handling"], f"{path}: columns are {header}"
    rows = []
    for line in table[2:]:
        cells = _cells(line)
        word = re.split(r"\W", cells[1].strip("* "), maxsplit=1)[0].lower()
        assert word in HANDLINGS, f"{path}: {cells[1]!r} is not one of {HANDLINGS}"
        note = cells[2] if len(cells) > 2 else ""
        for name in cells[0].split(","):
            rows.append(FieldRow(name.strip().strip("`"), cast(Handling, word), note))
    return rows


def model_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every leaf field path of a request model, through nested models (`a.b`, `a[].b`)."""
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = _nested(info.annotation)
        if not nested:
            out.append(path)
        for inner, suffix in nested:
            out += model_fields(inner, f"{path}{suffix}.")
    return out


def _nested(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    found = []
    origin = get_origin(annotation)
    for arg in get_args(annotation):
        suffix = "[]" if origin in (list, tuple) else ""
        found += [(m, suffix + s) for m, s in _nested(arg)]
    return found


def row_for(rows: list[FieldRow], path: str) -> FieldRow | None:
    """The most specific row covering `path`."""
    covering = [r for r in rows if path == r.field or path.startswith((r.field + ".",
                                                                       r.field + "[]"))]
    return max(covering, key=lambda r: len(r.field), default=None)


def uncovered(rows: list[FieldRow], models: list[type[BaseModel]]) -> list[str]:
    return [p for m in models for p in model_fields(m) if row_for(rows, p) is None]


def test_field_table_parses_rows_and_covers_by_prefix(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# X\n\n## Request fields\n\n| field | handling | note |\n|---|---|---|\n"
                   "| `a`, `b.c` | acts | yes |\n| `b` | **kept** and echoed | k |\n"
                   "\n## Next\n| field | handling |\n|---|---|\n| `z` | acts |\n")
    rows = field_table(doc)
    assert rows == [FieldRow("a", "acts", "yes"), FieldRow("b.c", "acts", "yes"),
                    FieldRow("b", "kept", "k")]
    assert row_for(rows, "b.c.d") == FieldRow("b.c", "acts", "yes")
    assert row_for(rows, "b.e") == FieldRow("b", "kept", "k")
    assert row_for(rows, "z") is None and row_for(rows, "ab") is None


# ---- Gcore and TIR -----------------------------------------------------------------------

Body = dict[str, Any]


def set_at(body: Body, path: str, value: Any) -> Body:
    """A copy of `body` with `path` (`a.b[0].c`) set, creating objects on the way."""
    out = copy.deepcopy(body)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node: Any = out
    for part, after in itertools.pairwise(parts):
        if isinstance(part, str) and (part not in node or node[part] is None):
            node[part] = [] if isinstance(after, int) else {}
        node = node[part]
    node[parts[-1]] = value
    return out


def changed(body: Body, changes: Body) -> Body:
    for path, value in changes.items():
        body = set_at(body, path, value)
    return body


def error_fields(answer: Any) -> list[str]:
    out = answer.json()
    if "errors" in out and isinstance(out["errors"], dict):  # TIR
        return list(out["errors"])
    return [e["field"] for e in out.get("errors", [])]


def table_path(field: str) -> str:
    return field.replace("[]", "[0]")


GCORE_DOC = ROOT / "docs" / "dialects" / "gcore.md"
GCORE_MODELS: list[type[BaseModel]] = [
    gcore_models.DeploymentCreate, gcore_models.InstanceUpdate, gcore_models.ApiKeyCreate,
    gcore_models.ApiKeyUpdate, gcore_models.RegistryCredentialCreate,
    gcore_models.SecretCreate]
GCORE_V3 = f"/cloud/v3/inference/{GCORE_PROJECT}"
SQS = {"queue_url": "q", "queue_length": 1, "activation_queue_length": 1, "aws_region": "x",
       "secret_name": "s"}
GCORE_REFUSED: dict[str, Body] = {
    "containers[].scale.triggers.sqs": {"containers[0].scale.triggers.sqs": SQS},
    "logging.topic_name": {"logging.topic_name": "my-log"},
    "logging.destination_region_id": {"logging.destination_region_id": 1},
    "project_id": {"project_id": GCORE_PROJECT + 1},
}
PROBE = {"enabled": True, "probe": {"tcp_socket": {"port": 8080}, "period_seconds": 2}}
# For each deployment field the table says acts: a change to the create body that must
# change the native spec.
GCORE_ACTS: dict[str, Body] = {
    "name": {"name": "other-name"},
    "image": {"image": "python:3.12", "command": ["python3", "-m", "http.server"]},
    "listening_port": {"listening_port": 9000}, "command": {"command": ["serve"]},
    "envs": {"envs": {"A": "1"}}, "description": {"description": "d"},
    "timeout": {"timeout": 5}, "api_keys": {"api_keys": ["k"]},
    "auth_enabled": {"auth_enabled": True}, "credentials_name": {"credentials_name": "hub"},
    "flavor_name": {"flavor_name": gcore_facts().flavors[1].name},
    "containers": {"containers[0].scale.max": 3},
    "containers[].scale.min": {"containers[0].scale.min": 2},
    "containers[].scale.max": {"containers[0].scale.max": 4},
    "containers[].scale.cooldown_period": {"containers[0].scale.cooldown_period": 7},
    "containers[].scale.polling_interval": {"containers[0].scale.polling_interval": 3},
    "containers[].scale.triggers.cpu": {"containers[0].scale.triggers.cpu.threshold": 80},
    "containers[].scale.triggers.memory": {"containers[0].scale.triggers.memory.threshold": 70},
    "containers[].scale.triggers.gpu_memory": {
        "containers[0].scale.triggers.gpu_memory.threshold": 60},
    "containers[].scale.triggers.gpu_utilization": {
        "containers[0].scale.triggers.gpu_utilization.threshold": 50},
    "containers[].scale.triggers.http": {"containers[0].scale.triggers.http": {
        "rate": 5, "window": 10}},
    "ingress_opts": {"ingress_opts.disable_response_buffering": True},
    "logging": {"logging": {"enabled": False}},
    "logging.enabled": {"logging.enabled": False},
    "logging.retention_policy": {"logging.retention_policy.period": 3},
    "probes": {"probes.readiness_probe": PROBE},
}


def container_facts() -> PlatformFacts:
    """The fake machine, with podman and SHARED allowed for volumes."""
    return replace(gcore_facts(), regions={"local": Region("local", "process+podman",
                                                           runs_images=True)},
                   volume_roots=(SHARED,),
                   host_path=lambda p: os.path.realpath(p) if os.path.exists(p) else None)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path, container_facts())
    with a.http:
        yield a
    a.store.close()


def test_gcore_table_covers_every_request_field() -> None:
    assert uncovered(field_table(GCORE_DOC), GCORE_MODELS) == []


def test_gcore_fields_the_table_refuses_are_refused(app: App) -> None:
    refused = {r.field for r in field_table(GCORE_DOC) if r.handling == "refused"}
    assert refused == set(GCORE_REFUSED)
    for field, change in GCORE_REFUSED.items():
        answer = app.http.post(f"{GCORE_V3}/deployments", json=changed(gcore_body(), change))
        assert answer.status_code == 400, (field, answer.text)
        assert error_fields(answer) == [table_path(field)], field


def test_gcore_fields_the_table_says_act_change_the_native_spec(app: App) -> None:
    assert app.http.post(f"{GCORE_V3}/registry_credentials", json={
        "name": "hub", "registry_url": "docker.io", "username": "u", "password": "p"}
                         ).status_code == 200
    assert app.http.post(f"{GCORE_V3}/deployments", json=gcore_body()).status_code == 200
    base = app.native(str(GCORE_PROJECT), "my-echo")
    acts = {r.field for r in field_table(GCORE_DOC) if r.handling == "acts"}
    assert set(GCORE_ACTS) <= acts
    for field, change in GCORE_ACTS.items():
        answer = app.http.put(f"{GCORE_V3}/deployments/my-echo",
                              json=changed(gcore_body(), change))
        name = change.get("name", "my-echo")
        if name != "my-echo":  # a rename is refused on PUT: create it instead
            answer = app.http.post(f"{GCORE_V3}/deployments",
                                   json=changed(gcore_body(), change))
        assert answer.status_code == 200, (field, answer.text)
        assert app.native(str(GCORE_PROJECT), name) != base, field
        app.http.put(f"{GCORE_V3}/deployments/my-echo", json=gcore_body())
    rest = acts - set(GCORE_ACTS)
    assert rest == {"flavor_id", "api_key_ids", "image_registry_id", "expires_at",
                    "registry_url", "username", "password", "type", "data"}
    # v2's ids, the key's, the credential's and the secret's fields, each read back natively
    instance = app.deployments.get(str(GCORE_PROJECT), "my-echo").id
    key, _secret = app.app.state.api_keys.create(str(GCORE_PROJECT), {"name": "k2"})
    flavor = gcore_facts().flavors[1].name
    v2 = gcore_body() | {"flavor_id": v2_flavor_id(flavor), "api_key_ids": [key.id],
                         "image_registry_id": "hub"}
    del v2["flavor_name"]
    answer = app.http.put(f"/cloud/v2/inference/deployments/{instance}", json=v2)
    assert answer.status_code == 200, answer.text
    native = app.native(str(GCORE_PROJECT), "my-echo")
    assert (native["flavor"], native["api_keys"], native["credentials_name"]) == (
        flavor, ["k2"], "hub")
    answer = app.http.post(f"{GCORE_V3}/api_keys", json={
        "name": "k3", "expires_at": "2099-01-01T00:00:00Z"})
    assert app.app.state.api_keys.get(str(GCORE_PROJECT), "k3").expires_at.year == 2099
    assert app.http.put(f"{GCORE_V3}/registry_credentials/hub", json={
        "registry_url": "ghcr.io", "username": "v", "password": "q"}).status_code == 200
    pull = app.app.state.credentials.pull_auth(str(GCORE_PROJECT), "hub")
    assert (pull.registry_url, pull.username, pull.password) == ("ghcr.io", "v", "q")
    assert app.http.post(f"{GCORE_V3}/secrets", json={"name": "s", "type": "aws-iam", "data": {
        "aws_access_key_id": "a", "aws_secret_access_key": "b"}}).status_code == 200
    secret = app.app.state.credentials.get_secret(str(GCORE_PROJECT), "s")
    assert secret.type == "aws-iam"


TIR_DOC = ROOT / "docs" / "dialects" / "tir.md"
# The app's one allowed host directory, mounted by `storage_type: sfs` (an image, not the
# catalog's: volumes mount into containers).
SHARED = os.path.realpath(ROOT / "docs")
SFS: Body = {"storage_type": "sfs", "sfs_path": SHARED,
             "custom_endpoint_details.container.container_name": "localhost/model:v1"}
TIR = "/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference"
ADVANCE = "custom_endpoint_details.container.advance_config"
TIR_REFUSED: dict[str, Body] = {
    "custom_endpoint_details.container.container_type": {
        "custom_endpoint_details.container.container_type": "private"},
    "custom_endpoint_details.container.private_image_details": {
        "custom_endpoint_details.container.private_image_details.registry_namespace_id": 3},
    f"{ADVANCE}.readiness_probe.grpc_service": {
        f"{ADVANCE}.is_readiness_probe_enabled": True,
        f"{ADVANCE}.readiness_probe": {"protocol": "http", "grpc_service": "svc"}},
    f"{ADVANCE}.liveness_probe.grpc_service": {
        f"{ADVANCE}.is_liveness_probe_enabled": True,
        f"{ADVANCE}.liveness_probe": {"protocol": "tcp", "grpc_service": "svc"}},
    "custom_endpoint_details.resource_details.mount_path": {
        "custom_endpoint_details.resource_details.mount_path": "/mnt"},
    "detailed_info.hugging_face_id": {"detailed_info.hugging_face_id": "org/model"},
    "detailed_info.tokenizer": {"detailed_info.tokenizer": "org/tok"},
    "committed_replicas": {"committed_replicas": 1}, "world_size": {"world_size": 2},
    "path": {"path": "m/"}, "model_id": {"model_id": 4}, "dataset_id": {"dataset_id": 5},
    "dataset_path": {"dataset_path": "d/"}, "model_load_integration_id": {
        "model_load_integration_id": 6}, "disk_path": {"disk_path": "/disk"},
    "auto_scale_policy.rules[].condition_type": {"is_auto_scale_enabled": True,
                                                 "auto_scale_policy": {"rules": [{
                                                     "metric": "concurrency", "value": 2,
                                                     "condition_type": "percentage"}]}},
    "auto_scale_policy.initial_cooldown_period": {"is_auto_scale_enabled": True,
                                                  "auto_scale_policy": {
                                                      "initial_cooldown_period": "30"}},
}
# `update_async_configuration` fields (PUT only): a body, on top of ASYNC_ON, that is refused.
ASYNC_ON: Body = {"action": "update_async_configuration", "async_enabled": True,
                  "async_concurrent_workers": 1, "async_dataset_id": 1}
TIR_REFUSED_ASYNC: dict[str, Body] = {
    "async_destination_type": {"async_destination_type": "queue"},
}
# ... and a change to ASYNC_ON that must change the native spec's `async`.
TIR_ACTS_ASYNC: dict[str, Body] = {
    "async_enabled": {"async_enabled": False},
    "async_concurrent_workers": {"async_concurrent_workers": 5},
    "async_dataset_id": {"async_dataset_id": 2},
    "async_target_routes": {"async_target_routes": [{"route_name": "QUEUE_1",
                                                     "route_value": "predict"}]},
}
TIR_ACTS: dict[str, Body] = {
    "name": {"name": "other-echo"}, "sku_id": {"sku_id": 2},
    "sku_item_price_id": {"sku_id": None, "sku_item_price_id": 2},
    "replica": {"replica": 3}, "replicas": {"replica": None, "replicas": 3},
    "is_auto_scale_enabled": {"is_auto_scale_enabled": True, "auto_scale_policy": {
        "min_replicas": 1, "max_replicas": 4, "rules": [{"metric": "cpu", "value": 50}]}},
    "auto_scale_policy": {"is_auto_scale_enabled": True, "auto_scale_policy": {
        "min_replicas": 0, "max_replicas": 2, "rules": []}},
    "auto_scale_policy.rules[].watch_period": {"is_auto_scale_enabled": True,
                                               "auto_scale_policy": {"rules": [{
                                                   "metric": "concurrency", "value": 2,
                                                   "watch_period": "45"}]}},
    "custom_endpoint_details.container.container_name": {
        "custom_endpoint_details.container.container_name": "python:3.12"},
    ADVANCE: {f"{ADVANCE}.is_readiness_probe_enabled": True,
              f"{ADVANCE}.readiness_probe": {"protocol": "tcp"}},
    f"{ADVANCE}.image_pull_policy": {f"{ADVANCE}.image_pull_policy": "Never"},
    "custom_endpoint_details.resource_details.env_variables": {
        "custom_endpoint_details.resource_details.env_variables": [{"key": "B", "value": 2}]},
    "detailed_info.commands": {"detailed_info.commands": ["python3"]},
    "detailed_info.args": {"detailed_info.args": ["-V"]},
    "storage_type": SFS, "sfs_path": SFS,
}
TIR_KEPT: dict[str, tuple[Body, str]] = {
    "custom_endpoint_details.resource_details.disk_size": (
        {"custom_endpoint_details.resource_details.disk_size": 77},
        "custom_endpoint_details.resource_details.disk_size"),
    "framework": ({"framework": "vllm"}, "framework"),
    "cluster_type": ({"cluster_type": "dedicated"}, "cluster_type"),
}


def shown(data: Body, path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        node = node[part]
    return node


def tir_state(app: App, name: str) -> tuple[Body, str]:
    d = app.deployments.get("tir-1-2", name)
    return d.spec.model_dump(mode="json"), d.desired.value


def test_tir_table_covers_every_request_field() -> None:
    models: list[type[BaseModel]] = [tir_models.EndpointCreate, tir_models.EndpointAction]
    assert uncovered(field_table(TIR_DOC), models) == []


def test_tir_fields_the_table_refuses_are_refused(app: App) -> None:
    refused = {r.field for r in field_table(TIR_DOC) if r.handling == "refused"}
    assert refused == set(TIR_REFUSED) | set(TIR_REFUSED_ASYNC)
    for field, change in TIR_REFUSED.items():
        answer = app.http.post(f"{TIR}/", json=changed(tir_body(), change))
        assert answer.status_code == 400, (field, answer.text)
        assert error_fields(answer) == [table_path(field)], field
    number = _async_endpoint(app)
    for field, change in TIR_REFUSED_ASYNC.items():
        answer = app.http.put(f"{TIR}/{number}/", json=ASYNC_ON | change)
        assert answer.status_code == 400, (field, answer.text)
        assert error_fields(answer) == [field], field


def _async_endpoint(app: App) -> int:
    """An endpoint, and the project's datasets 1 and 2."""
    for name in ("one", "two"):
        made = app.http.post("/myaccount/api/v1/gpu/teams/1/projects/2/datasets/",
                             json={"name": name})
        assert made.status_code == 200, made.text
    answer = app.http.post(f"{TIR}/", json=tir_body(name="async-echo"))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["id"])


def test_tir_fields_the_table_says_act_change_the_native_deployment(app: App) -> None:
    acts = {r.field for r in field_table(TIR_DOC) if r.handling == "acts"}
    assert acts == set(TIR_ACTS) | set(TIR_ACTS_ASYNC) | {"action"}
    for i, (field, change) in enumerate(TIR_ACTS.items()):
        name = f"base-{i:03d}"
        assert app.http.post(f"{TIR}/", json=tir_body(name=name)).status_code == 200
        body = changed(tir_body(name=name), change)
        made = body["name"] if field == "name" else f"made-{i:03d}"
        assert app.http.post(f"{TIR}/", json=body | {"name": made}).status_code == 200, field
        if field == "name":
            assert tir_state(app, made)[0]["name"] == "other-echo"
            continue
        assert tir_state(app, made)[0] | {"name": name} != tir_state(app, name)[0], field
    before = tir_state(app, "base-000")
    number = app.http.get(f"{TIR}/").json()["data"][0]["id"]
    assert app.http.put(f"{TIR}/{number}/", json={"action": "stop"}).status_code == 200
    assert tir_state(app, "base-000") != before


def test_tir_async_fields_the_table_says_act_change_the_native_async(app: App) -> None:
    number = _async_endpoint(app)
    for field, change in TIR_ACTS_ASYNC.items():
        assert app.http.put(f"{TIR}/{number}/", json=ASYNC_ON).status_code == 200
        base = tir_state(app, "async-echo")[0]["async_"]
        answer = app.http.put(f"{TIR}/{number}/", json=ASYNC_ON | change)
        assert answer.status_code == 200, (field, answer.text)
        assert tir_state(app, "async-echo")[0]["async_"] != base, field


DATASETS = "/myaccount/api/v1/gpu/teams/1/projects/2/datasets/"
DATASET_REFUSED: dict[str, Body] = {
    "storage_type": {"storage_type": "e2e_s3"}, "bucket_name": {"bucket_name": "b"},
    "encryption_type": {"encryption_type": "sse-c"},
    "encryption_enable": {"encryption_enable": True},
}


def test_tir_dataset_table_covers_refuses_and_acts(app: App) -> None:
    rows = field_table(TIR_DOC, "## Dataset fields")
    assert uncovered(rows, [tir_datasets.DatasetCreate]) == []
    assert {r.field for r in rows if r.handling == "refused"} == set(DATASET_REFUSED)
    for field, change in DATASET_REFUSED.items():
        answer = app.http.post(DATASETS, json={"name": "refused"} | change)
        assert answer.status_code == 400, (field, answer.text)
        assert error_fields(answer) == [field], field
    assert {r.field for r in rows if r.handling == "acts"} == {"name", "description"}
    made = app.http.post(DATASETS, json={"name": "made", "description": "d"})
    assert made.status_code == 200, made.text
    native = app.app.state.datasets.get("tir-1-2", "made")
    assert (native.name, native.description) == ("made", "d")


def test_tir_fields_the_table_keeps_are_shown_back(app: App) -> None:
    kept = {r.field for r in field_table(TIR_DOC) if r.handling == "kept"}
    assert kept == set(TIR_KEPT)
    for i, (field, (change, where)) in enumerate(TIR_KEPT.items()):
        body = changed(tir_body(name=f"kept-{i:03d}"), change)
        made = app.http.post(f"{TIR}/", json=body)
        assert made.status_code == 200, (field, made.text)
        got = app.http.get(f"{TIR}/{made.json()['data']['id']}/").json()["data"]
        assert shown(got, where) == shown(body, where), field
