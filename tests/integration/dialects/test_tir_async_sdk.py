"""The official E2E Networks TIR SDK (e2enetworks 1.4.9) reading async requests and datasets
from the in-process app: its `requests` sessions are handed to the TestClient
(tests/fakes/sdk_transport.py). Requests are submitted with InvocationService.submit and
finished by hand; tests/e2e/test_async_dialects.py does the same through `berth serve`'s
gateway intake and dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from e2enetworks.cloud import tir
from e2enetworks.cloud.tir import client as sdk_client
from e2enetworks.cloud.tir.datasets import datasets as sdk_datasets
from e2enetworks.cloud.tir.inference import endpoints as sdk_endpoints

from tests.fakes.sdk_transport import RequestsViaTestClient
from tests.integration.dialects.test_tir_async import ROUTES, Env, dataset, endpoint

HOST = "http://testserver"
GPU = f"{HOST}/myaccount/api/v1/gpu/"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    e = Env(tmp_path)

    class InProcess(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.mount(HOST, RequestsViaTestClient(e.http))

    monkeypatch.setattr(sdk_client, "Session", InProcess)
    monkeypatch.setattr(sdk_endpoints, "BASE_GPU_URL", GPU)
    monkeypatch.setattr(sdk_datasets, "BASE_GPU_URL", GPU)
    monkeypatch.setattr(sdk_endpoints, "ASYNC_STATUS_FETCH_URL", GPU + (
        "teams/{team_id}/projects/{project_id}/serving/inference/{endpoint_id}/async_status/"))
    with e.http:
        tir.init(api_key="ignored-api-key", access_token=e.token, team="1", project="2",
                 location="Delhi")
        yield e
    e.close()


def configured(env: Env) -> tuple[int, int]:
    """An endpoint with async on, set as seed 000 shows: a raw PUT."""
    eid, number = endpoint(env), dataset(env)
    answer = env.http.put(
        f"/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference/{eid}/",
        params={"project_id": 2, "active_iam": 5, "location": "Delhi"},
        json={"action": "update_async_configuration", "async_enabled": True,
              "async_concurrent_workers": 2, "async_dataset_id": number,
              "async_destination_type": "dataset", "async_target_routes": ROUTES})
    assert answer.status_code == 200, answer.text
    return eid, number


def statuses(items: Any) -> list[tuple[str, str]]:
    return [(i.request_id, i.status) for i in items]


def test_the_sdk_follows_a_request_to_completed(env: Env) -> None:
    eid, number = configured(env)
    sdk = tir.EndPoints()
    ok, got = sdk.get(eid)
    assert ok and got.async_enabled is True and got.async_dataset_id == number
    rid = env.submit()
    ok, found = sdk.get_async_invocation_request_status(eid, rid)
    assert ok and statuses(found) == [(rid, "queued")]
    env.finish(answer=b'{"answer": 1}')
    ok, found = sdk.get_async_invocation_request_status(eid, rid)
    assert ok and statuses(found) == [(rid, "completed")]
    assert found[0].response_path == f"api/is-{eid}/response/{rid}.json"
    ok, missing = sdk.get_async_invocation_request_status(eid, "no-such-request")
    assert not ok and "not found" in missing


def test_the_sdk_lists_requests_by_date_filter(env: Env) -> None:
    eid, _ = configured(env)
    sdk = tir.EndPoints()
    ids = [env.submit() for _ in range(3)]
    env.finish(limit=1)
    ok, items = sdk.get_async_invocation_requests_list(eid, 2)
    assert ok and [i.request_id for i in items] == [ids[2], ids[1]]
    ok, every = sdk.get_async_invocation_requests_list(eid, 10, date_filter="current_month")
    assert ok and sorted(statuses(every)) == sorted(
        [(ids[0], "completed"), (ids[1], "queued"), (ids[2], "queued")])
    ok, none = sdk.get_async_invocation_requests_list(eid, 10, date_filter="previous_month")
    assert ok and none == []


def test_the_sdk_refuses_status_of_an_endpoint_without_async(env: Env) -> None:
    eid = endpoint(env)
    with pytest.raises(ValueError, match="Async invocation not enable"):
        tir.EndPoints().get_async_invocation_request_status(eid, "r")


def test_the_sdks_datasets_list_and_get(env: Env) -> None:
    number = dataset(env)
    ok, items = sdk_datasets.Datasets().list()
    assert ok and [(d.id, d.name) for d in items] == [(number, "results")]
    ok, one = sdk_datasets.Datasets().get(number)
    assert ok and one.bucket.bucket_name == "results" and one.storage_type == "managed"
