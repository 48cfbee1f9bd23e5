"""GET /v1/projects/{p}/deployments/{name}/async[/{request_id}]: requests made through
`InvocationService.submit`, some finished by hand (a lease and an end, the dispatcher's
steps) with their result objects written to the dataset."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from berth.domain.invocations import InvocationStatus
from berth.invocations.datasets import open_dataset
from berth.store.invocations import Ending
from tests.integration.api.app_env import ApiEnv, TestClient

BASE = "/v1/projects/p/deployments"
ASYNC = f"{BASE}/echo/async"
SPEC = {"name": "echo", "image": "catalog/echo", "async": {"enabled": True, "max_attempts": 2},
        "containers": [{"region": "local", "scale": {"min": 0, "max": 1}}]}


class World:
    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "data"
        self.env = ApiEnv(tmp, data_dir=self.data_dir)
        self.http = self.env.http
        made = self.http.post(BASE, json=SPEC)
        assert made.status_code == 202, made.text
        self.deployment_id = str(made.json()["deployment"]["id"])

    def submit(self, n: int = 1, name: str = "echo") -> list[str]:
        svc = self.env.app.state.invocations
        return [svc.submit("p", name, "predict", json.dumps({"i": i}).encode(),
                           "application/json").id for i in range(n)]

    def finish(self, status: InvocationStatus, result: bytes, status_code: int | None = 200,
               error: str | None = None) -> str:
        """Leases the oldest queued request and ends it with `result` in the dataset."""
        now = time.time()
        with self.env.store.write() as tx:
            leased = tx.invocations.lease(self.deployment_id, 1, now, "test", 60)[0]
            ds = self.env.app.state.datasets.ensure(tx, "p", "default")
            path = f"echo/{leased.id}.json"
            open_dataset(ds, self.data_dir).write(path, result)
            done = tx.invocations.end([Ending(
                leased.id, leased.token, status, now, reason="done", status_code=status_code,
                error=error, dataset="default", result_path=path, result_size=len(result),
                expires_at=now + 3600)])
        assert done == {leased.id}
        return leased.id

    def token(self, name: str, projects: list[str]) -> TestClient:
        return self.env.project_client(name, projects)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    with w.http:
        yield w
    w.env.close()


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_queued_request(world: World) -> None:
    (rid,) = world.submit()
    r = world.http.get(f"{ASYNC}/{rid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("id", "deployment", "status", "attempts", "max_attempts",
                                 "route", "body_size", "result", "result_path", "dataset",
                                 "started_at", "finished_at", "status_code")} == {
        "id": rid, "deployment": "echo", "status": "QUEUED", "attempts": 0,
        "max_attempts": 2, "route": "predict", "body_size": len(b'{"i": 0}'), "result": None,
        "result_path": None, "dataset": None, "started_at": None, "finished_at": None,
        "status_code": None}
    assert abs(_iso(body["created_at"]).timestamp() - time.time()) < 3600


def test_finished_requests_carry_their_result_inline(world: World) -> None:
    world.submit(2)
    ok = world.finish(InvocationStatus.SUCCEEDED, b'{"answer": 42}')
    failed = world.finish(InvocationStatus.FAILED, b'{"error": "boom"}', status_code=500,
                          error="HTTP 500")
    body = world.http.get(f"{ASYNC}/{ok}").json()
    assert body["status"] == "SUCCEEDED" and body["result"] == {"answer": 42}
    assert body["attempts"] == 1 and body["status_code"] == 200
    assert body["dataset"] == "default" and body["result_path"] == f"echo/{ok}.json"
    assert _iso(body["finished_at"]) >= _iso(body["started_at"]) >= _iso(body["created_at"])
    assert _iso(body["expires_at"]) > _iso(body["finished_at"])
    body = world.http.get(f"{ASYNC}/{failed}").json()
    assert (body["status"], body["status_code"], body["error"], body["result"]) == (
        "FAILED", 500, "HTTP 500", {"error": "boom"})


@pytest.mark.parametrize("result", [b"plain text, not JSON", b"\xff\xfe binary",
                                    b'{"x": NaN}', b" "])
def test_a_result_that_is_not_json_is_read_from_the_dataset(world: World,
                                                            result: bytes) -> None:
    world.submit()
    rid = world.finish(InvocationStatus.SUCCEEDED, result)
    body = world.http.get(f"{ASYNC}/{rid}").json()
    assert body["result"] is None and body["result_size"] == len(result)
    obj = world.http.get(f"/v1/projects/p/datasets/default/objects/{body['result_path']}")
    assert obj.status_code == 200 and obj.content == result


def test_a_result_over_one_mib_is_not_inline(world: World) -> None:
    world.submit()
    big = json.dumps({"blob": "x" * (1024 * 1024)}).encode()
    rid = world.finish(InvocationStatus.SUCCEEDED, big)
    body = world.http.get(f"{ASYNC}/{rid}").json()
    assert body["result"] is None and body["result_size"] == len(big)


def test_the_list_pages_newest_first_with_counts(world: World) -> None:
    ids = world.submit(5)
    world.finish(InvocationStatus.SUCCEEDED, b"{}")
    world.finish(InvocationStatus.FAILED, b"{}", status_code=400)
    r = world.http.get(ASYNC, params={"per_page": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["page"], body["per_page"]) == (5, 1, 2)
    assert body["counts"] == {"QUEUED": 3, "RUNNING": 0, "SUCCEEDED": 1, "FAILED": 1,
                              "EXPIRED": 0}
    assert len(body["items"]) == 2 and all(i["result"] is None for i in body["items"])
    seen = [i["id"] for p in (1, 2, 3)
            for i in world.http.get(ASYNC, params={"per_page": 2, "page": p}).json()["items"]]
    assert sorted(seen) == sorted(ids)
    created = [_iso(i["created_at"]) for i in world.http.get(ASYNC).json()["items"]]
    assert created == sorted(created, reverse=True)
    assert world.http.get(ASYNC, params={"page": 4, "per_page": 2}).json()["items"] == []


def test_the_list_filters_by_status_and_time(world: World) -> None:
    world.submit(3)
    done = world.finish(InvocationStatus.SUCCEEDED, b"{}")
    failed = world.finish(InvocationStatus.FAILED, b"{}", status_code=400)

    def ids(**params: Any) -> set[str]:
        r = world.http.get(ASYNC, params=params)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert ids(status=["SUCCEEDED", "failed"]) == {done, failed}
    assert ids(status="succeeded,FAILED") == {done, failed}
    assert len(ids(status="QUEUED")) == 1
    assert len(ids(since="0")) == 3 and ids(until="0") == set()
    future = datetime.fromtimestamp(time.time() + 3600, UTC)
    assert ids(since=future.isoformat()) == set()
    assert len(ids(until=future.isoformat().replace("+00:00", "Z"))) == 3
    assert len(ids(since="2020-01-01T00:00:00")) == 3  # no offset: UTC
    window = world.http.get(ASYNC, params={"until": "1"}).json()
    assert window["total"] == 0 and set(window["counts"].values()) == {0}
    window = world.http.get(ASYNC, params={"since": "1", "status": "QUEUED"}).json()
    assert window["total"] == 1 and window["counts"]["SUCCEEDED"] == 1  # counts ignore status


@pytest.mark.parametrize(("params", "field", "fragment"), [
    ({"status": "BOGUS"}, "status", "'BOGUS' is not a status"),
    ({"status": "QUEUED,"}, "status", "is not a status"),
    ({"per_page": "0"}, "per_page", "greater than or equal to 1"),
    ({"per_page": "1001"}, "per_page", "less than or equal to 1000"),
    ({"page": "0"}, "page", "greater than or equal to 1"),
    ({"page": "x"}, "page", "valid integer"),
    ({"since": "yesterday"}, "since", "ISO 8601"),
    ({"until": "nan"}, "until", "finite"),
    ({"since": "-5"}, "since", ">= 0"),
    ({"until": "2024-13-01"}, "until", "ISO 8601"),
])
def test_bad_query_parameters_are_422_naming_the_parameter(
        world: World, params: dict[str, str], field: str, fragment: str) -> None:
    r = world.http.get(ASYNC, params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and error["details"][0]["field"] == field
    assert fragment in error["message"], error


def test_unknown_ids_and_deployments_are_404(world: World) -> None:
    (rid,) = world.submit()
    other = {**SPEC, "name": "other"}
    assert world.http.post(BASE, json=other).status_code == 202
    for path in (f"{ASYNC}/nope", f"{BASE}/other/async/{rid}", f"{BASE}/ghost/async/{rid}",
                 f"{BASE}/ghost/async", "/v1/projects/q/deployments/echo/async"):
        r = world.http.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert "async request 'nope' not found" in world.http.get(f"{ASYNC}/nope").text


def test_another_projects_token_is_refused(world: World) -> None:
    (rid,) = world.submit()
    outsider = world.token("outsider", ["q"])
    with outsider:
        for path in (f"{ASYNC}/{rid}", ASYNC):
            r = outsider.get(path)
            assert r.status_code == 403, r.text
            assert "may not read in project 'p'" in r.json()["error"]["message"]
        # in its own project the victim's request is simply not there
        assert outsider.get(f"/v1/projects/q/deployments/echo/async/{rid}").status_code == 404
    reader = world.token("reader", ["p"])
    with reader:
        assert reader.get(f"{ASYNC}/{rid}").json()["id"] == rid
