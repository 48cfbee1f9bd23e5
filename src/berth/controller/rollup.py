"""Deployment status from its replicas, and each open task's outcome. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from berth.controller.lifecycle import unrunnable
from berth.controller.plan import UNSCHEDULABLE, crash_looping, restart_requested
from berth.controller.policy import Policy
from berth.domain.records import ContainerStatus, Deployment, Replica, Task
from berth.domain.status import DeploymentStatus, DesiredState, ReplicaState, TaskKind, TaskState

S = ReplicaState
D = DeploymentStatus


@dataclass(frozen=True)
class Rollup:
    status: DeploymentStatus
    reason: str
    containers: list[ContainerStatus]
    converged: bool  # the desired state of this generation is fully reached
    # Statuses (with reasons) passed on the way to `status` in the same tick, in order.
    through: tuple[tuple[DeploymentStatus, str], ...] = ()


def roll_up(d: Deployment, replicas: list[Replica], targets: dict[str, int],
            policy: Policy) -> Rollup:
    live = [r for r in replicas if r.state in S.live()]
    ready = [r for r in live if r.ready]
    template = d.template
    current = [r for r in live if r.template == template]
    old = [r for r in live if r.template != template]
    restarting = [r for r in current if restart_requested(r)]
    current = [r for r in current if not restart_requested(r)]
    halted = d.halted_template == template and d.desired == DesiredState.RUNNING
    looping = None if old and any(r.ready for r in old) else crash_looping(current, policy)
    region_error = d.halted_reason if halted else (
        f"replica {looping.id}: {looping.last_error}" if looping else "")
    containers = [
        ContainerStatus(region=c.region,
                        ready=sum(r.region == c.region for r in ready),
                        total=sum(r.region == c.region for r in live),
                        error=region_error)
        for c in d.spec.containers
    ]
    if d.desired == DesiredState.DELETED:
        if replicas:
            return Rollup(D.DELETING, f"stopping {len(replicas)} replicas", containers, False)
        gate = () if d.status in (D.DELETING, D.DELETED) else (
            (D.DELETING, "deleting: no replicas left to stop"),)
        return Rollup(D.DELETED, "deleted", containers, True, through=gate)
    if d.desired == DesiredState.STOPPED:
        if replicas:
            return Rollup(D.DISABLED, f"stopping {len(replicas)} replicas", containers, False)
        return Rollup(D.DISABLED, "stopped", containers, True)
    target = sum(targets.values())
    converged = (not old and not restarting and len(current) == target
                 and all(r.ready for r in current) and len(replicas) == len(live))
    if looping is not None:
        status = D.FAILED if unrunnable(looping) else D.ERROR
        kind = "image not runnable" if status == D.FAILED else "crash loop"
        return Rollup(status, f"{kind}: replica {looping.id} {looping.last_error} "
                      f"({looping.restarts} restarts)", containers, False)
    n_ready = len(ready)
    if target == 0 and not live:
        return Rollup(D.ACTIVE, "scaled to zero", containers, converged)
    if halted:
        status = D.ACTIVE if n_ready >= target else D.PARTIALLYDEPLOYED
        return Rollup(status, d.halted_reason, containers, False)
    if n_ready == 0:
        pending = [r for r in live if r.state == S.PENDING]
        if not live or len(pending) == len(live):
            why = next((f"{UNSCHEDULABLE}: {r.unschedulable}" for r in pending
                        if r.unschedulable), "waiting to start replicas")
            return Rollup(D.PENDING, why, containers, False)
        return Rollup(D.DEPLOYING, f"starting: 0/{target} replicas ready", containers, False)
    if old:
        new_ready = sum(r.ready for r in current)
        return Rollup(D.DEPLOYING, f"rolling out generation {d.generation}: "
                      f"{new_ready}/{target} new replicas ready", containers, False)
    if restarting:
        replaced = ", ".join(r.id for r in restarting)
        return Rollup(D.ACTIVE if n_ready >= target else D.PARTIALLYDEPLOYED,
                      f"replacing replica {replaced}: {sum(r.ready for r in current)}/{target} "
                      "replicas ready", containers, False)
    if n_ready >= target:
        return Rollup(D.ACTIVE, f"{n_ready}/{target} replicas ready", containers, converged)
    return Rollup(D.PARTIALLYDEPLOYED, f"{n_ready}/{target} replicas ready", containers, False)


@dataclass(frozen=True)
class Outcome:
    state: TaskState
    error: str = ""
    message: str = ""


def task_outcome(task: Task, d: Deployment, rollup: Rollup, policy: Policy,
                 now: datetime) -> Outcome:
    if d.generation > task.generation:
        return Outcome(TaskState.FINISHED, message=f"superseded by generation {d.generation}")
    if rollup.converged:
        return Outcome(TaskState.FINISHED, message=rollup.reason)
    if task.kind != TaskKind.DELETE and d.desired == DesiredState.RUNNING:
        if d.halted_template == d.template:
            return Outcome(TaskState.ERROR, error=d.halted_reason)
        if rollup.status in D.broken():
            return Outcome(TaskState.ERROR, error=rollup.reason)
    if (now - task.created_at).total_seconds() > policy.progress_deadline:
        return Outcome(TaskState.ERROR, error=f"not done within {policy.progress_deadline:g}s: "
                       f"{rollup.status} ({rollup.reason})")
    return Outcome(TaskState.RUNNING, message=rollup.reason)
