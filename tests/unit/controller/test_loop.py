"""The whole reconcile loop over a real SQLite store, a fake runtime and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from berth.controller import loop as loop_module
from berth.controller.loop import Controller
from berth.controller.policy import Policy
from berth.domain.status import DeploymentStatus, ReplicaState, TaskState
from berth.probes.tracker import ProbeVerdict
from berth.services.deployments import DeploymentService
from berth.services.tasks import TaskService
from berth.store.engine import Store
from tests.fakes.builders import T0, facts
from tests.fakes.runtime import FakeRuntime, fake_probers


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class World:
    def __init__(self, tmp: Path) -> None:
        self.store = Store(f"sqlite:///{tmp / 'b.db'}")
        self.store.migrate()
        self.clock = Clock()
        self.runtime = FakeRuntime()
        self.verdicts: dict[str, ProbeVerdict] = {}
        self.policy = Policy(drain_seconds=1, stop_grace=2, backoff_base=1, crash_loop_threshold=3)
        self.controller = Controller(self.store, self.runtime, facts(), self.policy,
                                     clock=self.clock, prober_factory=fake_probers(self.verdicts))
        self.svc = DeploymentService(self.store, facts(), self.clock)

    def ticks(self, n: int = 1, seconds: float = 0.5) -> None:
        async def run() -> None:
            for _ in range(n):
                await self.controller.tick()
                self.clock.advance(seconds)
        asyncio.run(run())

    def status(self) -> tuple[DeploymentStatus, int, int]:
        d = self.svc.get("p", "echo")
        return d.status, d.containers[0].ready, d.containers[0].total

    def ready_count(self) -> int:
        _d, rows = self.svc.replicas("p", "echo")
        return sum(r.ready and r.state not in ReplicaState.leaving() for r in rows)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


SPEC = {"name": "echo", "image": "catalog/echo", "containers": [{"scale": {"min": 2, "max": 2}}]}


def test_create_converges_and_finishes_task(world: World) -> None:
    change = world.svc.create("p", SPEC)
    world.ticks(3)
    assert world.status() == (DeploymentStatus.ACTIVE, 2, 2)
    assert len(world.runtime.alive()) == 2
    assert TaskService(world.store).get(change.task.id).state == TaskState.FINISHED
    world.ticks(3)
    assert len(world.runtime.started) == 2  # level-triggered: more ticks change nothing


def test_rolling_update_never_drops_below_target(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    old = set(world.runtime.alive())
    for rid in old:  # make new replicas slow to become ready
        world.verdicts[rid] = ProbeVerdict(started=True, ready=True)
    world.svc.patch("p", "echo", {"envs": {"A": "1"}})
    seen_min = 99
    for step in range(12):
        new = set(world.runtime.alive()) - old
        for rid in new:
            world.verdicts.setdefault(rid, ProbeVerdict(started=True, ready=step > 4))
            if step > 4:
                world.verdicts[rid] = ProbeVerdict(started=True, ready=True)
        world.ticks(1)
        seen_min = min(seen_min, world.ready_count())
    assert seen_min >= 2
    assert not (set(world.runtime.alive()) & old)
    assert world.status() == (DeploymentStatus.ACTIVE, 2, 2)
    assert all(p.launch.envs["A"] == "1" for p in world.runtime.procs.values())


def test_crashed_replica_is_restarted_and_crash_loop_is_error(world: World) -> None:
    world.svc.create("p", {**SPEC, "containers": [{"scale": {"min": 1, "max": 1}}]})
    world.ticks(2)
    (rid,) = world.runtime.alive()
    world.runtime.crash(rid, 1)
    world.ticks(1)
    assert world.status()[0] == DeploymentStatus.DEPLOYING or world.status()[1] == 0
    world.ticks(4)
    assert world.runtime.alive() == [rid]  # restarted in place
    for _ in range(3):
        world.runtime.crash(rid, 1)
        world.ticks(20)
    status, _ready, _total = world.status()
    assert status == DeploymentStatus.ERROR
    assert "crash loop" in world.svc.get("p", "echo").status_reason


def test_stop_start_delete(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    world.svc.stop("p", "echo")
    world.ticks(8)
    assert world.status() == (DeploymentStatus.DISABLED, 0, 0)
    assert world.runtime.alive() == []
    world.svc.start("p", "echo")
    world.ticks(3)
    assert world.status() == (DeploymentStatus.ACTIVE, 2, 2)
    world.svc.delete("p", "echo")
    world.ticks(8)
    assert world.svc.get("p", "echo").status == DeploymentStatus.DELETED
    assert world.runtime.alive() == []


def test_recovery_adopts_running_replicas(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    before = world.runtime.alive()
    fresh = Controller(world.store, world.runtime, facts(), world.policy, clock=world.clock,
                       prober_factory=fake_probers(world.verdicts))
    asyncio.run(fresh.recover())
    world.controller = fresh
    world.ticks(3)
    assert world.runtime.alive() == before and len(world.runtime.started) == 2


def test_a_change_accepted_during_a_tick_is_never_undone(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(2)
    with world.store.read() as tx:
        snapshot = tx.deployments.by_name("p", "echo")
    assert snapshot is not None
    world.svc.patch("p", "echo", {"envs": {"LATE": "1"}})  # lands while a tick is running
    snapshot.status_reason = "computed from the old generation"
    with world.store.write() as tx:
        assert tx.deployments.save_observed(snapshot) is False
    current = world.svc.get("p", "echo")
    assert current.spec.envs == {"LATE": "1"} and current.generation == 2


def test_a_tick_that_does_not_end_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(loop_module, "STALLED_TICK_SECONDS", 0.1)
    w = World(tmp_path)

    async def stuck_tick() -> None:
        await asyncio.sleep(0.4)

    monkeypatch.setattr(w.controller, "tick", stuck_tick)

    async def run() -> None:
        stopping = asyncio.Event()
        task = asyncio.get_running_loop().create_task(w.controller.run(stopping))
        await asyncio.sleep(0.3)
        stopping.set()
        await asyncio.wait_for(task, 5)

    with caplog.at_level("ERROR", logger="berth.controller"):
        asyncio.run(run())
    assert "reconciling has stalled" in caplog.text


def _status_events(world: World, name: str = "echo") -> list[str]:
    return [e.reason for e in world.svc.events("p", name, limit=1000) if e.kind == "Status"]


@pytest.mark.parametrize("before", ["stop", "scale-to-zero", "crash-loop"])
def test_delete_with_no_replica_left_finishes(world: World, before: str) -> None:
    scale = {"min": 0, "max": 0} if before == "scale-to-zero" else {"min": 1, "max": 1}
    world.svc.create("p", {**SPEC, "containers": [{"scale": scale}]})
    world.ticks(3)
    if before == "stop":
        world.svc.stop("p", "echo")
        world.ticks(8)
        assert world.status()[0] == DeploymentStatus.DISABLED
    if before == "crash-loop":
        for _ in range(3):
            (rid,) = world.runtime.alive()
            world.runtime.crash(rid, 1)
            world.ticks(20)
        assert world.status()[0] == DeploymentStatus.ERROR
    change = world.svc.delete("p", "echo")
    world.ticks(10)
    assert world.svc.get("p", "echo").status == DeploymentStatus.DELETED
    assert TaskService(world.store).get(change.task.id).state == TaskState.FINISHED
    reasons = _status_events(world)
    assert "IllegalTransition" not in reasons and reasons[-2:] == ["DELETING", "DELETED"]
    again = world.svc.create("p", SPEC)  # the name is free
    world.ticks(3)
    assert TaskService(world.store).get(again.task.id).state == TaskState.FINISHED


def test_an_illegal_transition_is_logged_once_and_fails_its_task(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    change = world.svc.create("p", SPEC)
    with world.store.write() as tx:  # a row no roll-up can leave legally (e.g. a bad restore)
        d = tx.deployments.by_name("p", "echo")
        assert d is not None
        d.status = DeploymentStatus.DELETING
        tx.deployments.save(d)
    with caplog.at_level("ERROR", logger="berth.controller"):
        world.ticks(5)
        task = TaskService(world.store).get(change.task.id)
        assert task.state == TaskState.ERROR and "a bug in Berth" in task.error
        first = [r.getMessage() for r in caplog.records if "DELETING -> " in r.getMessage()]
        # Each distinct refusal (PENDING while starting, then ACTIVE) is logged once.
        assert first and len(set(first)) == len(first)
        assert "DELETING -> ACTIVE is not allowed" in first[-1]
        assert all(r.levelname == "ERROR" for r in caplog.records)
        world.ticks(10)
    logged = [r.getMessage() for r in caplog.records if "DELETING -> " in r.getMessage()]
    assert logged == first  # not once per tick
    assert _status_events(world).count("IllegalTransition") == len(first)
