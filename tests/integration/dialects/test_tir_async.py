"""TIR's async invocation through the real app (SQLite and a data directory in tmp_path, the
fake runtime): update_async_configuration drives the native spec, async_status reads the
queue, the datasets routes read DatasetService. Requests are submitted with
InvocationService.submit and finished by hand (tests/fakes/dispatch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.domain.errors import Conflict
from berth.services.datasets import DatasetService
from berth.services.deployments import DeploymentService
from berth.services.invocations import InvocationService
from tests.fakes.dispatch import finish
from tests.integration.api.app_env import ApiEnv
from tests.unit.dialects.test_tir_shapes import sdk_body

GPU = "/myaccount/api/v1/gpu/teams/1/projects/2"
BASE = f"{GPU}/serving/inference"
PROJECT = "tir-1-2"


class Env(ApiEnv):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, data_dir=tmp / "data")
        self.deployments: DeploymentService = self.app.state.deployments
        self.invocations: InvocationService = self.app.state.invocations
        self.datasets: DatasetService = self.app.state.datasets

    def ok(self, answer: Any) -> Any:
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["code"] == 200 and out["errors"] == {}
        return out["data"]

    def refused(self, answer: Any, status: int = 400) -> list[str]:
        assert answer.status_code == status, answer.text
        out = answer.json()
        assert out["code"] == status and out["data"] == {} and out["message"]
        return list(out["errors"]) if isinstance(out["errors"], dict) else []

    def configure(self, eid: int, **body: Any) -> Any:
        return self.http.put(f"{BASE}/{eid}/", json={
            "action": "update_async_configuration"} | body)

    def status(self, eid: int, **params: Any) -> Any:
        return self.http.get(f"{BASE}/{eid}/async_status/", params=params)

    def submit(self, route: str = "QUEUE_1", body: bytes = b'{"x": 1}') -> str:
        return self.invocations.submit(PROJECT, "my-echo", route, body, "application/json").id

    def finish(self, **kw: Any) -> list[str]:
        return finish(self.store, self.deployments, self.datasets, PROJECT, "my-echo", **kw)

    def spec_async(self) -> dict[str, Any]:
        d = self.deployments.get(PROJECT, "my-echo")
        out: dict[str, Any] = d.spec.async_.model_dump(mode="json")
        return out


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    with e.http:
        yield e
    e.close()


def endpoint(env: Env) -> int:
    return int(env.ok(env.http.post(f"{BASE}/", json=sdk_body()))["id"])


def dataset(env: Env, name: str = "results") -> int:
    made = env.ok(env.http.post(f"{GPU}/datasets/", json={
        "storage_type": "managed", "name": name, "bucket_name": None,
        "encryption_enable": False, "encryption_type": None, "description": "async"}))
    return int(made["id"])


ROUTES = [{"route_name": "QUEUE_1", "route_value": "predict"},
          {"route_name": "QUEUE_2", "route_value": "/v1/chat/completions"}]


def enabled(env: Env) -> tuple[int, int]:
    eid, number = endpoint(env), dataset(env)
    env.ok(env.configure(eid, async_enabled=True, async_concurrent_workers=2,
                         async_dataset_id=number, async_destination_type="dataset",
                         async_target_routes=ROUTES))
    return eid, number


def test_update_async_configuration_sets_the_native_spec_and_reads_back(env: Env) -> None:
    eid, number = endpoint(env), dataset(env)
    shown = env.ok(env.http.get(f"{BASE}/{eid}/"))
    assert (shown["async_enabled"], shown["async_dataset_id"]) == (False, None)
    data = env.ok(env.configure(eid, async_enabled=True, async_concurrent_workers=2,
                                async_dataset_id=str(number), async_destination_type="dataset",
                                async_target_routes=ROUTES))
    native = env.spec_async()
    assert (native["enabled"], native["workers"], native["dataset"]) == (True, 2, "results")
    assert native["target_routes"] == {"QUEUE_1": "/predict",
                                       "QUEUE_2": "/v1/chat/completions"}
    assert native["result_prefix"] == f"api/is-{eid}/response/"
    expected = {"async_enabled": True, "async_concurrent_workers": 2,
                "async_dataset_id": number, "async_destination_type": "dataset",
                "async_target_routes": [
                    {"route_name": "QUEUE_1", "route_value": "/predict"},
                    {"route_name": "QUEUE_2", "route_value": "/v1/chat/completions"}]}
    assert {k: data[k] for k in expected} == expected
    got = env.ok(env.http.get(f"{BASE}/{eid}/"))
    assert {k: got[k] for k in expected} == expected
    rec = env.app.state.dialect_records.get("tir", "inference", str(eid))
    assert "async" not in rec.data  # the spec holds it


def test_disabling_refuses_new_requests_and_keeps_accepted_ones(env: Env) -> None:
    eid, number = enabled(env)
    accepted = env.submit()
    data = env.ok(env.configure(eid, async_enabled=False))
    assert data["async_enabled"] is False and data["async_dataset_id"] == number
    assert env.spec_async()["enabled"] is False
    with pytest.raises(Conflict, match="not enabled"):
        env.submit()
    assert env.finish() == [accepted]  # the accepted one still runs
    (item,) = env.ok(env.status(eid, request_id=accepted))
    assert item["status"] == "completed"


@pytest.mark.parametrize("body, field", [
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_dataset_id": 999},
     "async_dataset_id"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_dataset_id": "ds-1"},
     "async_dataset_id"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_dataset_id": 10**30},
     "async_dataset_id"),
    ({"async_enabled": True, "async_concurrent_workers": 1}, "async_dataset_id"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_dataset_id": 1,
      "async_destination_type": "queue"}, "async_destination_type"),
    ({"async_enabled": True, "async_concurrent_workers": 20000, "async_dataset_id": 1},
     "async_concurrent_workers"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_dataset_id": 1,
      "async_target_routes": [{"route_name": "no spaces", "route_value": "p"}]},
     "async_target_routes"),
    ({"async_concurrent_workers": 1}, "async_enabled"),
])
def test_bad_settings_are_tir_shaped_400s_naming_the_field(
        env: Env, body: dict[str, Any], field: str) -> None:
    eid = endpoint(env)
    assert dataset(env) == 1
    before = env.spec_async()
    assert env.refused(env.configure(eid, **body)) == [field]
    assert env.spec_async() == before


def test_a_dataset_of_another_project_is_unknown(env: Env) -> None:
    eid = endpoint(env)
    other = env.ok(env.http.post("/myaccount/api/v1/gpu/teams/1/projects/3/datasets/",
                                 json={"name": "theirs"}))["id"]
    answer = env.configure(eid, async_enabled=True, async_concurrent_workers=1,
                           async_dataset_id=other)
    assert env.refused(answer) == ["async_dataset_id"]


def test_async_status_of_one_request_follows_it_to_its_result(env: Env) -> None:
    eid, number = enabled(env)
    assert env.ok(env.status(eid, request_id="unknown")) == []
    rid = env.submit(body=b'{"q": 1}')
    (queued,) = env.ok(env.status(eid, request_id=rid))
    assert (queued["request_id"], queued["status"], queued["attempts"]) == (rid, "queued", 0)
    assert queued["response_path"] == f"api/is-{eid}/response/{rid}.json"
    assert queued["dataset_id"] == number and queued["queue_name"] == "QUEUE_1"
    assert env.finish(answer=b'{"answer": 42}') == [rid]
    (done,) = env.ok(env.status(eid, request_id=rid))
    assert (done["status"], done["status_code"], done["attempts"]) == ("completed", 200, 1)
    assert done["completed_at"] is not None and done["error"] is None
    stored = env.datasets.read(PROJECT, "results", done["response_path"])
    assert stored == b'{"answer": 42}'  # where the SDK reads the response


def test_a_failed_request_shows_its_error(env: Env) -> None:
    eid, _ = enabled(env)
    rid = env.submit()
    env.finish(status_code=422, answer=b'{"detail": "bad input"}')
    (item,) = env.ok(env.status(eid, request_id=rid))
    assert (item["status"], item["status_code"]) == ("failed", 422)
    assert "422" in item["error"]


def test_async_status_lists_pages_filtered_by_date_and_queue(env: Env) -> None:
    eid, _ = enabled(env)
    first = [env.submit() for _ in range(3)]
    chat = env.submit(route="QUEUE_2")
    listed = env.status(eid, date_filter="last_hour", page_no=1, per_page=2)
    out = listed.json()
    assert out["total_count"] == 4 and out["total_page_number"] == 2
    assert [i["request_id"] for i in out["data"]] == [chat, first[2]]  # newest first
    second = env.ok(env.status(eid, date_filter="last_hour", page_no=2, per_page=2))
    assert [i["request_id"] for i in second] == [first[1], first[0]]
    queue = env.ok(env.status(eid, date_filter="last_24_hours", per_page=10,
                              queue_name="QUEUE_2"))
    assert [i["request_id"] for i in queue] == [chat]
    assert env.ok(env.status(eid, date_filter="previous_month")) == []
    assert len(env.ok(env.status(eid))) == 4  # no filter: every request kept


@pytest.mark.parametrize("params, field", [
    ({"date_filter": "last_year"}, "date_filter"), ({"page_no": "0"}, "page_no"),
    ({"per_page": "many"}, "per_page"), ({"per_page": "1001"}, "per_page"),
])
def test_bad_list_parameters_are_tir_shaped_400s(env: Env, params: dict[str, str],
                                                 field: str) -> None:
    eid, _ = enabled(env)
    assert env.refused(env.status(eid, **params)) == [field]


def test_datasets_list_get_delete_in_tirs_shape(env: Env) -> None:
    number = dataset(env)
    listed = env.ok(env.http.get(f"{GPU}/datasets/"))
    assert [d["id"] for d in listed] == [number]
    got = env.ok(env.http.get(f"{GPU}/datasets/{number}/"))
    assert (got["name"], got["storage_type"], got["bucket"]["bucket_name"]) == (
        "results", "managed", "results")
    assert got["created_at"].endswith("Z") and got["access_key"] is None
    assert env.datasets.get(PROJECT, "results").id == number  # Berth's own dataset
    assert env.refused(env.http.get(f"{GPU}/datasets/999/"), 404) == []
    assert env.refused(env.http.get(f"{GPU}/datasets/{'9' * 30}/"), 404) == []
    assert env.refused(env.http.post(f"{GPU}/datasets/", json={"name": "results"}), 409) == []
    assert env.ok(env.http.delete(f"{GPU}/datasets/{number}/"))["id"] == number
    assert env.ok(env.http.get(f"{GPU}/datasets/")) == []


def test_a_dataset_receiving_results_is_not_deleted(env: Env) -> None:
    _, number = enabled(env)
    assert env.refused(env.http.delete(f"{GPU}/datasets/{number}/"), 409) == []


@pytest.mark.parametrize("body, field", [
    ({"name": "Bad Name"}, "name"), ({}, "name"),
    ({"name": "ok-name", "storage_type": "e2e_s3", "bucket_name": "b"}, "storage_type"),
    ({"name": "ok-name", "encryption_enable": True, "encryption_type": "sse-kms"},
     "encryption_enable"),
])
def test_dataset_create_refusals_name_the_field(env: Env, body: dict[str, Any],
                                                field: str) -> None:
    assert field in env.refused(env.http.post(f"{GPU}/datasets/", json=body))
    assert env.ok(env.http.get(f"{GPU}/datasets/")) == []
