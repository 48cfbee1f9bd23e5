"""Async invocation end to end: intake at the gateway, the durable queue, the dispatcher,
results in the dataset; a `kill -9` of the server half-way loses and doubles nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Api, BerthServer, echo_spec, wait_for

pytestmark = pytest.mark.e2e
FINISHED = ("SUCCEEDED", "FAILED")


def results_dir(srv: BerthServer, deployment: str) -> Path:
    """Where the project's default dataset keeps the deployment's results."""
    return srv.data_dir / "datasets" / "e2e" / "default" / deployment


def result_files(srv: BerthServer, deployment: str) -> dict[str, Path]:
    folder = results_dir(srv, deployment)
    if not folder.exists():
        return {}
    return {p.name: p for p in folder.iterdir() if p.is_file()}


async def _submit_all(url: str, bodies: list[dict[str, Any]], concurrency: int = 16
                      ) -> list[str]:
    ids: list[str] = [""] * len(bodies)
    queue = list(enumerate(bodies))
    async with httpx.AsyncClient(timeout=30) as client:
        async def submitter() -> None:
            while queue:
                i, body = queue.pop()
                r = await client.post(url, json=body)
                assert r.status_code == 202, r.text
                ids[i] = r.json()["request_id"]
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
    return ids


def submit_all(url: str, bodies: list[dict[str, Any]]) -> list[str]:
    return asyncio.run(_submit_all(url, bodies))


def status(srv: BerthServer, deployment: str, request_id: str) -> dict[str, Any]:
    r = httpx.get(f"{srv.gateway}/e2e/{deployment}/async/{request_id}", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def finished(srv: BerthServer, deployment: str, request_id: str,
             timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = status(srv, deployment, request_id)
        return s if s["status"] in FINISHED else None
    return dict(wait_for(done, timeout, 0.1, f"async request {request_id} to finish"))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    server = BerthServer(tmp_path_factory.mktemp("berth-async"),
                         env={"BERTH_ASYNC_LEASE_SECONDS": "3"}).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_thousand_requests_survive_a_kill9_of_the_server(tmp_path: Path) -> None:
    srv = BerthServer(tmp_path / "data", env={"BERTH_ASYNC_LEASE_SECONDS": "3"}).start()
    try:
        with srv.client() as http:
            api = Api(http)
            spec = echo_spec("bulk", 1, envs={"ECHO_DELAY_MS": "10"},
                             **{"async": {"enabled": True, "workers": 4}})
            api.task(api.create(spec)["task_id"])
        bodies = [{"n": i} for i in range(1000)]
        ids = submit_all(f"{srv.gateway}/e2e/bulk/async/predict", bodies)
        assert len(set(ids)) == 1000
        # Half-way: the dispatcher has written some results, not all.
        wait_for(lambda: len(result_files(srv, "bulk")) >= 300, 60, 0.05,
                 what="300 results before the kill")
        srv.kill9()
        partial = len(result_files(srv, "bulk"))
        assert partial < 1000, "all done before the kill: the test proves nothing"
        srv.start()
        wait_for(lambda: len(result_files(srv, "bulk")) >= 1000, 120, 0.2,
                 what="every result after the restart")
        files = result_files(srv, "bulk")
        # Exactly one object per request id, nothing else (no temporary leftovers).
        assert sorted(files) == sorted(f"{i}.json" for i in ids)
        for i, request_id in enumerate(ids):
            answer = json.loads(files[f"{request_id}.json"].read_bytes())
            assert answer["echo"] == bodies[i]
        counts: dict[str, int] = {}
        for request_id in ids:
            s = finished(srv, "bulk", request_id)
            counts[s["status"]] = counts.get(s["status"], 0) + 1
        assert counts == {"SUCCEEDED": 1000}
    finally:
        srv.stop()


def test_transient_failures_are_retried_and_permanent_ones_fail(srv: BerthServer) -> None:
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("retries", 1, **{"async": {
            "enabled": True, "workers": 2, "max_attempts": 3}}))["task_id"])
    base = f"{srv.gateway}/e2e/retries/async"
    flaky = httpx.post(f"{base}/flaky/2", json={"try": "me"}).json()["request_id"]
    broken = httpx.post(f"{base}/status/500", json={"x": 1}).json()["request_id"]
    refused = httpx.post(f"{base}/status/422", json={"x": 1}).json()["request_id"]
    s = finished(srv, "retries", flaky)
    assert (s["status"], s["attempts"], s["result"]["echo"]) == ("SUCCEEDED", 3, {"try": "me"})
    s = finished(srv, "retries", broken)
    assert (s["status"], s["attempts"], s["status_code"]) == ("FAILED", 3, 500)
    assert "500" in s["error"] and s["result"] == {"status": 500}
    s = finished(srv, "retries", refused)  # a 4xx verdict is not retried
    assert (s["status"], s["attempts"], s["status_code"]) == ("FAILED", 1, 422)


def test_idempotency_key_gives_one_request(srv: BerthServer) -> None:
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("idem", 1, **{"async": {"enabled": True}}))["task_id"])
    url = f"{srv.gateway}/e2e/idem/async/predict"
    first = httpx.post(url, json={"a": 1}, headers={"Idempotency-Key": "order-17"})
    again = httpx.post(url, json={"a": 1}, headers={"Idempotency-Key": "order-17"})
    other = httpx.post(url, json={"a": 1}, headers={"Idempotency-Key": "order-18"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["request_id"] == again.json()["request_id"]
    assert other.json()["request_id"] != first.json()["request_id"]
    finished(srv, "idem", first.json()["request_id"])
    finished(srv, "idem", other.json()["request_id"])
    assert len(result_files(srv, "idem")) == 2


def test_intake_refusals(srv: BerthServer) -> None:
    with srv.client() as http:
        api = Api(http)
        spec = echo_spec("parked", 1, **{"async": {"enabled": True, "max_backlog": 2,
                                                    "max_body_bytes": 1024,
                                                    "target_routes": {"run": "/predict"}}})
        api.task(api.create(spec)["task_id"])
        api.task(api.act("parked", "stop"))  # nothing runs: the backlog only grows
        base = f"{srv.gateway}/e2e/parked/async"
        assert httpx.post(f"{base}/run", json={}).status_code == 202
        assert httpx.post(f"{base}/run", json={}).status_code == 202
        full = httpx.post(f"{base}/run", json={})
        assert full.status_code == 429 and full.headers["retry-after"]
        assert "max_backlog" in full.json()["error"]["message"]
        unknown = httpx.post(f"{base}/predict", json={})
        assert unknown.status_code == 404 and "run" in unknown.json()["error"]["message"]
        big = httpx.post(f"{base}/run", content=b"x" * 2048)
        assert big.status_code == 413
        assert httpx.put(f"{base}/run", json={}).status_code == 405
        # Disabled: intake refuses; what was accepted stays and runs once started.
        r = http.patch(f"{api.base}/parked", json={"async": {"enabled": False}})
        api.task(r.json()["task_id"])
        wait_for(lambda: httpx.post(f"{base}/run", json={}).status_code == 409, 10,
                 what="intake to refuse once async is off")
        api.task(api.act("parked", "start"))
    wait_for(lambda: len(result_files(srv, "parked")) == 2, 30, what="the accepted two to run")


def test_async_scales_from_zero_and_back(srv: BerthServer) -> None:
    with srv.client() as http:
        api = Api(http)
        spec = echo_spec("from-zero", 0, timeout=2, **{"async": {"enabled": True,
                                                                 "workers": 2}})
        spec["containers"][0]["scale"].update(max=2, cooldown_period=1, polling_interval=1)
        api.task(api.create(spec)["task_id"])
        assert api.get("from-zero")["containers"][0]["deploy_status"]["total"] == 0
        ids = submit_all(f"{srv.gateway}/e2e/from-zero/async/predict",
                         [{"k": i} for i in range(10)])
        for request_id in ids:
            assert finished(srv, "from-zero", request_id)["status"] == "SUCCEEDED"

        def at_zero() -> bool:
            return bool(api.get("from-zero")["containers"][0]["deploy_status"]["total"] == 0)
        wait_for(at_zero, 30, 0.2, what="scale back to zero once the queue is empty")
    text = httpx.get(f"{srv.gateway}/metrics").text
    assert 'berth_async_queued_requests{deployment="from-zero",project="e2e"} 0.0' in text
    assert 'berth_async_completed_total{deployment="from-zero",project="e2e",status="SUCCEEDED"}' \
        ' 10.0' in text


def test_cli_submits_a_file_and_lists_the_requests(srv: BerthServer, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("cli-batch", 1, **{"async": {"enabled": True,
                                                                   "workers": 2}}))["task_id"])
    lines = tmp_path / "requests.jsonl"
    lines.write_text("".join(json.dumps({"line": i}) + "\n" for i in range(25)))
    env = {**os.environ, "BERTH_URL": srv.url, "BERTH_DATA_DIR": str(srv.data_dir),
           "BERTH_PROJECT": "e2e", "COLUMNS": "200"}

    def berth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "berth", *args], capture_output=True,
                              text=True, env=env, timeout=120, check=False)
    ids_out = tmp_path / "ids.txt"
    out = berth("async", "submit", "cli-batch", "-f", str(lines), "--key-prefix", "b1-",
                "--ids-out", str(ids_out), "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = ids_out.read_text().split()
    assert len(ids) == 25 and "SUCCEEDED 25" in out.stdout + out.stderr
    again = berth("async", "submit", "cli-batch", "-f", str(lines), "--key-prefix", "b1-",
                  "--ids-out", str(tmp_path / "ids2.txt"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "ids2.txt").read_text().split() == ids  # idempotent resubmission
    assert len(result_files(srv, "cli-batch")) == 25
    listed = berth("async", "cli-batch", "-o", "json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    page = json.loads(listed.stdout)
    assert page["total"] == 25 and page["counts"]["SUCCEEDED"] == 25
    one = berth("async", "get", "cli-batch", ids[3], "-o", "json")
    assert json.loads(one.stdout)["result"]["echo"] == {"line": 3}
