"""Image pulls run in the background: the replica waits PENDING with the pull's progress
(status reason and events), other work goes on, and the start comes once the image is
here; a pull that fails makes the deployment FAILED, not a crash loop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from berth.controller.loop import Controller
from berth.controller.policy import Policy
from berth.domain.platform import Region
from berth.domain.status import DeploymentStatus, FailureKind, ReplicaState
from berth.runtime.base import ImageUnavailable
from berth.services.deployments import DeploymentService
from berth.store.engine import Store
from tests.fakes.builders import facts
from tests.fakes.runtime import FakeRuntime, fake_probers
from tests.unit.controller.test_loop import Clock

SPEC = {"name": "model", "image": "localhost/model:v1", "listening_port": 8080,
        "containers": [{"region": "local", "scale": {"min": 1, "max": 1}}]}


def _world(tmp: Path) -> tuple[Controller, FakeRuntime, DeploymentService, Store]:
    store = Store(f"sqlite:///{tmp / 'b.db'}")
    store.migrate()
    f = replace(facts(), regions={"local": Region("local", "process+podman", runs_images=True)})
    clock = Clock()
    runtime = FakeRuntime()
    controller = Controller(store, runtime, f, Policy(crash_loop_threshold=3), clock=clock,
                            prober_factory=fake_probers({}), containers=True)
    return controller, runtime, DeploymentService(store, f, clock), store


def test_the_pull_runs_in_the_background_with_its_progress(tmp_path: Path) -> None:
    controller, runtime, svc, store = _world(tmp_path)
    svc.create("p", SPEC)

    async def run() -> None:
        runtime.pull_gate = asyncio.Event()
        runtime.pull_lines = ["Copying blob 1f2e", "Copying blob 9a0b"]
        await controller.tick()
        await asyncio.sleep(0)  # the pull reports
        await controller.tick()
        (r,) = svc.replicas("p", "model")[1]
        assert r.state == ReplicaState.PENDING and r.pulling.endswith("Copying blob 9a0b")
        await controller.tick()  # the status rolls up from the replicas as the tick began
        d = svc.get("p", "model")
        assert d.status == DeploymentStatus.PENDING
        assert d.status_reason == "pulling image localhost/model:v1: Copying blob 9a0b"
        pulled = [e.message for e in svc.events("p", "model") if e.reason == "Pulling"]
        assert pulled == ["localhost/model:v1: Copying blob 1f2e",
                          "localhost/model:v1: Copying blob 9a0b"]
        assert runtime.started == []  # nothing started while the image is coming
        runtime.pull_gate.set()
        await asyncio.sleep(0)
        await controller.tick()
        (started,) = runtime.started
        assert started.image == "localhost/model:v1" and started.pull_policy == "Never"
        (r,) = svc.replicas("p", "model")[1]
        assert r.state == ReplicaState.STARTING and r.pulling == ""

    asyncio.run(run())
    store.close()


def test_a_failed_pull_fails_the_deployment_with_its_reason(tmp_path: Path) -> None:
    controller, runtime, svc, store = _world(tmp_path)
    svc.create("p", SPEC)
    runtime.pull_error = ImageUnavailable("localhost/model:v1: unauthorized")

    async def run() -> None:
        for _ in range(3):
            await controller.tick()
            await asyncio.sleep(0)

    asyncio.run(run())
    (r,) = svc.replicas("p", "model")[1]
    assert r.failure == FailureKind.PULL_FAILED and r.state == ReplicaState.BACKOFF
    d = svc.get("p", "model")
    assert d.status == DeploymentStatus.FAILED
    assert "image unavailable" in d.status_reason and "unauthorized" in d.status_reason
    assert runtime.started == []
    store.close()
