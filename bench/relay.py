"""Inference relayed by the control API's dialects, against the gateway it relays to.

TIR's endpoint URL and Scale's `/v5/inference` take the request on the control API and send
it on to the deployment's gateway address (berth/api/relay.py). One `berth serve` runs a
catalog/echo deployment for each dialect; each way sends the same small JSON POST one at a
time on a kept-alive connection, and the table shows the latency of each way and what the
relay adds over calling the gateway directly (the baseline).

Run: python bench/relay.py [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.harness import BerthServer, wait_for

TEAM, PROJECT = 11, 22
TIR = f"/myaccount/api/v1/gpu/teams/{TEAM}/projects/{PROJECT}/serving/inference"
ACCOUNT = "bench-scale"
BODY = {"inputs": "hello"}


def tir_endpoint(http: httpx.Client) -> tuple[str, str]:
    """A TIR endpoint running catalog/echo: (its relay path, its gateway address)."""
    sku = http.get("/myaccount/api/v1/gpu/gpu_service/sku/").json()["data"]["CPU"][0]
    made = http.post(f"{TIR}/", json={
        "name": "bench-relay", "framework": "custom", "sku_id": sku["sku_id"], "replica": 1,
        "custom_endpoint_details": {"container": {"container_name": "catalog/echo"}}})
    assert made.status_code == 200, made.text
    eid = made.json()["data"]["id"]
    native = f"/v1/projects/tir-{TEAM}-{PROJECT}/deployments/bench-relay"
    wait_for(lambda: http.get(native).json()["status"] == "ACTIVE", 60, what="TIR endpoint")
    return f"/project/p-{PROJECT}/endpoint/is-{eid}/predict", http.get(native).json()["address"]


def scale_model(http: httpx.Client) -> None:
    """A Scale launch model running catalog/echo."""
    config = {"model_image": {"registry": "", "repository": "catalog/echo", "tag": "",
                              "command": [], "predict_route": "/predict",
                              "healthcheck_route": "/healthz", "readiness_delay": 0},
              "model_infra": {"endpoint_type": "sync", "cpus": "1", "memory": "256Mi",
                              "min_workers": 1, "max_workers": 1, "per_worker": 4}}
    made = http.post("/v5/models", headers={"x-selected-account-id": ACCOUNT}, json={
        "name": "bench-relay", "model_vendor": "launch", "model_type": "generic",
        "vendor_configuration": config})
    assert made.status_code in (200, 201), made.text
    model = f"/v5/models/{made.json()['id']}"
    wait_for(lambda: http.get(model, headers={"x-selected-account-id": ACCOUNT}).json()[
        "status"] == "ready", 60, what="Scale model")


def timed(send: Callable[[], httpx.Response], n: int) -> list[float]:
    """Milliseconds per call, after a few calls to warm up."""
    for _ in range(10):
        send().raise_for_status()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        answer = send()
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def row(name: str, times: list[float], base: float | None) -> tuple[str, ...]:
    p50 = statistics.median(times)
    p99 = sorted(times)[min(len(times) - 1, int(len(times) * 0.99))]
    added = "-" if base is None else f"+{p50 - base:.2f} ms"
    ratio = "1.00x" if base is None else f"{p50 / base:.2f}x"
    return name, f"{p50:.2f} ms", f"{p99:.2f} ms", added, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = BerthServer(Path(tmp) / "data").start()
        try:
            rows = measure(srv, args.requests)
        finally:
            srv.stop()
    header = ("way", "p50", "p99", "added vs gateway", "p50 ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))


def measure(srv: BerthServer, n: int) -> list[tuple[str, ...]]:
    with srv.client() as control:
        relay_path, address = tir_endpoint(control)
        scale_model(control)
    scale: dict[str, Any] = {"model": "launch/bench-relay", "args": BODY}
    with httpx.Client(timeout=30) as direct, httpx.Client(base_url=srv.url, timeout=30) as api:
        ways: list[tuple[str, Callable[[], httpx.Response]]] = [
            ("gateway, called directly (baseline)",
             lambda: direct.post(address + "/predict", json=BODY)),
            ("TIR endpoint URL, relayed", lambda: api.post(relay_path, json=BODY)),
            ("TIR endpoint URL, relayed, with a control token",
             lambda: api.post(relay_path, json=BODY,
                              headers={"Authorization": f"Bearer {srv.token}"})),
            ("Scale /v5/inference, relayed",
             lambda: api.post("/v5/inference", json=scale,
                              headers={"Authorization": f"Bearer {srv.token}",
                                       "x-selected-account-id": ACCOUNT})),
        ]
        results = [(name, timed(send, n)) for name, send in ways]
    base = statistics.median(results[0][1])
    return [row(name, times, None if i == 0 else base)
            for i, (name, times) in enumerate(results)]


if __name__ == "__main__":
    main()
