"""reconcile_deployment on deletion: every status reaches DELETED through DELETING, and an
illegal transition fails the open tasks and is reported once, not every tick. Also the
typed fact it keeps for a replica it cannot place."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest

from berth.controller.policy import Policy
from berth.controller.reconcile import Reconciliation, reconcile_deployment
from berth.domain.platform import Gpu
from berth.domain.records import Deployment, Replica, Task
from berth.domain.status import (
    DEPLOYMENT_TRANSITIONS,
    DesiredState,
    FailureKind,
    TaskKind,
    TaskState,
)
from berth.domain.status import DeploymentStatus as D
from berth.domain.status import ReplicaState as S
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ProcessObservation
from tests.fakes.builders import at, deployment, facts, replica

P = Policy(drain_seconds=0, stop_grace=2, crash_loop_threshold=3)


def _task(kind: TaskKind, created: float = 0) -> Task:
    return Task(id=f"t-{kind}", kind=kind, project="p", deployment_id="d1",
                deployment_name="echo", generation=1, state=TaskState.NEW,
                created_at=at(created), updated_at=at(created))


def _tick(d: Deployment, rows: list[Replica], tasks: list[Task], signalled: set[str],
          t: float) -> Reconciliation:
    """One tick against a runtime whose processes exit once signalled."""
    observed = {r.id: ProcessObservation(r.id, alive=r.id not in signalled, pid=r.pid,
                                         port=r.port, exit_code=0 if r.id in signalled else None)
                for r in rows if r.state in S.has_process()}
    verdicts = {r.id: ProbeVerdict(started=True, ready=r.ready) for r in rows}
    out = reconcile_deployment(d, rows, tasks, observed, verdicts, set(), facts(), P, at(t),
                               new_id=lambda: "new")
    signalled.update(rid for rid, _ in out.signals)
    return out


def _drive(d: Deployment, rows: list[Replica], tasks: list[Task],
           ticks: int = 10) -> tuple[Deployment, list[Task], list[str]]:
    """Tick until DELETED (bounded); the deployment, every task update, status event reasons."""
    signalled: set[str] = set()
    updates: list[Task] = []
    statuses: list[str] = []
    for i in range(ticks):
        out = _tick(d, rows, tasks, signalled, i + 1.0)
        d, rows = out.deployment, out.replicas
        statuses += [e.reason for e in out.events if e.kind == "Status"]
        updates += out.tasks
        done = {t.id for t in out.tasks if t.state in TaskState.done()}
        tasks = [t for t in tasks if t.id not in done]
        assert not out.errors
        if d.status == D.DELETED:
            break
    return d, updates, statuses


def _rows(kind: str, d: Deployment) -> list[Replica]:
    return {
        "none": [],
        "serving": [replica(d, "a"), replica(d, "b")],
        "starting": [replica(d, "a", S.STARTING, ready=False)],
        "crash-looping": [replace(replica(d, "a", S.BACKOFF, ready=False, failures=3,
                                          failure=FailureKind.EXITED), pid=None)],
        "pending": [replace(replica(d, "a", S.PENDING, ready=False), pid=None, port=None)],
        "draining": [replica(d, "a", S.DRAINING, ready=False, state_deadline=at(0))],
    }[kind]


ROWS = ["none", "serving", "starting", "crash-looping", "pending", "draining"]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("status", sorted(set(D) - {D.DELETED}))
def test_every_status_reaches_deleted_through_deleting(status: D, rows: str) -> None:
    d = replace(deployment(2, desired=DesiredState.DELETED), status=status)
    final, updates, statuses = _drive(d, _rows(rows, d), [_task(TaskKind.DELETE)])
    assert final.status == D.DELETED and final.status_reason == "deleted"
    path = [status.value, *statuses]
    assert all(D(new) in DEPLOYMENT_TRANSITIONS[D(old)] for old, new in pairwise(path))
    assert "IllegalTransition" not in statuses and statuses[-1] == "DELETED"
    assert path[-2] == "DELETING"
    assert [(t.state, t.message) for t in updates][-1] == (TaskState.FINISHED, "deleted")


def test_the_last_replica_gone_and_deleted_in_one_tick_writes_both_statuses() -> None:
    d = replace(deployment(1, desired=DesiredState.DELETED), status=D.ERROR)
    looping = replace(replica(d, "a", S.BACKOFF, ready=False, failures=3,
                              failure=FailureKind.EXITED), pid=None)
    out = _tick(d, [looping], [_task(TaskKind.DELETE)], set(), 1)
    assert out.deleted == ["a"] and out.deployment.status == D.DELETED
    assert [e.reason for e in out.events if e.kind == "Status"] == ["DELETING", "DELETED"]
    assert out.routing_changed and out.changed


def test_an_illegal_transition_fails_the_tasks_and_is_reported_once() -> None:
    # A row no roll-up can leave legally: DELETING (only DELETED follows) yet asked to run.
    d = replace(deployment(1), status=D.DELETING, status_reason="stopping 1 replicas")
    rows = [replica(d, "a")]
    tasks = [_task(TaskKind.UPDATE), _task(TaskKind.START, created=1)]
    first = _tick(d, rows, tasks, set(), 1)
    assert first.deployment.status == D.DELETING  # the status does not move
    assert "DELETING -> ACTIVE is not allowed" in first.deployment.status_reason
    assert [e.reason for e in first.events] == ["IllegalTransition"]
    assert len(first.errors) == 1 and "DELETING -> ACTIVE" in first.errors[0]
    assert [(t.id, t.state) for t in first.tasks] == [(t.id, TaskState.ERROR) for t in tasks]
    assert all("a bug in Berth" in t.error for t in first.tasks)
    second = _tick(first.deployment, first.replicas, [], set(), 2)  # tasks are closed now
    assert not second.events and not second.errors and not second.changed
    late = _tick(second.deployment, second.replicas, [_task(TaskKind.RESTART, 3)], set(), 3)
    assert not late.events and not late.errors  # a task opened later still fails, silently
    assert [t.state for t in late.tasks] == [TaskState.ERROR]


def test_an_unplaceable_replica_carries_why_as_a_field() -> None:
    d = replace(deployment(1, resources={"gpus": 1}), status=D.PENDING)
    one_gpu = facts(gpus=(Gpu(0, "H100"),))

    def tick(d: Deployment, rows: list[Replica], in_use: frozenset[int],
             t: float) -> Reconciliation:
        return reconcile_deployment(d, rows, [], {}, {}, in_use, one_gpu, P, at(t),
                                    new_id=lambda: "x")

    rows = [replace(replica(d, "a", S.PENDING, ready=False), pid=None, port=None)]
    out = tick(d, rows, frozenset({0}), 1)
    (stuck,) = out.replicas
    assert stuck.unschedulable == "needs 1 GPU; 0 of 1 free" and not out.launch
    assert out.deployment.status_reason == "Unschedulable: needs 1 GPU; 0 of 1 free"
    assert [e.reason for e in out.events if e.kind == "Replica"] == ["Unschedulable"]
    again = tick(out.deployment, out.replicas, frozenset({0}), 2)
    assert not again.events  # noted once
    free = tick(again.deployment, again.replicas, frozenset(), 3)
    assert [r.unschedulable for r in free.launch] == [""] and free.launch[0].gpus == [0]
    assert (free.gpus_claimed, free.gpus_released) == ({0}, set())  # returned, not mutated


def test_new_replicas_are_named_by_the_id_source_given() -> None:
    d = replace(deployment(2), status=D.NEW)
    ids = iter(["a1", "b2"])
    out = reconcile_deployment(d, [], [], {}, {}, frozenset(), facts(), P, at(1),
                               new_id=lambda: next(ids))
    assert sorted(r.id for r in out.replicas) == ["echo-a1", "echo-b2"]
    assert out.inserted == {"echo-a1", "echo-b2"}


def test_a_stopped_replica_gives_its_gpus_back() -> None:
    d = replace(deployment(1, resources={"gpus": 1}, desired=DesiredState.STOPPED),
                status=D.ACTIVE)
    held = replace(replica(d, "a", S.BACKOFF, ready=False, failures=1,
                           failure=FailureKind.EXITED), gpus=[1], pid=None)
    out = reconcile_deployment(d, [held], [], {}, {}, frozenset({1}),
                               facts(gpus=(Gpu(0, "H100"), Gpu(1, "H100"))), P, at(1),
                               new_id=lambda: "x")
    assert out.deleted == ["a"] and out.gpus_released == {1} and not out.gpus_claimed


@pytest.mark.parametrize(("inflight", "kept"), [(1, True), (0, False)])
def test_a_replica_serving_the_first_request_from_zero_is_kept(inflight: int,
                                                               kept: bool) -> None:
    """min 0 and no autoscaler count: the gateways report the request in flight before they
    report it answered (last_request), so in-flight requests hold the replica up too."""
    from berth.controller.traffic import TrafficView
    d = deployment(0, containers=[{"region": "local", "scale": {"min": 0, "max": 2}}])
    r = replica(d, "echo-a")
    observed = {r.id: ProcessObservation(r.id, alive=True, pid=r.pid, port=r.port)}
    traffic = TrafficView(inflight={r.id: inflight})
    out = reconcile_deployment(d, [r], [], observed, {r.id: ProbeVerdict(started=True,
                                                                         ready=True)},
                               set(), facts(), P, at(1), traffic, new_id=lambda: "new",
                               scaled={"local": 0})
    assert (out.replicas[0].state == S.RUNNING) is kept
