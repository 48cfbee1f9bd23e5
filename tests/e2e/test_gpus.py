"""GPU scheduling on the process runtime, with GPUs declared through BERTH_GPUS."""

from __future__ import annotations

from pathlib import Path

import psutil

from tests.e2e.harness import Api, BerthServer, echo_spec, wait_for

GPUS = "0:NVIDIA H100 80GB HBM3:81559,1:NVIDIA H100 80GB HBM3:81559"


def visible_devices(pid: int) -> str:
    (child,) = psutil.Process(pid).children()
    return child.environ()["CUDA_VISIBLE_DEVICES"]


def test_each_replica_gets_its_own_gpu_and_extra_ones_wait(tmp_path: Path) -> None:
    srv = BerthServer(tmp_path / "data", env={"BERTH_GPUS": GPUS}).start()
    try:
        with srv.client() as http:
            api = Api(http)
            flavors = http.get("/v1/flavors").json()["items"]
            assert [f["gpus"] for f in flavors if f["gpus"]] == [1, 2]
            spec = echo_spec("echo-gpu", 2, resources={"gpus": 1, "gpu_type": "nvidia-hopper-h100"})
            assert api.task(api.create(spec)["task_id"])["state"] == "FINISHED"
            devices = sorted(visible_devices(r["pid"]) for r in api.serving("echo-gpu"))
            assert devices == ["0", "1"]
            assert {tuple(r["gpus"]) for r in api.replicas("echo-gpu")} == {(0,), (1,)}
            cpu_only = api.create(echo_spec("echo-cpu", 1))
            api.task(cpu_only["task_id"])
            assert visible_devices(api.serving("echo-cpu")[0]["pid"]) == ""
            too_many = http.post(api.base, json=echo_spec("echo-gpu3", 1, resources={"gpus": 3}))
            assert too_many.status_code == 422
            assert too_many.json()["error"]["details"][0]["field"] == "resources.gpus"
            # Both GPUs are taken: a third replica waits with the reason, then gets one.
            api.create(echo_spec("echo-wait", 1, resources={"gpus": 1}))
            d = api.wait_status("echo-wait", "PENDING")
            wait_for(lambda: "Unschedulable" in api.get("echo-wait")["status_reason"], 10,
                     what="the unschedulable reason")
            assert "0 of 2 free" in api.get("echo-wait")["status_reason"], d
            api.task(api.act("echo-gpu", "stop"))
            api.wait_status("echo-wait", "ACTIVE", 20)
            (waiting,) = api.serving("echo-wait")
            assert visible_devices(waiting["pid"]) in ("0", "1")
    finally:
        srv.stop()
