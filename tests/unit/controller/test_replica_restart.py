"""Restarting one replica: it retires like an old-template replica once its replacement is
ready; the other replicas, the spec and the generation are left alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from berth.controller.plan import RESTART_REASON, plan_deployment
from berth.controller.policy import Policy
from berth.controller.rollup import roll_up, task_outcome
from berth.domain.errors import Conflict, NotFound
from berth.domain.records import Task
from berth.domain.status import DeploymentStatus as D
from berth.domain.status import ReplicaState as S
from berth.domain.status import TaskKind, TaskState
from berth.probes.tracker import ProbeVerdict
from berth.services.tasks import TaskService
from tests.fakes.builders import at, deployment, replica
from tests.unit.controller.test_loop import SPEC, World

P = Policy(crash_loop_threshold=3, progress_deadline=60)


def test_a_ready_replica_asked_to_restart_is_replaced_before_it_drains() -> None:
    d = deployment(2)
    marked = replica(d, "a", restart_requested_at=at(1))
    rows = [marked, replica(d, "b")]
    plan = plan_deployment(d, rows, {"local": 2}, P, at(2))
    assert plan.create == ["local"] and plan.drain == [] and plan.stop == []
    starting = replica(d, "c", S.STARTING, ready=False, created=2)
    plan = plan_deployment(d, [*rows, starting], {"local": 2}, P, at(3))
    assert (plan.create, plan.drain, plan.stop) == ([], [], [])
    ready = replace(starting, state=S.RUNNING, ready=True)
    plan = plan_deployment(d, [*rows, ready], {"local": 2}, P, at(4))
    assert plan.drain == [("a", RESTART_REASON)] and not plan.create and not plan.stop


def test_an_unready_replica_asked_to_restart_stops_at_once() -> None:
    d = deployment(1)
    crashed = replica(d, "a", S.BACKOFF, ready=False, restart_requested_at=at(1))
    plan = plan_deployment(d, [crashed], {"local": 1}, P, at(2))
    assert plan.stop == [("a", RESTART_REASON)] and plan.create == ["local"]
    assert plan.launch == []  # never relaunched in place


def test_restart_never_triggers_a_rollout_halt() -> None:
    d = deployment(1)  # last changed long ago: a template rollout would be past its deadline
    rows = [replica(d, "a", restart_requested_at=at(500)),
            replica(d, "b", S.STARTING, ready=False, created=500)]
    plan = plan_deployment(d, rows, {"local": 1}, P, at(1000))
    assert plan.halt == "" and not plan.stop and not plan.drain


def test_no_room_to_surge_drains_the_marked_replica_first() -> None:
    d = deployment(1)
    rows = [replica(d, "a", restart_requested_at=at(1)),
            replace(replica(d, "b", S.PENDING, ready=False),
                    reason="Unschedulable: no free GPU", unschedulable="no free GPU")]
    plan = plan_deployment(d, rows, {"local": 1}, P, at(2))
    assert [rid for rid, _ in plan.drain] == ["a"]


def test_rollup_during_a_replica_restart() -> None:
    d = deployment(2)
    rows = [replica(d, "a", restart_requested_at=at(1)), replica(d, "b"),
            replica(d, "c", S.STARTING, ready=False)]
    r = roll_up(d, rows, {"local": 2}, P)
    assert r.status == D.ACTIVE and not r.converged and "replacing replica a" in r.reason
    t = task_outcome(_task(), d, r, P, at(2))
    assert t.state == TaskState.RUNNING
    draining = [replace(rows[0], state=S.DRAINING, ready=False), rows[1],
                replace(rows[2], state=S.RUNNING, ready=True)]
    assert not roll_up(d, draining, {"local": 2}, P).converged  # until it is gone
    done = roll_up(d, draining[1:], {"local": 2}, P)
    assert done.converged and task_outcome(_task(), d, done, P, at(3)).state == TaskState.FINISHED


def _task() -> Task:
    return Task(id="t", kind=TaskKind.RESTART, project="p", deployment_id="d1",
                deployment_name="echo", generation=1, state=TaskState.NEW, created_at=at(0),
                updated_at=at(0))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_restart_replica_replaces_only_that_replica(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    first, second = sorted(world.runtime.alive())
    pid = world.runtime.procs[second].pid
    change = world.svc.restart_replica("p", "echo", first)
    assert change.deployment.generation == 1 and change.task.kind == TaskKind.RESTART
    world.ticks(12)
    alive = world.runtime.alive()
    assert first not in alive and second in alive and len(alive) == 2
    assert world.runtime.procs[second].pid == pid
    assert world.status() == (D.ACTIVE, 2, 2)
    assert TaskService(world.store).get(change.task.id).state == TaskState.FINISHED
    assert world.svc.get("p", "echo").generation == 1
    world.ticks(3)
    assert len(world.runtime.started) == 3  # level-triggered: nothing more happens


def test_ready_count_never_drops_while_a_replica_restarts(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    old = set(world.runtime.alive())
    for rid in old:
        world.verdicts[rid] = ProbeVerdict(started=True, ready=True)
    world.svc.restart_replica("p", "echo", sorted(old)[0])
    seen_min = 99
    for step in range(12):
        for rid in set(world.runtime.alive()) - old:
            world.verdicts[rid] = ProbeVerdict(started=True, ready=step > 4)
        world.ticks(1)
        seen_min = min(seen_min, world.ready_count())
    assert seen_min >= 2 and len(set(world.runtime.alive()) & old) == 1


def test_a_request_made_during_a_tick_survives_the_ticks_row_save(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    _d, rows = world.svc.replicas("p", "echo")
    world.svc.restart_replica("p", "echo", rows[0].id)  # lands after the tick read the rows
    with world.store.write() as tx:
        tx.replicas.save(rows[0])  # the tick's save of the row it read
    with world.store.read() as tx:
        saved = tx.replicas.get(rows[0].id)
    assert saved is not None and saved.restart_requested_at is not None


def test_restart_replica_errors(world: World) -> None:
    world.svc.create("p", SPEC)
    world.ticks(3)
    with pytest.raises(NotFound, match="replica 'nope' not found"):
        world.svc.restart_replica("p", "echo", "nope")
    world.svc.create("p", {**SPEC, "name": "other"})
    world.ticks(3)
    _d, theirs = world.svc.replicas("p", "other")
    with pytest.raises(NotFound):
        world.svc.restart_replica("p", "echo", theirs[0].id)  # not this deployment's
    world.svc.stop("p", "echo")
    _d, rows = world.svc.replicas("p", "echo")
    with pytest.raises(Conflict, match="stopped"):
        world.svc.restart_replica("p", "echo", rows[0].id)
