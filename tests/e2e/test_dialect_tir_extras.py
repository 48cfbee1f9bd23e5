"""TIR's model API, advance_config probes and single-replica restart, against a real
`berth serve`: the official SDK (e2enetworks 1.4.9) where it has a call, httpx otherwise."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2enetworks.cloud import tir
from e2enetworks.cloud.tir import helpers as sdk_helpers
from e2enetworks.cloud.tir.api_client import ModelAPIClient

from tests.e2e.harness import BerthServer, create_key, wait_for
from tests.e2e.test_dialect_tir import (
    BASE,
    PROJECT,
    TEAM,
    _plan,
    _status,
    sdk,  # noqa: F401  (the fixture)
)

HEADERS_SERVER = str(Path(__file__).parent / "servers" / "headers.py")
NATIVE = f"/v1/projects/tir-{TEAM}-{PROJECT}/deployments"
MODEL_API = f"/project/p-{PROJECT}"


def _headers_endpoint(sdk: tir.EndPoints, name: str, replicas: int = 1) -> int:  # noqa: F811
    """An endpoint whose model server answers with the request it received."""
    ok, created = sdk.create(name, "custom", _plan(sdk), container_name="local/headers",
                             commands=[sys.executable, HEADERS_SERVER, "${PORT}"],
                             replicas=replicas)
    assert ok, created
    eid = int(created.id)
    wait_for(lambda: _status(sdk, eid) == "Running", 60, what=f"{name} Running")
    return eid


def test_sdk_model_api_infer_reaches_the_endpoint(
        sdk: tir.EndPoints, server: BerthServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    eid = _headers_endpoint(sdk, "llama-3-8b-instruct")
    monkeypatch.setattr(sdk_helpers, "BASE_URL_MODEL_API_CLIENT", f"{server.url}/")
    ok, answer = ModelAPIClient().infer("llama-3-8b-instruct",
                                        {"prompt": "hello", "max_new_tokens": 8})
    assert ok, answer
    assert answer.method == "POST" and answer.path == "/v2/models/llama-3-8b-instruct/infer"
    sent = json.loads(answer.body)
    assert sent["inputs"][0] == {"name": "prompt", "shape": [1], "datatype": "BYTES",
                                 "data": ["hello"]}
    assert sent["inputs"][1]["name"] == "max_new_tokens" and sent["inputs"][1]["data"] == [8]
    seen = vars(answer.headers)
    assert "authorization" not in seen  # the control token never reaches the model server
    with httpx.Client(base_url=server.url, timeout=30) as http:
        missing = http.post(f"{MODEL_API}/v1/no-such-model/infer", json={"inputs": []})
        assert missing.status_code == 404 and missing.json()["code"] == 404
        elsewhere = http.post("/project/p-999/v1/llama-3-8b-instruct/infer", json={})
        assert elsewhere.status_code == 404 and "p-999" in elsewhere.json()["message"]
    _delete(sdk, eid)


def test_endpoint_url_relays_status_headers_and_api_keys(
        sdk: tir.EndPoints, server: BerthServer) -> None:  # noqa: F811
    eid = _headers_endpoint(sdk, "tir-relay")
    url = f"{MODEL_API}/endpoint/is-{eid}/v2/models/m/infer"
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]}]}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(url, params={"trace": "1"}, json=body, headers={"X-Request-Id": "r-7"})
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen["path"] == "/v2/models/m/infer?trace=1"
        assert json.loads(seen["body"]) == body and seen["headers"]["x-request-id"] == "r-7"
        assert r.headers["content-type"] == "application/json"

        with server.client() as native:
            key = create_key(native, f"tir-{TEAM}-{PROJECT}", "infer-key")
            patched = native.patch(f"{NATIVE}/tir-relay", json={"api_keys": ["infer-key"]})
            assert patched.status_code == 202, patched.text
        refused = wait_for(lambda: (x := http.post(url, json=body)).status_code == 401 and x,
                           10, what="the gateway to require a key")
        assert "API key" in refused.text  # the gateway's own answer, unchanged
        as_control = http.post(url, json=body,
                               headers={"Authorization": f"Bearer {server.token}"})
        assert as_control.status_code == 401  # a control token is not a deployment key
        keyed = http.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code == 200 and json.loads(keyed.json()["body"]) == body
        assert "authorization" not in keyed.json()["headers"]  # the gateway took it off
        assert http.get(f"{MODEL_API}/endpoint/is-9999/x").status_code == 404
    _delete(sdk, eid)


def _create(http: httpx.Client, name: str, advance: dict[str, Any]) -> httpx.Response:
    sku = http.get("/myaccount/api/v1/gpu/gpu_service/sku/").json()["data"]["CPU"][0]
    return http.post(f"{BASE}/", json={
        "name": name, "framework": "custom", "sku_id": sku["sku_id"], "replica": 1,
        "custom_endpoint_details": {"container": {"container_name": "catalog/echo",
                                                  "advance_config": advance}}})


def test_advance_config_probes_are_the_endpoints_probes(server: BerthServer) -> None:
    probe = {"protocol": "http", "path": "/nope", "port": 8080, "initial_delay_seconds": 0,
             "period_seconds": 1, "timeout_seconds": 1, "failure_threshold": 1,
             "success_threshold": 1, "grpc_service": "", "commands": ""}
    advance = {"image_pull_policy": "IfNotPresent", "is_readiness_probe_enabled": "true",
               "is_liveness_probe_enabled": "false", "readiness_probe": probe}
    with server.client() as http:
        bad = _create(http, "tir-probed", advance | {"readiness_probe": probe | {
            "protocol": "grpc"}})
        assert bad.status_code == 400
        assert list(bad.json()["errors"]) == [
            "custom_endpoint_details.container.advance_config.readiness_probe.protocol"]
        r = _create(http, "tir-probed", advance)
        assert r.status_code == 200, r.text
        eid = r.json()["data"]["id"]
        shown = r.json()["data"]["custom_endpoint_details"]["container"]["advance_config"]
        assert shown["is_readiness_probe_enabled"] is True
        assert shown["readiness_probe"]["path"] == "/nope" and not shown["liveness_probe"]
        native = http.get(f"{NATIVE}/tir-probed").json()
        assert native["probes"]["readiness"]["http_get"]["path"] == "/nope"

        def replicas() -> list[dict[str, Any]]:
            return list(http.get(f"{BASE}/{eid}/replicas/").json()["data"])

        wait_for(lambda: any(x["status"] == "Running" for x in replicas()), 30,
                 what="a started replica")
        assert not any(x["ready"] for x in replicas())  # /nope answers 404: never ready
        fixed = advance | {"readiness_probe": probe | {"path": "/healthz"}}
        r = http.put(f"{BASE}/{eid}/", json={"action": "patch", "custom_endpoint_details": {
            "container": {"advance_config": fixed}}})
        assert r.status_code == 200, r.text
        wait_for(lambda: http.get(f"{BASE}/{eid}/").json()["data"]["status"] == "Running",
                 60, what="Running with the fixed probe")
        # The endpoint's URL streams server-sent events through, and keeps the model's status.
        stream = f"{MODEL_API}/endpoint/is-{eid}/predict/stream"
        with http.stream("POST", stream, json={"a": 1, "b": 2}) as events:
            assert events.headers["content-type"] == "text/event-stream"
            lines = [ln for ln in events.iter_lines() if ln]
        assert lines[-1] == "data: [DONE]" and json.loads(lines[0][6:])["echo"] == {"a": 1}
        unknown = http.post(f"{MODEL_API}/endpoint/is-{eid}/no/such/route", json={})
        assert unknown.status_code == 404 and "not found: POST" in unknown.json()["error"]
        assert http.delete(f"{BASE}/{eid}/").status_code == 200


def test_restart_replica_replaces_only_that_replica(
        sdk: tir.EndPoints, server: BerthServer) -> None:  # noqa: F811
    ok, created = sdk.create("tir-two", "custom", _plan(sdk), container_name="catalog/echo",
                             replicas=2)
    assert ok, created
    eid = int(created.id)
    wait_for(lambda: sdk.get(eid)[1].ready_replicas == 2, 60, what="2 ready replicas")
    with server.client() as http:
        def pids() -> dict[str, int]:
            items = http.get(f"{NATIVE}/tir-two/replicas").json()["items"]
            return {r["id"]: r["pid"] for r in items if r["state"] == "RUNNING" and r["ready"]}

        before = pids()
        ok, listed = sdk.list_replicas(eid)
        assert ok and sorted(r.pod_name for r in listed) == sorted(before)
        restarted, kept = sorted(before)
        ok, answer = sdk.restart_replica(restarted, eid)
        assert ok, answer
        after = wait_for(lambda: (p := pids()) and len(p) == 2 and restarted not in p and p,
                         60, what=f"{restarted} replaced")
        assert after[kept] == before[kept]  # the other replica was never touched
        (new,) = set(after) - {kept}
        assert after[new] != before[restarted]
        native = http.get(f"{NATIVE}/tir-two").json()
        assert native["generation"] == 1  # no spec change, no rollout
        events = http.get(f"{NATIVE}/tir-two/events").json()["items"]
        assert any(e["reason"] == "Draining" and e["replica_id"] == restarted for e in events)
        missing = http.delete(f"{BASE}/{eid}/replicas/tir-two-nope/")
        assert missing.status_code == 404 and "tir-two-nope" in missing.json()["message"]
    _delete(sdk, eid)


def _delete(sdk: tir.EndPoints, eid: int) -> None:  # noqa: F811
    ok, _ = sdk.delete(eid)
    assert ok
