"""Deployment status from its replicas, and each open task's outcome. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from berth.controller.lifecycle import unrunnable
from berth.controller.plan import UNSCHEDULABLE, crash_looping, restart_requested
from berth.controller.policy import Policy
from berth.domain.records import ContainerStatus, Deployment, Replica, Task
from berth.domain.status import (
    DeploymentStatus,
    DesiredState,
    FailureKind,
    ReplicaState,
    TaskKind,
    TaskState,
)

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
    rule: str = ""  # the name of the precedence rule that decided


@dataclass(frozen=True)
class Facts:
    """What the precedence rules read: one deployment's replicas, sorted once."""

    d: Deployment
    replicas: list[Replica]  # every row not yet STOPPED, leaving ones included
    live: list[Replica]
    ready: list[Replica]
    current: list[Replica]  # live, of the current template, not asked to restart
    old: list[Replica]  # live, of an older template
    restarting: list[Replica]  # live, current template, asked to be replaced
    halted: bool  # the rollout of the current template was halted
    looping: Replica | None  # a current replica crash-looping (none while old ones serve)
    target: int

    @property
    def enough(self) -> bool:
        return len(self.ready) >= self.target

    @property
    def converged(self) -> bool:
        if self.d.desired != DesiredState.RUNNING:
            return not self.replicas
        return (not self.old and not self.restarting and len(self.current) == self.target
                and all(r.ready for r in self.current) and len(self.replicas) == len(self.live))


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[Facts], bool]
    status: Callable[[Facts], DeploymentStatus]
    reason: Callable[[Facts], str]
    may_converge: bool = False  # the status it gives can mean "done" (see Facts.converged)


def _always(status: DeploymentStatus) -> Callable[[Facts], DeploymentStatus]:
    return lambda _f: status


def _active_if_enough(f: Facts) -> DeploymentStatus:
    return D.ACTIVE if f.enough else D.PARTIALLYDEPLOYED


def _waiting(f: Facts) -> bool:
    return not f.ready and all(r.state == S.PENDING for r in f.live)


def _waiting_reason(f: Facts) -> str:
    pulling = next((r.pulling for r in f.live if r.state == S.PENDING and r.pulling), "")
    if pulling:
        return f"pulling image {pulling}"
    return next((f"{UNSCHEDULABLE}: {r.unschedulable}" for r in f.live
                 if r.state == S.PENDING and r.unschedulable), "waiting to start replicas")


def _looping_status(f: Facts) -> DeploymentStatus:
    assert f.looping is not None
    return D.FAILED if unrunnable(f.looping) else D.ERROR


def _looping_reason(f: Facts) -> str:
    r = f.looping
    assert r is not None
    kind = ("image unavailable" if r.failure == FailureKind.PULL_FAILED
            else "image not runnable" if unrunnable(r) else "crash loop")
    return f"{kind}: replica {r.id} {r.last_error} ({r.restarts} restarts)"


def _deleted(f: Facts) -> bool:
    return f.d.desired == DesiredState.DELETED


def _stopped(f: Facts) -> bool:
    return f.d.desired == DesiredState.STOPPED


# The precedence: the first rule that applies decides. Checked against
# DEPLOYMENT_TRANSITIONS for every combination it can see (tests/unit/controller).
RULES: tuple[Rule, ...] = (
    Rule("deleting", lambda f: _deleted(f) and bool(f.replicas), _always(D.DELETING),
         lambda f: f"stopping {len(f.replicas)} replicas"),
    Rule("deleted", _deleted, _always(D.DELETED), lambda _f: "deleted", may_converge=True),
    Rule("stopping", lambda f: _stopped(f) and bool(f.replicas), _always(D.DISABLED),
         lambda f: f"stopping {len(f.replicas)} replicas"),
    Rule("stopped", _stopped, _always(D.DISABLED), lambda _f: "stopped", may_converge=True),
    Rule("crash loop", lambda f: f.looping is not None, _looping_status, _looping_reason),
    Rule("scaled to zero", lambda f: f.target == 0 and not f.live, _always(D.ACTIVE),
         lambda _f: "scaled to zero", may_converge=True),
    Rule("rollout halted", lambda f: f.halted, _active_if_enough,
         lambda f: f.d.halted_reason),
    Rule("waiting", _waiting, _always(D.PENDING), _waiting_reason),
    Rule("starting", lambda f: not f.ready, _always(D.DEPLOYING),
         lambda f: f"starting: 0/{f.target} replicas ready"),
    Rule("rolling out", lambda f: bool(f.old), _always(D.DEPLOYING),
         lambda f: f"rolling out generation {f.d.generation}: "
                   f"{sum(r.ready for r in f.current)}/{f.target} new replicas ready"),
    Rule("replacing", lambda f: bool(f.restarting), _active_if_enough,
         lambda f: f"replacing replica {', '.join(r.id for r in f.restarting)}: "
                   f"{sum(r.ready for r in f.current)}/{f.target} replicas ready"),
    Rule("ready", lambda f: f.enough, _always(D.ACTIVE),
         lambda f: f"{len(f.ready)}/{f.target} replicas ready", may_converge=True),
    Rule("partly ready", lambda _f: True, _always(D.PARTIALLYDEPLOYED),
         lambda f: f"{len(f.ready)}/{f.target} replicas ready"),
)
# DELETED is entered only through DELETING (the one gate), in the same tick if need be.
_GATE = (D.DELETING, "deleting: no replicas left to stop")


def facts_of(d: Deployment, replicas: list[Replica], targets: dict[str, int],
             policy: Policy) -> Facts:
    live = [r for r in replicas if r.state in S.live()]
    template = d.template
    current = [r for r in live if r.template == template]
    old = [r for r in live if r.template != template]
    restarting = [r for r in current if restart_requested(r)]
    current = [r for r in current if not restart_requested(r)]
    looping = None if old and any(r.ready for r in old) else crash_looping(current, policy)
    return Facts(d=d, replicas=replicas, live=live, ready=[r for r in live if r.ready],
                 current=current, old=old, restarting=restarting,
                 halted=d.halted_template == template and d.desired == DesiredState.RUNNING,
                 looping=looping, target=sum(targets.values()))


def roll_up(d: Deployment, replicas: list[Replica], targets: dict[str, int],
            policy: Policy) -> Rollup:
    f = facts_of(d, replicas, targets, policy)
    region_error = d.halted_reason if f.halted else (
        f"replica {f.looping.id}: {f.looping.last_error}" if f.looping else "")
    containers = [
        ContainerStatus(region=c.region,
                        ready=sum(r.region == c.region for r in f.ready),
                        total=sum(r.region == c.region for r in f.live),
                        error=region_error)
        for c in d.spec.containers
    ]
    rule = next(r for r in RULES if r.applies(f))
    status = rule.status(f)
    through = (_GATE,) if status == D.DELETED and d.status not in (D.DELETING, D.DELETED) else ()
    return Rollup(status, rule.reason(f), containers, rule.may_converge and f.converged,
                  through, rule.name)


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
