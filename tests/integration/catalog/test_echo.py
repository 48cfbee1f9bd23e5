"""catalog/echo as a real process on loopback."""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Echo:
    url: str
    port: int
    process: subprocess.Popen[str]
    banner: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
    finally:
        assert process.stdout is not None
        process.stdout.close()


def _start(**envs: str) -> Echo:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "BERTH_REPLICA_ID": "echo-1", **envs}
    process = subprocess.Popen(
        [sys.executable, "-m", "berth.catalog.echo"], env=env, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 15)
    banner = process.stdout.readline().strip() if ready else ""
    if not banner:
        _stop(process)
        pytest.fail("echo did not start")
    return Echo(f"http://127.0.0.1:{port}", port, process, banner)


@pytest.fixture(scope="module")
def unhealthy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("echo") / "unhealthy"


@pytest.fixture(scope="module")
def echo(unhealthy_file: Path) -> Iterator[Echo]:
    server = _start(ECHO_UNHEALTHY_FILE=str(unhealthy_file))
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.fixture(scope="module")
def slow_echo() -> Iterator[Echo]:
    server = _start(ECHO_DELAY_MS="200")
    try:
        yield server
    finally:
        _stop(server.process)


def test_banner_names_address_and_replica(echo: Echo) -> None:
    assert echo.banner == f"echo listening on http://127.0.0.1:{echo.port} (echo-1)"


def test_predict_echoes_the_body(echo: Echo) -> None:
    body = {"prompt": "hi", "n": [1, 2.5, None], "nested": {"ü": True}}
    reply = httpx.post(f"{echo.url}/predict", json=body)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"echo": body, "replica": "echo-1"}


def test_bad_json_is_a_400(echo: Echo) -> None:
    reply = httpx.post(f"{echo.url}/predict", content=b"{not json")
    assert reply.status_code == 400
    assert "JSON" in reply.json()["error"]


def test_unknown_route_is_a_404(echo: Echo) -> None:
    for method, path in [("GET", "/nope"), ("GET", "/predict")]:
        reply = httpx.request(method, f"{echo.url}{path}")
        assert reply.status_code == 404
        assert "error" in reply.json()


def test_healthz_follows_the_unhealthy_file(echo: Echo, unhealthy_file: Path) -> None:
    assert httpx.get(f"{echo.url}/healthz").json() == {"status": "ok"}
    unhealthy_file.touch()
    try:
        reply = httpx.get(f"{echo.url}/healthz")
        assert (reply.status_code, reply.json()) == (503, {"status": "unhealthy"})
    finally:
        unhealthy_file.unlink()
    assert httpx.get(f"{echo.url}/healthz").status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(echo: Echo) -> None:
    client_ports = set()
    with httpx.Client(base_url=echo.url) as client:
        for i in range(5):
            reply = client.post("/predict", json={"i": i})
            assert reply.json()["echo"] == {"i": i}
            stream = reply.extensions["network_stream"]
            client_ports.add(stream.get_extra_info("client_addr")[1])
    assert len(client_ports) == 1


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_requests_are_answered_in_order(slow_echo: Echo) -> None:
    requests = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{\"a\": 1}"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n"
        b"Connection: close\r\n\r\n{\"b\": 2}"
    )
    with socket.create_connection(("127.0.0.1", slow_echo.port), timeout=10) as sock:
        sock.sendall(requests)
        data = _recv_all(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    first, health, last = data.index(b'"a": 1'), data.index(b'"ok"'), data.index(b'"b": 2')
    assert first < health < last


def test_bodies_split_across_packets_and_chunked(echo: Echo) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"sp")
        time.sleep(0.05)
        sock.sendall(b'lit": 1}')
        time.sleep(0.05)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n6\r\n{\"ch\":\r\n")
        time.sleep(0.05)
        sock.sendall(b"3\r\n 2}\r\n0\r\n\r\n")
        data = _recv_all(sock)
    assert b'{"echo": {"split": 1}, "replica": "echo-1"}' in data
    assert b'{"echo": {"ch": 2}, "replica": "echo-1"}' in data


def test_stream_sends_one_event_per_key_as_it_goes(slow_echo: Echo) -> None:
    arrivals: list[tuple[float, str]] = []
    body = {"a": 1, "b": [2], "c": "three"}
    with httpx.stream("POST", f"{slow_echo.url}/predict/stream", json=body) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        assert reply.headers["cache-control"] == "no-cache"
        assert reply.headers["transfer-encoding"] == "chunked"
        for line in reply.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic(), line.removeprefix("data: ")))
    events = [data for _, data in arrivals]
    assert events[-1] == "[DONE]"
    assert [json.loads(e) for e in events[:-1]] == [
        {"echo": {"a": 1}, "replica": "echo-1"},
        {"echo": {"b": [2]}, "replica": "echo-1"},
        {"echo": {"c": "three"}, "replica": "echo-1"},
    ]
    times = [at for at, _ in arrivals[:3]]  # the three key events
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap > 0.1 for gap in gaps), gaps


def test_stream_rejects_a_body_that_is_not_an_object(echo: Echo) -> None:
    reply = httpx.post(f"{echo.url}/predict/stream", json=[1, 2])
    assert reply.status_code == 400


def test_delay_applies_to_predict(slow_echo: Echo) -> None:
    began = time.monotonic()
    assert httpx.post(f"{slow_echo.url}/predict", json={}).status_code == 200
    assert time.monotonic() - began >= 0.2


def test_slow_start_and_clean_exit_on_sigterm() -> None:
    began = time.monotonic()
    server = _start(ECHO_STARTUP_DELAY_MS="300")
    try:
        assert time.monotonic() - began >= 0.3
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        with httpx.Client(base_url=server.url) as client:  # an open keep-alive connection
            client.get("/healthz")
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=5) == 0
    finally:
        _stop(server.process)


INFER_BODY = {"id": "req-1", "inputs": [
    {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hello", "world"]},
    {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1.0, 2.5], [3.0, 4.0]]},
]}


def test_open_inference_protocol_infer_echoes_inputs_as_outputs(echo: Echo) -> None:
    reply = httpx.post(f"{echo.url}/v2/models/my-model/infer", json=INFER_BODY)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {"model_name": "my-model", "id": "req-1", "outputs": [
        {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["hello", "world"]},
        {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1.0, 2.5], [3.0, 4.0]]}]}
    body = {"inputs": INFER_BODY["inputs"], "outputs": [{"name": "x"}]}
    versioned = httpx.post(f"{echo.url}/v2/models/m/versions/3/infer", json=body).json()
    assert versioned["model_version"] == "3" and versioned["id"]  # an id is made when none
    assert [o["name"] for o in versioned["outputs"]] == ["x"]


def test_open_inference_protocol_health_metadata_and_readiness(
        echo: Echo, unhealthy_file: Path) -> None:
    assert httpx.get(f"{echo.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{echo.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{echo.url}/v2/models/my-model/ready").json() == {
        "name": "my-model", "ready": True}
    meta = httpx.get(f"{echo.url}/v2/models/my-model").json()
    assert (meta["name"], meta["platform"]) == ("my-model", "berth-echo")
    assert httpx.get(f"{echo.url}/v2").json()["name"] == "berth-echo"
    unhealthy_file.touch()
    try:
        assert httpx.get(f"{echo.url}/v2/health/ready").status_code == 503
        assert httpx.get(f"{echo.url}/v2/models/my-model/ready").json()["ready"] is False
        assert httpx.get(f"{echo.url}/v2/health/live").status_code == 200
    finally:
        unhealthy_file.unlink()


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "JSON"),
    (b"[]", "inputs"),
    (b'{"inputs": []}', "inputs"),
    (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1]}]}',
     "inputs[0].data"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FLOAT", "data": [1]}]}',
     "inputs[0].datatype"),
    (b'{"inputs": [{"name": "a", "shape": ["1"], "datatype": "FP32", "data": [1]}]}',
     "inputs[0].shape"),
    (b'{"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}', "inputs[0].name"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}], '
     b'"outputs": [{"name": "b"}]}', "outputs"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": '
     + b"[" * 100 + b"1" + b"]" * 100 + b"}]}", "inputs[0].data"),
])
def test_open_inference_protocol_bad_requests_are_400_naming_the_field(
        echo: Echo, body: bytes, field: str) -> None:
    reply = httpx.post(f"{echo.url}/v2/models/m/infer", content=body)
    assert reply.status_code == 400
    assert field in reply.json()["error"]


def test_open_inference_protocol_wrong_method_and_unknown_routes(echo: Echo) -> None:
    assert httpx.get(f"{echo.url}/v2/models/m/infer").status_code == 405
    assert httpx.post(f"{echo.url}/v2/health/ready").status_code == 405
    assert httpx.get(f"{echo.url}/v2/models/m/explain").status_code == 404
    assert httpx.get(f"{echo.url}/v2nope").status_code == 404


def _families(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_gauges_set_on_metrics_are_prometheus_text(echo: Echo) -> None:
    with httpx.Client(base_url=echo.url) as client:
        assert client.get("/metrics").text == ""  # none set yet
        reply = client.put("/metrics/queue_depth", json={"value": 3.5})
        assert reply.json() == {"name": "queue_depth", "value": 3.5}
        assert client.put("/metrics/berth:load", json={"value": -2}).status_code == 200
        page = client.get("/metrics")
        assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert _families(page.text) == {"queue_depth": 3.5, "berth:load": -2.0}
        client.put("/metrics/queue_depth", json={"value": 1e20})  # set again: replaced
        assert _families(client.get("/metrics").text)["queue_depth"] == 1e20
        assert client.delete("/metrics/queue_depth").json() == {
            "name": "queue_depth", "deleted": True}
        assert client.delete("/metrics/queue_depth").json()["deleted"] is False
        assert _families(client.get("/metrics").text) == {"berth:load": -2.0}
        client.delete("/metrics/berth:load")


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("PUT", "/metrics/x", b'{"value": "3"}', 400, "value"),
    ("PUT", "/metrics/x", b'{"value": true}', 400, "value"),
    ("PUT", "/metrics/x", b'{"value": NaN}', 400, "value"),
    ("PUT", "/metrics/x", b'{"value": 1' + b"0" * 400 + b"}", 400, "value is out of range"),
    ("PUT", "/metrics/x", b'{"other": 1}', 400, "value is missing"),
    ("PUT", "/metrics/x", b"not json", 400, "value"),
    ("PUT", "/metrics/bad-name", b'{"value": 1}', 400, "metric name 'bad-name'"),
    ("PUT", "/metrics/", b'{"value": 1}', 400, "metric name"),
    ("PUT", "/metrics/" + "a" * 201, b'{"value": 1}', 400, "at most 200"),
    ("POST", "/metrics", b"", 405, "use GET"),
    ("GET", "/metrics/x", b"", 405, "use PUT or DELETE"),
])
def test_bad_gauge_requests_name_the_rule_and_change_nothing(
        echo: Echo, method: str, path: str, body: bytes, status: int, words: str) -> None:
    reply = httpx.request(method, f"{echo.url}{path}", content=body)
    assert reply.status_code == status
    assert words in reply.json()["error"]
    assert httpx.get(f"{echo.url}/metrics").text == ""


def test_gauge_requests_pipelined_behind_a_delayed_prediction_keep_their_order(
        slow_echo: Echo) -> None:
    gauge = b'{"value": 2}'
    requests = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{\"a\": 1}"
        b"PUT /metrics/busy HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ) % (len(gauge), gauge)
    with socket.create_connection(("127.0.0.1", slow_echo.port), timeout=10) as sock:
        sock.sendall(requests)
        data = _recv_all(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    echoed, gauge_set, page = (data.index(b'"a": 1'), data.index(b'"value": 2.0'),
                               data.index(b"# TYPE busy gauge\nbusy 2.0\n"))
    assert echoed < gauge_set < page
    httpx.delete(f"{slow_echo.url}/metrics/busy")
