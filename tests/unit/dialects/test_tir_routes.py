"""TIR's model endpoint routes through the real app (SQLite in tmp_path, the fake runtime):
typed bodies, TIR's error envelope naming the field, no 500."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.store.dialect_records import DialectRecord, DialectRecordRepo
from tests.unit.dialects.test_gcore_routes import App
from tests.unit.dialects.test_tir_shapes import b64, sdk_body

BASE = "/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path)
    with a.http:
        yield a
    a.store.close()


def fields(answer: Any) -> list[str]:
    assert answer.status_code == 400, answer.text
    out = answer.json()
    assert out["code"] == 400 and out["data"] == {} and out["message"]
    return list(out["errors"])


def created(app: App, **extra: Any) -> int:
    answer = app.http.post(f"{BASE}/", json=sdk_body(**extra))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["id"])


@pytest.mark.parametrize("action", [[], {}, 3, "fly"])
def test_an_action_that_is_not_one_of_tirs_is_a_400(app: App, action: Any) -> None:
    number = created(app)
    assert fields(app.http.put(f"{BASE}/{number}/", json={"action": action})) == ["action"]


@pytest.mark.parametrize("text", ["-" * 100000 + "1", "[" * 50000 + "]" * 50000,
                                  "['a'" + ", 'a'" * 40000 + "]", "1", "['a', b]", "['a',,]"])
def test_commands_that_are_no_list_of_strings_are_a_400(app: App, text: str) -> None:
    info = {"commands": base64.b64encode(text.encode()).decode(), "args": b64([])}
    answer = app.http.post(f"{BASE}/", json=sdk_body(detailed_info=info))
    assert fields(answer) == ["detailed_info.commands"]


def test_commands_parse_as_python_and_json_lists(app: App) -> None:
    info = {"commands": b64(["python", "-c", "print('it''s')", 'a "b"\\n']),
            "args": base64.b64encode(b'["--port", "8080"]').decode()}
    created(app, detailed_info=info)
    spec = app.native("tir-1-2", "my-echo")
    assert spec["command"] == ["python", "-c", "print('it''s')", 'a "b"\\n', "--port", "8080"]


@pytest.mark.parametrize("field, value", [
    ("committed_replicas", 2), ("world_size", 2), ("model_id", 12), ("path", "models/x"),
    ("dataset_id", 3), ("dataset_path", "d/"), ("model_load_integration_id", 9),
    ("storage_type", "nfs"), ("sfs_path", "/sfs/x"), ("disk_path", "/mnt/disk"),
])
def test_hosted_platform_values_berth_cannot_honour_are_refused(
        app: App, field: str, value: Any) -> None:
    assert fields(app.http.post(f"{BASE}/", json=sdk_body(**{field: value}))) == [field]
    number = created(app, name="other-echo")
    answer = app.http.put(f"{BASE}/{number}/", json={"action": "patch", field: value})
    assert fields(answer) == [field]


def test_the_sdks_empty_hosted_values_are_accepted_and_shown_back(app: App) -> None:
    number = created(app, path="", model_id=None, committed_replicas=0, dataset_path="",
                     storage_type="disk", cluster_type="dedicated", framework="vllm")
    got = app.http.get(f"{BASE}/{number}/").json()["data"]
    assert (got["storage_type"], got["cluster_type"], got["framework"]) == (
        "disk", "dedicated", "vllm")
    assert got["custom_endpoint_details"]["resource_details"]["disk_size"] == 50


def test_the_plan_id_picks_the_flavor_and_must_agree_with_the_sku(app: App) -> None:
    body = sdk_body(sku_item_price_id=2)
    del body["sku_id"]
    assert app.http.post(f"{BASE}/", json=body).status_code == 200
    assert app.native("tir-1-2", "my-echo")["flavor"] == app.facts.flavors[1].name
    answer = app.http.post(f"{BASE}/", json=sdk_body(name="two-echo", sku_item_price_id=2))
    assert fields(answer) == ["sku_item_price_id"]


def test_wrong_types_name_the_tir_field_and_unknown_fields_are_ignored(app: App) -> None:
    assert fields(app.http.post(f"{BASE}/", json=sdk_body(sku_id="x"))) == ["sku_id"]
    assert fields(app.http.post(f"{BASE}/", json=sdk_body(replica=[1]))) == ["replica"]
    details = {"resource_details": {"env_variables": "A=1"}, "container": {
        "container_name": "catalog/echo"}}
    assert fields(app.http.post(f"{BASE}/", json=sdk_body(custom_endpoint_details=details))) == [
        "custom_endpoint_details.resource_details.env_variables"]
    assert app.http.post(f"{BASE}/", json=sdk_body(colour="red")).status_code == 200
    assert fields(app.http.post(f"{BASE}/", json=[])) == ["body"]


def test_the_openapi_document_has_the_tir_request_schemas(app: App) -> None:
    paths = app.http.get("/openapi.json").json()["paths"]
    put = paths["/myaccount/api/v1/gpu/teams/{team}/projects/{project}/serving/inference/"
                "{inference_id}/"]["put"]
    schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert "update_async_configuration" in str(schema["properties"]["action"])


def test_a_record_write_that_fails_leaves_no_endpoint_deployment(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbered record is written in the create's transaction: if it fails, the
    deployment is not created either (no deployment the dialect cannot see)."""
    def fail(self: DialectRecordRepo, r: DialectRecord) -> None:
        raise RuntimeError("record write failed")
    monkeypatch.setattr(DialectRecordRepo, "put", fail)
    assert app.http.post(f"{BASE}/", json=sdk_body()).status_code == 500
    with app.store.read() as tx:
        assert tx.deployments.by_name("tir-1-2", "my-echo") is None
    monkeypatch.undo()
    number = created(app)
    assert app.http.get(f"{BASE}/{number}/").status_code == 200


def test_a_refused_patch_leaves_the_record_unchanged(app: App) -> None:
    number = created(app)
    before = app.http.get(f"{BASE}/{number}/").json()["data"]
    answer = app.http.put(f"{BASE}/{number}/", json={
        "action": "update_auto_scale",
        "auto_scale_policy": {"min_replicas": 3, "max_replicas": 1, "rules": []}})
    assert answer.status_code == 400, answer.text
    assert app.http.get(f"{BASE}/{number}/").json()["data"] == before
