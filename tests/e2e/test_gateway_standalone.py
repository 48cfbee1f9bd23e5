"""`berth gateway` beside `berth serve` on one store: keys, and drains wait for it too."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Api, BerthServer, create_key, echo_spec, free_port, wait_for


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BerthServer, str]]:
    srv = BerthServer(tmp_path / "data").start()
    port = free_port()
    out = (tmp_path / "gateway.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "berth", "gateway", "--data-dir",
                             str(srv.data_dir), "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), 20, what="berth gateway")
        yield srv, url
    finally:
        proc.terminate()
        proc.wait(20)
        out.close()
        srv.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _answers(base: str, key: str, status: int) -> bool:
    return httpx.post(f"{base}/e2e/twice/predict", json={"k": 1},
                      headers={"Authorization": f"Bearer {key}"}).status_code == status


def test_second_gateway_serves_and_honours_key_deletion(pair: tuple[BerthServer, str]) -> None:
    srv, gateway = pair
    with srv.client() as http:
        api = Api(http)
        key = create_key(http, "e2e", "shared")
        api.task(api.create(echo_spec("twice", 2, api_keys=["shared"]))["task_id"])
        for base in (srv.gateway, gateway):
            wait_for(functools.partial(_answers, base, key, 200), 5,
                     what=f"{base} to route the deployment")
        assert http.delete("/v1/projects/e2e/api-keys/shared").status_code == 204
        deleted = time.monotonic()
        for base in (srv.gateway, gateway):
            wait_for(functools.partial(_answers, base, key, 401), 1.0, 0.05,
                     what=f"{base} to refuse the deleted key")
        assert time.monotonic() - deleted < 1.0


def _load(url: str, seconds: float) -> list[int]:
    codes: list[int] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        for _ in range(5000):
            if time.monotonic() > deadline:
                break
            try:
                codes.append(client.post(url, json={"x": 1}).status_code)
            except httpx.HTTPError:
                codes.append(0)
    return codes


def test_rollout_through_the_second_gateway_fails_nothing(pair: tuple[BerthServer, str]) -> None:
    srv, gateway = pair
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("rolling", 2))["task_id"])
        wait_for(lambda: httpx.post(f"{gateway}/e2e/rolling/predict", json={}).status_code
                 == 200, 5, what="the second gateway to route")
        with cf.ThreadPoolExecutor(3) as pool:
            loads = [pool.submit(_load, f"{gateway}/e2e/rolling/predict", 8) for _ in range(3)]
            time.sleep(0.5)
            r = http.post(f"{api.base}/rolling/restart")
            assert api.task(r.json()["task_id"])["state"] == "FINISHED"
            codes = [c for f in loads for c in f.result()]
    assert len(codes) > 50
    assert all(c == 200 for c in codes), sorted(set(codes))
