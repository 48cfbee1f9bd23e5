"""Probes run for real: readiness gates `ready`, liveness restarts, exec and tcp work."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Api, echo_spec, wait_for


def test_readiness_gates_ready_and_liveness_restarts(api: Api, tmp_path: Path) -> None:
    flag = tmp_path / "unhealthy"
    probe = {"http_get": {"path": "/healthz", "port": 8080, "headers": {"X-Probe": "berth"}},
             "period_seconds": 0.2, "failure_threshold": 2}
    spec = echo_spec("echo-probe", 1, envs={"ECHO_UNHEALTHY_FILE": str(flag)},
                     probes={"readiness": probe})
    api.task(api.create(spec)["task_id"])
    (replica,) = api.serving("echo-probe")
    flag.touch()
    d = api.wait_status("echo-probe", "DEPLOYING", 10)
    assert d["containers"][0]["deploy_status"] == {"ready": 0, "total": 1}
    assert api.replicas("echo-probe")[0]["pid"] == replica["pid"]  # readiness never restarts
    flag.unlink()
    api.wait_status("echo-probe", "ACTIVE", 10)
    # Liveness failing restarts the replica.
    live = {**probe, "failure_threshold": 3}
    r = api.http.patch(f"{api.base}/echo-probe", json={"probes": {"liveness": live}})
    api.task(r.json()["task_id"])
    (replica,) = api.serving("echo-probe")
    flag.touch()
    wait_for(lambda: api.replicas("echo-probe")[0]["restarts"] >= 1, 10,
             what="a liveness restart")
    flag.unlink()
    wait_for(lambda: api.serving("echo-probe"), 15, what="the replica ready again")
    reasons = [e["reason"] for e in api.http.get(f"{api.base}/echo-probe/events").json()["items"]]
    assert "Unhealthy" in reasons


def test_exec_and_tcp_probes(api: Api, tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    spec = echo_spec("echo-exec", 1, probes={
        "startup": {"tcp_socket": {}, "period_seconds": 0.2, "failure_threshold": 50},
        "readiness": {"exec": {"command": ["test", "-f", str(ok)]}, "period_seconds": 0.2,
                      "failure_threshold": 1}})
    api.create(spec)
    d = api.wait_status("echo-exec", "DEPLOYING", 10)
    assert d["containers"][0]["deploy_status"]["ready"] == 0
    ok.touch()
    api.wait_status("echo-exec", "ACTIVE", 10)


def test_startup_probe_failure_restarts(api: Api) -> None:
    spec = echo_spec("echo-slow", 1, envs={"ECHO_STARTUP_DELAY_MS": "60000"}, probes={
        "startup": {"tcp_socket": {}, "period_seconds": 0.2, "failure_threshold": 3}})
    api.create(spec)
    wait_for(lambda: api.replicas("echo-slow") and api.replicas("echo-slow")[0]["restarts"] >= 1,
             15, what="a startup-probe restart")
    assert "startup probe failed" in api.replicas("echo-slow")[0]["last_error"]
