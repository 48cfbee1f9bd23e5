"""A custom-metric trigger against a real `berth serve`: the replicas' own gauge (catalog/echo's
PUT /metrics/{name}) moves the count, and a gauge no replica exposes is reported unavailable."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.harness import Api, BerthServer, echo_spec, wait_for
from tests.e2e.test_autoscaling import ready, view

NAME = "auto-custom"


def custom_spec() -> dict[str, Any]:
    spec = echo_spec(NAME, 1)
    spec["timeout"] = 3600  # a request at the start keeps it out of the idle rule throughout
    spec["containers"][0]["scale"] = {
        "min": 1, "max": 3, "cooldown_period": 3, "polling_interval": 1,
        "triggers": {"custom": [
            {"metric_name": "queue_depth", "target": 2, "path": "/metrics"},
            {"metric_name": "never_exposed", "target": 1},
        ]}}
    return spec


def set_gauge(api: Api, value: float) -> int:
    """Sets queue_depth on every ready replica, directly on its port; how many it set."""
    ports = [r["port"] for r in api.replicas(NAME) if r["ready"] and r["port"]]
    for port in ports:
        r = httpx.put(f"http://127.0.0.1:{port}/metrics/queue_depth", json={"value": value},
                      timeout=5)
        assert r.status_code == 200, r.text
    return len(ports)


def total(api: Api) -> int:
    return int(api.get(NAME)["containers"][0]["deploy_status"]["total"])


def events(api: Api) -> list[dict[str, Any]]:
    return list(api.http.get(f"{api.base}/{NAME}/events").json()["items"])


def test_custom_gauge_scales_up_and_back_down(api: Api, server: BerthServer) -> None:
    api.task(api.create(custom_spec())["task_id"])
    assert httpx.post(f"{server.gateway}/e2e/{NAME}/predict", json={"x": 1},
                      timeout=30).status_code == 200
    # No gauge yet: both triggers unavailable, the count stays at min.
    wait_for(lambda: view(api, NAME)["metrics"].get("custom:queue_depth", {}).get(
        "status", "").startswith("unavailable: "), 30, 0.2, "queue_depth unavailable")
    assert total(api) == 1
    # 5 on the one replica: 5 / (2 x 1.1) asks for 3 replicas.
    assert set_gauge(api, 5) == 1
    wait_for(lambda: ready(api, NAME) == 3, 60, 0.2, "3 ready replicas")
    v = view(api, NAME)
    assert v["desired"] == 3
    gauge = v["metrics"]["custom:queue_depth"]
    assert gauge["status"] == "ok" and gauge["target"] == 2
    assert gauge["value"] == 5  # the new replicas have no gauge yet: the sum is the first's
    assert gauge["age_seconds"] is not None and gauge["age_seconds"] >= 0
    missing = v["metrics"]["custom:never_exposed"]
    assert missing["status"].startswith("unavailable: ") and "never_exposed" in missing["status"]
    assert missing["value"] is None
    ups = [e for e in events(api) if e["reason"] == "ScaledUp"]
    assert ups and "custom:queue_depth" in ups[0]["message"], ups
    assert any(e["reason"] == "TriggerUnavailable" and "never_exposed" in e["message"]
               for e in events(api))
    # Low on every replica: 3 x 0.5 = 1.5 needs one replica, after the cooldown and window.
    assert set_gauge(api, 0.5) == 3
    wait_for(lambda: total(api) == 1, 60, 0.2, "back to 1 replica")
    assert ready(api, NAME) == 1
    downs = [e for e in events(api) if e["reason"] == "ScaledDown"]
    assert downs and "custom:queue_depth" in downs[0]["message"], downs
    assert view(api, NAME)["metrics"]["custom:queue_depth"]["status"] == "ok"
