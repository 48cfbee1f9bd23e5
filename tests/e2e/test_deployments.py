"""Deploy, update, stop/start/restart, crash, delete: a real server with real replicas."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import psutil

from tests.e2e.harness import Api, BerthServer, echo_spec, predict, wait_for


def test_deploy_echo_to_active_and_serve(api: Api, server: BerthServer) -> None:
    accepted = api.create(echo_spec("echo-basic"))
    assert accepted["deployment"]["status"] == "NEW" and accepted["deployment"]["generation"] == 1
    task = api.task(accepted["task_id"])
    assert task["state"] == "FINISHED", task
    d = api.get("echo-basic")
    assert d["status"] == "ACTIVE"
    assert d["containers"][0]["deploy_status"] == {"ready": 2, "total": 2}
    replicas = api.replicas("echo-basic")
    assert len(replicas) == 2 and all(r["ready"] and r["pid"] and r["port"] for r in replicas)
    assert replicas[0]["stats"]["memory_bytes"] > 0
    for r in replicas:
        answer = predict(r["port"], {"x": 1})
        assert answer == {"echo": {"x": 1}, "replica": r["id"]}
    lines = wait_for(lambda: [ln for ln in api.http.get(
        f"{api.base}/echo-basic/logs").json()["items"] if "listening" in ln["line"]],
        10, what="echo's start-up line in the logs")
    assert {ln["replica_id"] for ln in lines} == {r["id"] for r in replicas}
    reasons = [e["reason"] for e in api.http.get(f"{api.base}/echo-basic/events").json()["items"]]
    assert {"Created", "Launched", "Ready", "ACTIVE", "Converged"} <= set(reasons)
    listed = api.http.get(api.base).json()
    assert "echo-basic" in [item["name"] for item in listed["items"]]


def test_rolling_update_never_has_fewer_than_two_ready(api: Api) -> None:
    api.task(api.create(echo_spec("echo-roll"))["task_id"])
    old = {r["id"]: r["pid"] for r in api.serving("echo-roll")}
    lowest, stop = [99], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            lowest[0] = min(lowest[0], len(api.serving("echo-roll")))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = api.http.patch(f"{api.base}/echo-roll", json={"envs": {"MODEL_VERSION": "2"}})
        assert r.status_code == 202 and r.json()["deployment"]["generation"] == 2
        task = api.task(r.json()["task_id"])
    finally:
        stop.set()
        watcher.join()
    assert task["state"] == "FINISHED", task
    assert lowest[0] >= 2, f"only {lowest[0]} ready replicas during the rollout"
    new = api.serving("echo-roll")
    assert len(new) == 2 and not ({r["id"] for r in new} & set(old))
    assert all(r["generation"] == 2 for r in new)
    for replica in new:  # the new environment reached the model server process
        children = psutil.Process(replica["pid"]).children()
        envs = [p.environ().get("MODEL_VERSION") for p in children]
        assert envs == ["2"]
    assert not any(psutil.pid_exists(pid) for pid in old.values())


def test_scale_change_does_not_restart(api: Api) -> None:
    api.task(api.create(echo_spec("echo-scale", 1))["task_id"])
    (first,) = api.serving("echo-scale")
    r = api.http.patch(f"{api.base}/echo-scale",
                       json={"containers": [{"region": "local", "scale": {"min": 2, "max": 2}}]})
    assert api.task(r.json()["task_id"])["state"] == "FINISHED"
    ids = {x["id"]: x["pid"] for x in api.serving("echo-scale")}
    assert len(ids) == 2 and ids[first["id"]] == first["pid"]


def test_stop_start_restart(api: Api, server: BerthServer) -> None:
    api.task(api.create(echo_spec("echo-ctl"))["task_id"])
    before = {r["pid"] for r in api.replicas("echo-ctl")}
    assert api.task(api.act("echo-ctl", "stop"))["state"] == "FINISHED"
    d = api.get("echo-ctl")
    assert d["status"] == "DISABLED" and d["containers"][0]["deploy_status"] == {
        "ready": 0, "total": 0}
    assert api.replicas("echo-ctl") == []
    assert not any(psutil.pid_exists(pid) for pid in before)
    assert api.task(api.act("echo-ctl", "start"))["state"] == "FINISHED"
    assert api.get("echo-ctl")["status"] == "ACTIVE"
    started = {r["id"] for r in api.serving("echo-ctl")}
    assert api.task(api.act("echo-ctl", "restart"))["state"] == "FINISHED"
    restarted = api.serving("echo-ctl")
    assert len(restarted) == 2 and not ({r["id"] for r in restarted} & started)


def test_killed_replica_is_restarted(api: Api) -> None:
    api.task(api.create(echo_spec("echo-kill"))["task_id"])
    victim = api.serving("echo-kill")[0]
    os.killpg(victim["pid"], signal.SIGKILL)
    def restarted() -> bool:
        rows = {r["id"]: r for r in api.replicas("echo-kill")}
        r = rows.get(victim["id"])
        return bool(r and r["restarts"] == 1 and r["ready"] and r["pid"] != victim["pid"])
    wait_for(restarted, 20, what="the killed replica to come back")
    assert api.wait_status("echo-kill", "ACTIVE")["containers"][0]["deploy_status"]["ready"] == 2
    reasons = [e["reason"] for e in api.http.get(f"{api.base}/echo-kill/events").json()["items"]]
    assert "Exited" in reasons


def test_failed_rollout_keeps_old_replicas_serving(api: Api) -> None:
    api.task(api.create(echo_spec("echo-bad"))["task_id"])
    old = {r["id"]: r["pid"] for r in api.serving("echo-bad")}
    crash = ["python3", "-c", "import sys; print('model weights missing'); sys.exit(3)"]
    r = api.http.patch(f"{api.base}/echo-bad", json={"command": crash})
    task = api.task(r.json()["task_id"])
    assert task["state"] == "ERROR" and "halted" in task["error"], task
    assert {x["id"]: x["pid"] for x in api.serving("echo-bad")} == old
    d = api.get("echo-bad")
    assert d["containers"][0]["deploy_status"]["ready"] == 2
    assert "exited with code 3" in d["containers"][0]["error_message"]
    for port in (x["port"] for x in api.serving("echo-bad")):
        assert predict(port, {"still": "serving"})["echo"] == {"still": "serving"}
    logs = api.http.get(f"{api.base}/echo-bad/logs").json()["items"]
    assert any("model weights missing" in ln["line"] for ln in logs)


def test_command_that_cannot_run_fails_with_reason(api: Api) -> None:
    spec = echo_spec("echo-nocmd", 1, image="vllm/vllm-openai:latest",
                     command=["definitely-not-installed-berth", "--serve"])
    api.create(spec)
    d = api.wait_status("echo-nocmd", "FAILED", 30)
    assert "not found" in d["status_reason"] and "definitely-not-installed-berth" in d[
        "status_reason"]


def test_delete_leaves_no_process(api: Api) -> None:
    api.task(api.create(echo_spec("echo-del"))["task_id"])
    pids = [r["pid"] for r in api.replicas("echo-del")]
    task = api.task(api.http.delete(f"{api.base}/echo-del").json()["task_id"])
    assert task["state"] == "FINISHED"
    assert api.get("echo-del")["status"] == "DELETED"
    assert not any(psutil.pid_exists(pid) for pid in pids)
    assert "echo-del" not in [d["name"] for d in api.http.get(api.base).json()["items"]]
    again = api.create(echo_spec("echo-del", 1))  # the name is free again
    assert api.task(again["task_id"])["state"] == "FINISHED"


def test_logs_follow_streams_new_lines(api: Api) -> None:
    api.task(api.create(echo_spec("echo-follow", 1))["task_id"])
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    with api.http.stream("GET", f"{api.base}/echo-follow/logs",
                         params={"follow": "true", "limit": 5}) as response:
        assert response.status_code == 200
        restarted = False
        for raw in response.iter_lines():
            if not raw:
                continue
            seen.append(json.loads(raw))
            if not restarted:  # a restart writes new lines while we follow
                restarted = True
                api.act("echo-follow", "restart")
            if sum("listening" in ln["line"] for ln in seen) >= 2 or time.monotonic() > deadline:
                break
    assert len({ln["replica_id"] for ln in seen if "listening" in ln["line"]}) == 2
