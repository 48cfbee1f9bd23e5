"""reconcile_deployment: one deployment's whole decision for one tick. Pure.

Steps each replica's lifecycle, plans the rollout, places and prepares launches, rolls the
status up and settles tasks. The loop applies the result: rows, events, signals, launches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from berth.controller.lifecycle import Note, Signal, move, step_replica
from berth.controller.placement import gpu_request, place
from berth.controller.plan import UNSCHEDULABLE, desired_replicas, plan_deployment
from berth.controller.policy import Policy
from berth.controller.rollup import roll_up, task_outcome
from berth.controller.traffic import TrafficView
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Event, Replica, Task
from berth.domain.status import (
    DeploymentStatus,
    IllegalTransition,
    ReplicaState,
    TaskState,
    check_deployment_transition,
    check_task_transition,
)
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ProcessObservation

S = ReplicaState


def _routes(replicas: Iterable[Replica]) -> set[tuple[str, int | None]]:
    return {(r.id, r.port) for r in replicas if r.routable}


@dataclass
class Reconciliation:
    deployment: Deployment
    replicas: list[Replica]  # every row after this tick (saved or inserted)
    inserted: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)  # tasks whose state changed
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    launch: list[Replica] = field(default_factory=list)  # rows to start a process for
    gpus_claimed: set[int] = field(default_factory=set)  # given to replicas this tick
    gpus_released: set[int] = field(default_factory=set)  # held by replicas that stopped
    errors: list[str] = field(default_factory=list)  # bugs found: logged at ERROR
    changed: bool = False
    routing_changed: bool = False  # what gateways must route changed: bump the version


def reconcile_deployment(
    d: Deployment, rows: list[Replica], tasks: list[Task],
    observed: dict[str, ProcessObservation], verdicts: dict[str, ProbeVerdict],
    gpus_in_use: Set[int], facts: PlatformFacts, policy: Policy, now: datetime,
    traffic: TrafficView | None = None, *, new_id: Callable[[], str],
    scaled: Mapping[str, int] | None = None,
) -> Reconciliation:
    """`gpus_in_use` is only read: the GPUs this tick gives and frees come back in the
    result. `new_id` names new replicas (`<deployment>-<new_id()>`). `scaled` is the
    autoscaler's count per region."""
    before = {r.id: r for r in rows}
    original = d
    out = Reconciliation(deployment=replace(d), replicas=[])
    d = out.deployment

    def note(r: Replica, n: Note) -> None:
        out.events.append(Event(deployment_id=d.id, at=now, kind="Replica", reason=n.reason,
                                message=n.message, replica_id=r.id))

    traffic = traffic or TrafficView()
    seen = traffic.last_request.get(d.id)
    if seen is not None and (d.last_request_at is None
                             or seen - d.last_request_at.timestamp() >= 1.0):
        d.last_request_at = datetime.fromtimestamp(seen, UTC)
    current: dict[str, Replica] = {}
    for r in rows:
        keep = ProbeVerdict(started=r.state == S.RUNNING, ready=r.ready)
        step = step_replica(r, observed.get(r.id), verdicts.get(r.id, keep), policy, now,
                            released=traffic.released(r))
        for n in step.notes:
            note(r, n)
        if step.signal:
            out.signals.append((r.id, step.signal))
        if step.forget:
            out.forget.append(r.id)
        if step.delete:
            out.deleted.append(r.id)
        else:
            current[r.id] = step.replica

    inflight = sum(traffic.inflight.get(r.id, 0) for r in current.values())
    targets = desired_replicas(d, traffic.waiting.get(d.id, 0) + inflight, now, scaled)
    plan = plan_deployment(d, list(current.values()), targets, policy, now)
    if plan.halt:
        d.halted_template, d.halted_reason = d.template, plan.halt
        out.events.append(Event(deployment_id=d.id, at=now, kind="Rollout",
                                reason="RolloutHalted", message=plan.halt))
    grace = max(policy.drain_seconds, d.spec.timeouts.total)  # in-flight requests may finish
    for rid, why in plan.drain:
        r = current[rid]
        deadline = now + timedelta(seconds=grace)
        current[rid] = replace(move(r, S.DRAINING, f"draining: {why}", now), ready=False,
                               state_deadline=deadline)
        note(r, Note("Draining", why))
    for rid, why in plan.stop:
        r = current[rid]
        if r.state in (S.STARTING, S.RUNNING):
            deadline = now + timedelta(seconds=policy.stop_grace)
            current[rid] = replace(move(r, S.STOPPING, f"stopping: {why}", now), ready=False,
                                   state_deadline=deadline)
            out.signals.append((rid, Signal.TERM))
        else:
            current[rid] = move(r, S.STOPPED, f"stopped: {why}", now)
            out.forget.append(rid)
        note(r, Note("Stopping", why))
    for region in plan.create:
        rid = f"{d.name}-{new_id()}"
        r = Replica(id=rid, deployment_id=d.id, region=region, template=d.template,
                    generation=d.generation, state=S.PENDING, reason="created", since=now,
                    created_at=now)
        current[rid] = r
        out.inserted.add(rid)
        note(r, Note("Created", f"generation {d.generation} in region {region}"))
        plan.launch.append(rid)

    request = gpu_request(d.spec, facts)
    in_use = set(gpus_in_use)
    for rid in plan.launch:
        r = current[rid]
        gpus = r.gpus or place(request, facts.gpus, in_use)
        if isinstance(gpus, str):
            if r.unschedulable != gpus:
                current[rid] = replace(r, reason=f"{UNSCHEDULABLE}: {gpus}", unschedulable=gpus)
                note(r, Note(UNSCHEDULABLE, gpus))
            continue
        in_use.update(gpus)
        out.gpus_claimed.update(gpus)
        current[rid] = replace(r, gpus=list(gpus), unschedulable="")
        out.launch.append(current[rid])
    for r in current.values():
        if r.state == S.STOPPED:
            out.gpus_released.update(r.gpus)

    _settle(out, d, current, tasks, targets, policy, now)
    out.deleted += [r.id for r in current.values() if r.state == S.STOPPED]
    out.replicas = [r for r in current.values() if r.state != S.STOPPED]
    out.routing_changed = (_routes(before.values()) != _routes(out.replicas)
                           or (d.status == DeploymentStatus.DELETED) != (
                               original.status == DeploymentStatus.DELETED))
    out.changed = bool(
        out.deleted or out.inserted or out.events or out.tasks or d != original
        or any(before.get(r.id) != r for r in out.replicas))
    return out


def _settle(out: Reconciliation, d: Deployment, current: dict[str, Replica], tasks: list[Task],
            targets: dict[str, int], policy: Policy, now: datetime) -> None:
    remaining = [r for r in current.values() if r.state != S.STOPPED]
    rollup = roll_up(d, remaining, targets, policy)
    d.containers = rollup.containers
    steps = [*rollup.through, (rollup.status, rollup.reason)]
    try:
        for old, new in pairwise([d.status, *(status for status, _ in steps)]):
            check_deployment_transition(old, new)
    except IllegalTransition as exc:
        _refuse(out, d, tasks, rollup.status, rollup.reason, exc, now)
        return
    for status, reason in steps:
        if status != d.status:
            out.events.append(Event(deployment_id=d.id, at=now, kind="Status",
                                    reason=status.value, message=reason))
            d.status_since = now
        d.status, d.status_reason = status, reason
    if rollup.converged and d.observed_generation != d.generation:
        d.observed_generation = d.generation
        out.events.append(Event(deployment_id=d.id, at=now, kind="Rollout", reason="Converged",
                                message=f"generation {d.generation}: {rollup.reason}"))
    for task in tasks:
        outcome = task_outcome(task, d, rollup, policy, now)
        if (outcome.state, outcome.error, outcome.message) == (task.state, task.error,
                                                               task.message):
            continue
        check_task_transition(task.state, outcome.state)
        out.tasks.append(replace(task, state=outcome.state, error=outcome.error,
                                 message=outcome.message, updated_at=now))


def _refuse(out: Reconciliation, d: Deployment, tasks: list[Task], wanted: DeploymentStatus,
            why: str, exc: IllegalTransition, now: datetime) -> None:
    """The roll-up asked for a transition the table forbids: a bug, made loud. The status
    stays; its reason says so (which also remembers it, so the event and the error log are
    written once, not every tick); every open task of the deployment fails with it."""
    reason = f"{exc}: a bug in Berth; the status stays {d.status}"
    if d.status_reason != reason:
        detail = f"{reason} (the roll-up said {wanted}: {why})"
        out.errors.append(f"deployment {d.project}/{d.name}: {detail}")
        out.events.append(Event(deployment_id=d.id, at=now, kind="Status",
                                reason="IllegalTransition", message=detail))
        d.status_reason = reason
    for task in tasks:
        if task.state not in TaskState.done():
            check_task_transition(task.state, TaskState.ERROR)
            out.tasks.append(replace(task, state=TaskState.ERROR, error=reason, message="",
                                     updated_at=now))
