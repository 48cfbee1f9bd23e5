"""kill -9 of the server loses nothing; the restarted server adopts, never duplicates."""

from __future__ import annotations

from tests.e2e.harness import Api, BerthServer, echo_spec, predict, wait_for


def test_server_kill9_restart_converges_without_duplicates(fresh_server: BerthServer) -> None:
    srv = fresh_server.start()
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("echo-survive"))["task_id"])
        stopped = api.create(echo_spec("echo-parked", 1))
        api.task(stopped["task_id"])
        api.task(api.act("echo-parked", "stop"))
        before = {r["id"]: r["pid"] for r in api.serving("echo-survive")}
        token = srv.token
    srv.kill9()
    # Replicas outlive the control plane and keep serving.
    assert len(srv.replica_processes()) == 4  # 2 shims + 2 model servers
    srv.start()
    assert srv.token == token
    with srv.client() as http:
        api = Api(http)
        d = api.wait_status("echo-survive", "ACTIVE")
        assert d["containers"][0]["deploy_status"] == {"ready": 2, "total": 2}
        assert {r["id"]: r["pid"] for r in api.serving("echo-survive")} == before
        assert api.get("echo-parked")["status"] == "DISABLED"
        wait_for(lambda: len(srv.replica_processes()) == 4, 5, what="exactly two replicas")
        for replica in api.serving("echo-survive"):
            assert predict(replica["port"], {"after": "restart"})["replica"] == replica["id"]
        # Updates still roll after the restart.
        r = api.http.patch(f"{api.base}/echo-survive", json={"envs": {"AFTER": "1"}})
        assert api.task(r.json()["task_id"])["state"] == "FINISHED"
        assert len(srv.replica_processes()) == 4


def test_replicas_lost_while_down_are_replaced(fresh_server: BerthServer) -> None:
    srv = fresh_server.start()
    with srv.client() as http:
        api = Api(http)
        api.task(api.create(echo_spec("echo-lost", 1))["task_id"])
        (lost,) = api.serving("echo-lost")
    srv.kill9()
    for proc in srv.replica_processes():
        proc.kill()
    wait_for(lambda: not srv.replica_processes(), 5, what="the replica processes to die")
    srv.start()
    with srv.client() as http:
        api = Api(http)
        wait_for(lambda: [r for r in api.serving("echo-lost") if r["id"] != lost["id"]], 20,
                 what="a replacement replica")
        reasons = [e["reason"] for e in http.get(f"{api.base}/echo-lost/events").json()["items"]]
        assert "Lost" in reasons
