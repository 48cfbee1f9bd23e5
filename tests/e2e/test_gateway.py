"""The data plane through a real `berth serve`: routing, keys, balancing, queues, streams."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import Api, BerthServer, create_key, echo_spec, metric, wait_for

HEADERS_SERVER = str(Path(__file__).parent / "servers" / "headers.py")


def post(url: str, body: Any = None, timeout: float = 30, /, **headers: str) -> httpx.Response:
    return httpx.post(url, json=body if body is not None else {"x": 1}, headers=headers,
                      timeout=timeout)


def test_path_routing_forwarding_headers_and_gateway_errors(api: Api,
                                                            server: BerthServer) -> None:
    spec = echo_spec("hdrs", 1, image="local/headers",
                     command=[sys.executable, HEADERS_SERVER, "${PORT}"])
    accepted = api.create(spec)
    assert accepted["deployment"]["address"] == f"{server.gateway}/e2e/hdrs"
    api.task(accepted["task_id"])
    r = httpx.post(f"{server.gateway}/e2e/hdrs/v1/models/m:predict?x=1&y=2",
                   content=b'{"in": 1}', headers={"X-Request-Id": "req-123",
                                                  "X-Forwarded-For": "10.1.1.1",
                                                  "Connection": "keep-alive, X-Hop",
                                                  "X-Hop": "drop-me", "Content-Type": "a/b"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/v1/models/m:predict?x=1&y=2" and seen["body"] == '{"in": 1}'
    h = seen["headers"]
    assert h["x-request-id"] == "req-123" and r.headers["x-request-id"] == "req-123"
    assert h["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert h["x-forwarded-proto"] == "http" and h["x-forwarded-host"].startswith("127.0.0.1:")
    assert "x-hop" not in h and h["content-type"] == "a/b"
    assert "keep-alive" not in r.headers  # hop-by-hop headers from the replica are dropped
    generated = httpx.get(f"{server.gateway}/e2e/hdrs/").json()["headers"]["x-request-id"]
    assert generated
    missing = httpx.get(f"{server.gateway}/e2e/nope/predict")
    assert missing.status_code == 404 and missing.headers["x-berth-error-source"] == "gateway"
    assert missing.json()["error"]["code"] == "not_found"
    assert "x-berth-error-source" not in r.headers


def test_request_bodies_stream_through(api: Api, server: BerthServer) -> None:
    spec = echo_spec("bodies", 1, image="local/headers",
                     command=[sys.executable, HEADERS_SERVER, "${PORT}"])
    api.task(api.create(spec)["task_id"])
    url = f"{server.gateway}/e2e/bodies/upload"
    big = "x" * (3 * 1024 * 1024)  # past the gateway's buffer: streamed, not held
    r = httpx.post(url, content=big.encode(), timeout=30)
    assert r.status_code == 200 and r.json()["size"] == len(big), r.text

    def chunks() -> Iterator[bytes]:
        for i in range(50):
            yield f"part{i};".encode()

    r = httpx.post(url, content=chunks(), timeout=30)
    seen = r.json()
    assert r.status_code == 200, r.text
    assert seen["headers"]["transfer-encoding"] == "chunked"
    assert seen["body"] == "".join(f"part{i};" for i in range(50))


def test_close_delimited_bodies_and_pipelining(api: Api, server: BerthServer) -> None:
    spec = echo_spec("eofs", 1, image="local/headers",
                     command=[sys.executable, HEADERS_SERVER, "${PORT}"])
    api.task(api.create(spec)["task_id"])
    r = httpx.get(f"{server.gateway}/e2e/eofs/eof", timeout=10)
    assert r.status_code == 200 and r.text == "until the end " * 1000
    assert r.headers["transfer-encoding"] == "chunked"  # re-framed for the client
    # Three pipelined requests on one connection come back in order.
    with socket.create_connection(("127.0.0.1", server.gateway_port), timeout=10) as sock:
        sock.sendall(b"".join(b"GET /e2e/eofs/n%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                              for i in range(3)))
        data = b""
        while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    where = [data.find(b'"path": "/n%d"' % i) for i in range(3)]
    assert min(where) >= 0 and where == sorted(where), where


def test_api_keys_401_403_200_and_deletion_within_a_second(api: Api,
                                                           server: BerthServer) -> None:
    key = create_key(api.http, "e2e", "key-a")
    other = create_key(api.http, "e2e", "key-b")
    foreign = create_key(api.http, "elsewhere", "key-a")
    api.task(api.create(echo_spec("keyed", 1, api_keys=["key-a"]))["task_id"])
    url = f"{server.gateway}/e2e/keyed/predict"
    assert post(url).status_code == 401
    assert post(url, Authorization="Bearer nope").status_code == 401
    assert post(url, Authorization=f"Bearer {other}").status_code == 403
    assert httpx.post(url, json={"x": 1}, headers={"X-Api-Key": foreign}).status_code == 403
    assert post(url, Authorization=f"Bearer {key}").status_code == 200
    assert httpx.post(url, json={"x": 1}, headers={"X-Api-Key": key}).status_code == 200
    denied = post(url)
    assert denied.headers["x-berth-error-source"] == "gateway"
    assert denied.headers["www-authenticate"] == "Bearer"
    # Legacy auth_enabled: any key of the project.
    api.task(api.create(echo_spec("legacy", 1, auth_enabled=True))["task_id"])
    legacy = f"{server.gateway}/e2e/legacy/predict"
    assert post(legacy, Authorization=f"Bearer {other}").status_code == 200
    assert post(legacy, Authorization=f"Bearer {foreign}").status_code == 403
    assert post(legacy).status_code == 401
    # Deleting a key takes effect within a second.
    assert api.http.delete("/v1/projects/e2e/api-keys/key-a").status_code == 204
    deleted_at = time.monotonic()
    wait_for(lambda: post(url, Authorization=f"Bearer {key}").status_code == 401, 1.0, 0.05,
             "the deleted key to be refused")
    assert time.monotonic() - deleted_at < 1.0
    access = server.data_dir / "access.log"  # flushed every half second
    log = wait_for(lambda: '"key":"key-b"' in access.read_text() and access.read_text(), 3,
                   what="the access log")
    leaks = [ln for ln in log.splitlines() if key in ln or other in ln]
    assert not leaks, leaks
    assert key not in httpx.get(f"{server.gateway}/metrics").text


def test_balancing_spreads_and_per_worker_is_a_hard_cap(api: Api, server: BerthServer) -> None:
    api.task(api.create(echo_spec("spread", 2))["task_id"])
    seen = {post(f"{server.gateway}/e2e/spread/predict").json()["replica"] for _ in range(40)}
    assert len(seen) == 2
    spec = echo_spec("capped", 2, per_worker=1, envs={"ECHO_DELAY_MS": "400"})
    api.task(api.create(spec)["task_id"])
    url = f"{server.gateway}/e2e/capped/predict"
    peak = [0.0]
    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, url) for _ in range(6)]
        while not all(f.done() for f in futures):
            for r in api.replicas("capped"):
                value = metric(server.gateway, "berth_gateway_replica_inflight_requests",
                               deployment="capped", replica=r["id"]) or 0
                peak[0] = max(peak[0], value)
            time.sleep(0.05)
        answers = [f.result() for f in futures]
    assert all(a.status_code == 200 for a in answers)
    assert peak[0] == 1  # two replicas, one request each at a time: 6 requests in 3 waves
    assert len({a.json()["replica"] for a in answers}) == 2


def test_full_queue_and_queue_timeout_answer_503(api: Api, server: BerthServer) -> None:
    spec = echo_spec("queued", 1, per_worker=1, max_queued_requests=1, queue_timeout=5,
                     envs={"ECHO_DELAY_MS": "1500"})
    api.task(api.create(spec)["task_id"])
    url = f"{server.gateway}/e2e/queued/predict"
    with cf.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(url), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 503, 503], codes
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.headers["retry-after"] and shed.headers["x-berth-error-source"] == "gateway"
    assert shed.json()["error"]["code"] == "queue_full" and "1" in shed.json()["error"]["message"]
    r = api.http.patch(f"{api.base}/queued", json={"queue_timeout": 0.3})
    api.task(r.json()["task_id"])
    time.sleep(0.5)
    with cf.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: post(url), range(2)))
    late = [a for a in answers if a.status_code == 503]
    assert late and late[0].json()["error"]["code"] == "queue_timeout"
    assert (metric(server.gateway, "berth_gateway_shed_total", deployment="queued",
                   reason="queue_full") or 0) >= 2


def test_timeouts(api: Api, server: BerthServer) -> None:
    spec = echo_spec("slow", 1, envs={"ECHO_DELAY_MS": "1500"},
                     timeouts={"first_byte": 0.4, "idle": 0.5, "total": 30})
    api.task(api.create(spec)["task_id"])
    r = post(f"{server.gateway}/e2e/slow/predict")
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout_first_byte"
    assert r.headers["x-berth-error-source"] == "gateway"
    # A stream whose chunks come 1.5 s apart is cut after the idle timeout.
    started = time.monotonic()
    chunks = []
    try:
        with httpx.stream("POST", f"{server.gateway}/e2e/slow/predict/stream",
                          json={"a": 1, "b": 2, "c": 3}, timeout=10) as s:
            for chunk in s.iter_raw():
                chunks.append(chunk)
    except httpx.HTTPError:
        pass
    assert time.monotonic() - started < 3 and b"[DONE]" not in b"".join(chunks)


def test_client_disconnect_frees_the_slot_at_once(api: Api, server: BerthServer) -> None:
    spec = echo_spec("hangup", 1, per_worker=1, max_queued_requests=0,
                     envs={"ECHO_DELAY_MS": "3000"})
    api.task(api.create(spec)["task_id"])
    url = f"{server.gateway}/e2e/hangup/predict"
    with contextlib.suppress(httpx.TimeoutException):
        post(url, None, 0.3)
    wait_for(lambda: metric(server.gateway, "berth_gateway_inflight_requests",
                            deployment="hangup") == 0, 1, 0.02, "the slot to be freed")
    assert post(url).status_code == 200  # with a zero queue this needs the free slot


def test_scale_from_zero_serves_a_burst_with_one_replica(api: Api, server: BerthServer) -> None:
    spec = echo_spec("coldy", 0, timeout=2)
    spec["containers"][0]["scale"].update(max=1, cooldown_period=1, polling_interval=1)
    api.task(api.create(spec)["task_id"])
    assert api.get("coldy")["containers"][0]["deploy_status"] == {"ready": 0, "total": 0}
    url = f"{server.gateway}/e2e/coldy/predict"
    started = time.monotonic()
    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: post(url, {"i": i}), range(8)))
    elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["replica"] for a in answers}) == 1
    events = api.http.get(f"{api.base}/coldy/events").json()["items"]
    assert [e["reason"] for e in events].count("Launched") == 1
    assert "ColdStart" in [e["reason"] for e in events]
    assert elapsed < 10
    assert (metric(server.gateway, "berth_gateway_cold_start_seconds_count",
                   deployment="coldy") or 0) >= 1
    # Idle for longer than `timeout`: back to zero.
    wait_for(lambda: api.get("coldy")["containers"][0]["deploy_status"]["total"] == 0, 15,
             0.2, "scale back to zero")


def test_event_stream_arrives_chunk_by_chunk(api: Api, server: BerthServer) -> None:
    api.task(api.create(echo_spec("sse-stream", 1, envs={"ECHO_DELAY_MS": "300"}))["task_id"])
    arrivals: list[float] = []
    with httpx.stream("POST", f"{server.gateway}/e2e/sse-stream/predict/stream",
                      json={"a": 1, "b": 2, "c": 3}, timeout=10) as s:
        assert s.headers["x-accel-buffering"] == "no"
        assert s.headers["cache-control"] == "no-cache"
        started = time.monotonic()
        for line in s.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 4  # three fields and [DONE]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[:3])]
    assert all(g > 0.2 for g in gaps), arrivals  # each event flushed when produced


def _load(url: str, stop_after: float, results: list[int]) -> None:
    deadline = time.monotonic() + stop_after
    with httpx.Client(timeout=10) as client:
        for _ in range(5000):
            if time.monotonic() > deadline:
                return
            try:
                results.append(client.post(url, json={"x": 1}).status_code)
            except httpx.HTTPError:
                results.append(0)


def test_rolling_update_and_scale_down_under_load_fail_nothing(api: Api,
                                                               server: BerthServer) -> None:
    api.task(api.create(echo_spec("steady", 2))["task_id"])
    url = f"{server.gateway}/e2e/steady/predict"
    results: list[int] = []
    with cf.ThreadPoolExecutor(4) as pool:
        loads = [pool.submit(_load, url, 12, results) for _ in range(3)]
        time.sleep(0.5)
        r = api.http.patch(f"{api.base}/steady", json={"envs": {"V": "2"}})
        assert api.task(r.json()["task_id"])["state"] == "FINISHED"
        r = api.http.patch(f"{api.base}/steady",
                           json={"containers": [{"region": "local", "scale": {"min": 1,
                                                                              "max": 1}}]})
        assert api.task(r.json()["task_id"])["state"] == "FINISHED"
        for f in loads:
            f.result()
    assert len(results) > 100
    failed = [code for code in results if code != 200]
    assert not failed, f"{len(failed)} of {len(results)} failed: {sorted(set(failed))}"


def test_metrics_series(api: Api, server: BerthServer) -> None:
    api.task(api.create(echo_spec("metered", 1))["task_id"])
    post(f"{server.gateway}/e2e/metered/predict")
    text = httpx.get(f"{server.gateway}/metrics").text
    for series in ("berth_gateway_requests_total", "berth_gateway_request_duration_seconds",
                   "berth_gateway_time_to_first_byte_seconds", "berth_gateway_queue_wait_seconds",
                   "berth_gateway_inflight_requests", "berth_gateway_queued_requests",
                   "berth_gateway_cold_start_seconds", "berth_gateway_shed_total",
                   "berth_gateway_last_request_timestamp_seconds",
                   "berth_gateway_replica_inflight_requests"):
        assert series in text, series
    access = server.data_dir / "access.log"
    wait_for(lambda: '"deployment":"metered"' in access.read_text(), 3, what="the access log")
    line = json.loads(access.read_text().splitlines()[-1])
    assert {"id", "status", "ms", "deployment", "replica"} <= set(line)


def test_host_routing_with_a_domain(tmp_path: Path) -> None:
    srv = BerthServer(tmp_path / "data", args=["--domain", "models.test"]).start()
    try:
        with srv.client() as http:
            api = Api(http)
            accepted = api.create(echo_spec("hosted", 1))
            assert accepted["deployment"]["address"].startswith("http://hosted.e2e.models.test")
            api.task(accepted["task_id"])
            r = httpx.post(f"{srv.gateway}/predict", json={"h": 1},
                           headers={"Host": "hosted.e2e.models.test"})
            assert r.status_code == 200 and r.json()["echo"] == {"h": 1}
            assert post(f"{srv.gateway}/e2e/hosted/predict").status_code == 200
    finally:
        srv.stop()


def test_a_deployment_no_replica_can_serve_is_answered_503_at_once(api: Api,
                                                                  server: BerthServer) -> None:
    """No queueing for the queue timeout (60 s here) when no replica can come: the client's
    timeout (10 s) is far shorter."""
    api.task(api.create(echo_spec("nothing", 0))["task_id"])  # scale {min 0, max 0}
    url = f"{server.gateway}/e2e/nothing/predict"
    r = post(url, None, 10)
    assert r.status_code == 503 and "retry-after" not in r.headers
    assert r.json()["error"] == {"code": "unavailable", "message": "deployment e2e/nothing is "
                                 "scaled to max 0; no replica can serve it"}
    api.task(api.create(echo_spec("parked", 1))["task_id"])
    assert post(f"{server.gateway}/e2e/parked/predict").status_code == 200
    api.task(api.act("parked", "stop"))
    r = wait_for(lambda: (a := post(f"{server.gateway}/e2e/parked/predict", None, 10))
                 .status_code == 503 and a, 15, what="the stopped deployment's 503")
    assert "is stopped" in r.json()["error"]["message"]
