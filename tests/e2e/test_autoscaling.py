"""The autoscaler against a real `berth serve`: load through the gateway moves the count."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.e2e.harness import Api, BerthServer, echo_spec, metric, wait_for

LOAD_SECONDS_MAX = 120.0  # every load loop ends by this, whatever happens


class Load:
    """`clients` threads posting back to back through the gateway until stopped."""

    def __init__(self, url: str, clients: int) -> None:
        self.url, self.clients = url, clients
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = http.post(self.url, json={"x": 1})
                    failure = "" if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if failure:
                        self.failed.append(failure)
                    else:
                        self.ok += 1

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(35)


def autoscaled(name: str, *, min_: int = 1, max_: int = 4, **scale: Any) -> dict[str, Any]:
    spec = echo_spec(name, 1, envs={"ECHO_DELAY_MS": "200"})
    spec["containers"][0]["scale"] = {
        "min": min_, "max": max_, "cooldown_period": 5, "polling_interval": 1,
        "triggers": {"concurrency": {"target": 2}}, **scale}
    return spec


def ready(api: Api, name: str) -> int:
    return int(api.get(name)["containers"][0]["deploy_status"]["ready"])


def view(api: Api, name: str) -> dict[str, Any]:
    r = api.http.get(f"{api.base}/{name}/autoscaler")
    assert r.status_code == 200, r.text
    return dict(r.json()["regions"][0])


@contextmanager
def counts(api: Api, name: str) -> Iterator[list[tuple[float, int]]]:
    """(seconds, ready replicas) sampled every 0.5 s while the block runs."""
    seen: list[tuple[float, int]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(0.5) and time.monotonic() - started < LOAD_SECONDS_MAX:
            seen.append((time.monotonic() - started, ready(api, name)))

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield seen
    finally:
        stop.set()
        t.join(5)


def test_concurrency_scales_up_down_and_holds(api: Api, server: BerthServer) -> None:
    api.task(api.create(autoscaled("auto-conc"))["task_id"])
    url = f"{server.gateway}/e2e/auto-conc/predict"
    with Load(url, 4) as steady:
        with Load(url, 4) as burst:
            wait_for(lambda: ready(api, "auto-conc") == 4, 60, 0.2, "4 ready replicas")
            time.sleep(1)
        v = view(api, "auto-conc")
        assert v["desired"] == 4 and v["metrics"]["concurrency"]["target"] == 2
        events = api.http.get(f"{api.base}/auto-conc/events").json()["items"]
        ups = [e for e in events if e["reason"] == "ScaledUp"]
        assert ups and "concurrency" in ups[0]["message"]
        # Half the clients stop: down to 2 under load (drained, nothing fails), and
        # 4 steady clients keep exactly that count: no flapping.
        wait_for(lambda: api.get("auto-conc")["containers"][0]["deploy_status"]["total"] == 2,
                 60, 0.2, "down to 2 replicas")
        with counts(api, "auto-conc") as seen:
            time.sleep(20)
    assert burst.failed == [] and steady.failed == [], (burst.failed + steady.failed)[:5]
    assert burst.ok > 0 and steady.ok > 0
    assert {n for _, n in seen} == {2}, seen
    assert any(e["reason"] == "ScaledDown"
               for e in api.http.get(f"{api.base}/auto-conc/events").json()["items"])
    # The load stops: back to min.
    wait_for(lambda: api.get("auto-conc")["containers"][0]["deploy_status"]["total"] == 1, 60,
             0.2, "back to 1 replica")
    # The decision is on the gateway's /metrics too.
    assert (metric(server.gateway, "berth_autoscaler_desired_replicas",
                   deployment="auto-conc") or 0) >= 1


def test_scale_to_zero_after_timeout_and_back(api: Api, server: BerthServer) -> None:
    spec = autoscaled("auto-zero", min_=0, max_=2)
    spec["timeout"] = 5
    api.task(api.create(spec)["task_id"])
    url = f"{server.gateway}/e2e/auto-zero/predict"
    assert httpx.post(url, json={"x": 1}, timeout=30).status_code == 200
    wait_for(lambda: api.get("auto-zero")["containers"][0]["deploy_status"]["total"] == 0, 40,
             0.2, "scaled to zero")
    events = api.http.get(f"{api.base}/auto-zero/events").json()["items"]
    assert any(e["reason"] == "ScaledToZero" for e in events)
    assert httpx.post(url, json={"x": 2}, timeout=30).status_code == 200
