"""The autoscaler loop and the controller together over a real SQLite store, a fake runtime,
fake gateway reports and one fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from berth.autoscaler.loop import Autoscaler
from berth.controller.loop import Controller
from berth.controller.policy import Policy
from berth.domain.status import ReplicaState
from berth.probes.tracker import ProbeVerdict
from berth.runtime.nvml import GpuUsage
from berth.services.deployments import DeploymentService
from berth.store.engine import Store
from berth.store.routing import GatewayReport
from tests.fakes.builders import T0, facts
from tests.fakes.runtime import FakeRuntime, fake_probers


class NoGpus:
    def usage(self) -> dict[int, GpuUsage] | str:
        return "NVML is not available on this machine (test)"


class World:
    def __init__(self, tmp: Path) -> None:
        self.store = Store(f"sqlite:///{tmp / 'b.db'}")
        self.store.migrate()
        self.now = T0
        self.runtime = FakeRuntime()
        self.verdicts: dict[str, ProbeVerdict] = {}
        self.controller = Controller(self.store, self.runtime, facts(), Policy(drain_seconds=0),
                                     clock=lambda: self.now,
                                     prober_factory=fake_probers(self.verdicts))
        self.lease = True
        self.autoscaler = Autoscaler(self.store, self.runtime, facts(), lambda: self.lease,
                                     gpus=NoGpus(), clock=lambda: self.now.timestamp())
        self.svc = DeploymentService(self.store, facts(), lambda: self.now)

    def report(self, inflight: dict[str, int], waiting: int = 0, requests: int = 0) -> None:
        d = self.svc.get("p", "auto")
        with self.store.write(notify=False) as tx:
            tx.routing.report(GatewayReport(
                id="g1", version=tx.routing.version(), seen_at=self.now.timestamp(),
                inflight=inflight, waiting={d.id: waiting} if waiting else {},
                requests={d.id: requests},
                last_request={d.id: self.now.timestamp()} if inflight or waiting else {}))

    def step(self, seconds: float = 1.0) -> None:
        async def run() -> None:
            await self.autoscaler.tick()
            await self.controller.tick()
            for rid in self.runtime.alive():
                self.verdicts[rid] = ProbeVerdict(started=True, ready=True)
            await self.controller.tick()
        asyncio.run(run())
        self.now += timedelta(seconds=seconds)

    def serving(self) -> list[str]:
        _d, rows = self.svc.replicas("p", "auto")
        return sorted(r.id for r in rows if r.state not in ReplicaState.leaving())

    def view(self) -> dict[str, Any]:
        d = self.svc.get("p", "auto")
        with self.store.read() as tx:
            records = tx.autoscaler.of(d.id)
        assert len(records) == 1
        r = records[0]
        return {"desired": r.desired, "panic": r.panic, "metrics": r.metrics,
                "reasons": r.reasons}

    def reasons(self) -> list[str]:
        _d = self.svc.get("p", "auto")
        return [e.reason for e in self.svc.events("p", "auto", limit=1000)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def spec(**triggers: Any) -> dict[str, Any]:
    return {"name": "auto", "image": "catalog/echo", "timeout": 600,
            "containers": [{"scale": {"min": 1, "max": 4, "cooldown_period": 5,
                                      "polling_interval": 1,
                                      "triggers": triggers or {"concurrency": {"target": 2}}}}]}


def test_load_scales_up_without_restarting_and_back_down(world: World) -> None:
    world.svc.create("p", spec())
    world.step()
    world.step()
    [first] = world.serving()
    for _ in range(3):
        world.report({first: 8})
        world.step()
    assert len(world.serving()) == 4
    assert first in world.serving()  # scaling never replaces a replica
    assert world.view()["desired"] == 4
    assert world.view()["metrics"]["concurrency"]["target"] == 2
    assert world.reasons().count("ScaledUp") == 1
    # The load goes: after the cooldown and a full stable window, back to min.
    for _ in range(20):
        world.report({rid: 0 for rid in world.serving()})
        world.step()
    assert len(world.serving()) == 1
    assert "ScaledDown" in world.reasons()


def test_without_the_lease_nothing_is_decided(world: World) -> None:
    world.lease = False
    world.svc.create("p", spec())
    world.step()
    with world.store.read() as tx:
        assert tx.autoscaler.all() == []
    world.lease = True
    world.step()
    with world.store.read() as tx:
        assert len(tx.autoscaler.all()) == 1


def test_stopped_deployment_forgets_its_decision(world: World) -> None:
    world.svc.create("p", spec())
    world.step()
    world.svc.stop("p", "auto")
    world.step()
    with world.store.read() as tx:
        assert tx.autoscaler.all() == []


def test_gpu_trigger_without_nvml_is_unavailable_once(world: World) -> None:
    world.svc.create("p", spec(gpu_utilization={"threshold": 50}))
    for _ in range(4):
        world.step()
    reading = world.view()["metrics"]["gpu_utilization"]
    assert reading["status"].startswith("unavailable: NVML is not available")
    assert world.reasons().count("TriggerUnavailable") == 1
    assert len(world.serving()) == 1


def test_a_silent_gateway_goes_stale_and_holds_nothing_up(world: World) -> None:
    world.svc.create("p", spec())
    world.step()
    world.step()
    [first] = world.serving()
    world.report({first: 8})
    world.step()
    assert len(world.serving()) == 4
    for _ in range(30):  # the gateway never reports again
        world.step()
    assert world.view()["metrics"]["concurrency"]["status"] == "stale"
    assert len(world.serving()) == 1


def test_waiting_requests_at_zero_start_one_at_once(world: World) -> None:
    data = spec()
    data["containers"][0]["scale"]["min"] = 0
    data["containers"][0]["scale"]["polling_interval"] = 30
    world.svc.create("p", data)
    world.step()
    assert world.serving() == []
    world.report({}, waiting=3)
    world.step()
    assert len(world.serving()) >= 1
