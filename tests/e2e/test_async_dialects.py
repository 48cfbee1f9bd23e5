"""Async invocation through the dialects against a real `berth serve`: the official TIR SDK
(e2enetworks 1.4.9) and Scale GP SDK (scale-gp-beta 0.7.0).

NEEDS THE GATEWAY'S ASYNC INTAKE AND THE DISPATCHER (issue 18, built by the lead): requests
are submitted with `POST {endpoint_url}/async/{route}` (202 `{request_id, status_url}`) and
must be dispatched to catalog/echo for the statuses to reach "completed". Without them this
module fails at the first submit (TIR) or times out waiting (Scale); the same reads are
covered in-process, with requests finished by hand, by tests/integration/dialects/
test_tir_async*.py and test_scale_async.py.

TIR: seed 000's raw `PUT … action: update_async_configuration`, then the SDK's
`get_async_invocation_request_status` until "completed" and
`get_async_invocation_requests_list`. Scale: an `endpoint_type: async` model answers the
SDK's `inference.create` through the queue.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2enetworks.cloud import tir
from scale_gp_beta import SGPClient
from scale_gp_beta.types.model_create_params import ModelLaunchModelCreateRequest

from tests.e2e.harness import BerthServer, wait_for
from tests.e2e.test_dialect_scale import echo_config
from tests.e2e.test_dialect_tir import BASE, PROJECT, TEAM
from tests.e2e.test_dialect_tir import sdk as sdk  # the TIR SDK fixture

GPU = f"/myaccount/api/v1/gpu/teams/{TEAM}/projects/{PROJECT}"
ACCOUNT = "acct-async"


def _submit(address: str, route: str, body: dict[str, Any]) -> str:
    """Through the gateway's intake, as any caller of an endpoint without API keys."""
    r = httpx.post(f"{address}/async/{route}", json=body, timeout=10)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) >= {"request_id", "status_url"}
    return str(accepted["request_id"])


def _completed(sdk: tir.EndPoints, eid: int, rid: str) -> bool:
    ok, found = sdk.get_async_invocation_request_status(eid, rid)
    assert ok, found
    assert found[0].status != "failed", found[0]
    return bool(found[0].status == "completed")


def test_tir_sdk_follows_async_requests_to_completed(sdk: tir.EndPoints,
                                                     server: BerthServer) -> None:
    with server.client() as http:
        sku = http.get("/myaccount/api/v1/gpu/gpu_service/sku/").json()["data"]["CPU"][0]
        made = http.post(f"{BASE}/", json={
            "name": "async-echo", "framework": "custom", "sku_id": sku["sku_id"],
            "replica": 1, "custom_endpoint_details": {
                "container": {"container_name": "catalog/echo"}}})
        assert made.status_code == 200, made.text
        eid = made.json()["data"]["id"]
        dataset = http.post(f"{GPU}/datasets/", json={"name": "async-results",
                                                      "storage_type": "managed"})
        assert dataset.status_code == 200, dataset.text
        number = dataset.json()["data"]["id"]
        put = http.put(f"{BASE}/{eid}/", params={"project_id": PROJECT, "location": "Delhi"},
                       json={"action": "update_async_configuration", "async_enabled": True,
                             "async_concurrent_workers": 2, "async_dataset_id": number,
                             "async_destination_type": "dataset",
                             "async_target_routes": [{"route_name": "QUEUE_1",
                                                      "route_value": "predict"}]})
        assert put.status_code == 200, put.text
    wait_for(lambda: sdk.get(eid)[1].status == "Running", 60, what="Running")
    ok, endpoint = sdk.get(eid)
    assert ok and endpoint.async_enabled and endpoint.async_dataset_id == number
    ids = [_submit(endpoint.endpoint_url, "QUEUE_1", {"n": i}) for i in range(5)]
    for rid in ids:
        wait_for(functools.partial(_completed, sdk, eid, rid), 60, what=f"{rid} completed")
    ok, listed = sdk.get_async_invocation_requests_list(eid, 10)
    assert ok and sorted(i.request_id for i in listed) == sorted(ids)
    assert {i.status for i in listed} == {"completed"}
    root = server.data_dir / "datasets" / f"tir-{TEAM}-{PROJECT}" / "async-results"
    for i, item in enumerate(sorted(listed, key=lambda item: ids.index(item.request_id))):
        assert item.response_path == f"api/is-{eid}/response/{item.request_id}.json"
        result = json.loads((root / item.response_path).read_text())
        assert result["echo"] == {"n": i}  # where the SDK's response reader looks
    ok, missing = sdk.get_async_invocation_request_status(eid, "no-such-request")
    assert not ok and "not found" in missing


@pytest.fixture
def scale(server: BerthServer) -> Iterator[SGPClient]:
    client = SGPClient(api_key=server.token, account_id=ACCOUNT, base_url=server.url,
                       max_retries=0, _strict_response_validation=True)
    yield client
    client.close()


def test_scale_sdk_inference_on_an_async_model(scale: SGPClient) -> None:
    config = echo_config()
    config["model_infra"] |= {"endpoint_type": "async", "per_worker": 2, "min_workers": 1,
                              "max_workers": 1}
    model: ModelLaunchModelCreateRequest = {
        "name": "queued-echo", "model_vendor": "launch", "model_type": "generic",
        "vendor_configuration": config}
    created = scale.models.create(model=model)
    wait_for(lambda: scale.models.retrieve(created.id).status == "ready", 60, every=0.5,
             what="queued-echo ready")
    assert scale.models.retrieve(created.id).vendor_configuration is not None
    answer = scale.inference.create(model="launch/queued-echo", args={"q": 1},
                                    inference_configuration={"timeout_seconds": 60})
    assert answer.object == "generic_inference"
    assert isinstance(answer.response, dict) and answer.response["echo"] == {"q": 1}
