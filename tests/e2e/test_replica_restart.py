"""Restarting one replica through the native API of a real `berth serve`."""

from __future__ import annotations

from tests.e2e.harness import Api, echo_spec, predict


def test_restart_one_replica_natively(api: Api) -> None:
    api.task(api.create(echo_spec("solo-restart", 2))["task_id"])
    before = {r["id"]: r for r in api.serving("solo-restart")}
    restarted, kept = sorted(before)
    r = api.http.post(f"{api.base}/solo-restart/replicas/{restarted}/restart")
    assert r.status_code == 202, r.text
    assert r.json()["deployment"]["generation"] == 1
    task = api.task(r.json()["task_id"])
    assert task["state"] == "FINISHED", task
    after = {x["id"]: x for x in api.serving("solo-restart")}
    assert restarted not in after and len(after) == 2
    assert after[kept]["pid"] == before[kept]["pid"] and after[kept]["restarts"] == 0
    (new,) = set(after) - {kept}
    assert predict(after[new]["port"], {"q": 1})["replica"] == new
    d = api.get("solo-restart")
    assert d["status"] == "ACTIVE" and d["generation"] == d["observed_generation"] == 1

    missing = api.http.post(f"{api.base}/solo-restart/replicas/nope/restart")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    api.task(api.act("solo-restart", "stop"))
    stopped = api.http.post(f"{api.base}/solo-restart/replicas/{new}/restart")
    assert stopped.status_code == 409 and "start it instead" in stopped.text
    gone = api.http.delete(f"{api.base}/solo-restart")
    assert gone.status_code == 202
    api.task(gone.json()["task_id"])
