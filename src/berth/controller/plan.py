"""The rollout plan: which replicas to create, launch, drain and stop. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from berth.controller.lifecycle import unrunnable
from berth.controller.policy import Policy
from berth.domain.records import Deployment, Replica
from berth.domain.status import DesiredState, ReplicaState

S = ReplicaState
UNSCHEDULABLE = "Unschedulable"
RESTART_REASON = "restart requested"


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)  # regions, one entry per new replica
    launch: list[str] = field(default_factory=list)  # replica ids to (re)start now
    drain: list[tuple[str, str]] = field(default_factory=list)  # (replica id, why)
    stop: list[tuple[str, str]] = field(default_factory=list)  # not serving: stop at once
    halt: str = ""  # the rollout of the current template must stop, and why


def desired_replicas(d: Deployment, waiting: int, now: datetime,
                     scaled: Mapping[str, int] | None = None) -> dict[str, int]:
    """Replicas wanted per region: the autoscaler's count (`scaled`, per region; where it
    has not decided yet, the minimum) within the spec's bounds, and at least one while
    requests wait or are in flight (`waiting` counts both) or came within the idle
    `timeout`: a request where none runs starts one at once, without waiting for the
    autoscaler's next poll, and the replica serving it is not taken away before the
    gateways have reported the request."""
    idle = d.spec.timeout or 0
    recent = d.last_request_at is not None and (now - d.last_request_at).total_seconds() < idle
    out: dict[str, int] = {}
    for c in d.spec.containers:
        s = c.scale
        decided = (scaled or {}).get(c.region)
        n = s.min if decided is None else decided
        if waiting > 0 or recent:
            n = max(n, 1)
        out[c.region] = min(max(n, s.min), s.max)
    return out


def crash_looping(replicas: list[Replica], policy: Policy) -> Replica | None:
    """A replica failing over and over; a command that cannot run at all fails at once."""
    return next((r for r in replicas if r.failures >= policy.crash_loop_threshold
                 or (r.failures and unrunnable(r))), None)


def plan_deployment(d: Deployment, replicas: list[Replica], targets: dict[str, int],
                    policy: Policy, now: datetime) -> Plan:
    plan = Plan()
    live = [r for r in replicas if r.state in S.live()]
    if d.desired != DesiredState.RUNNING:
        why = "deployment stopped" if d.desired == DesiredState.STOPPED else "deployment deleted"
        for r in live:
            (plan.drain if r.ready else plan.stop).append((r.id, why))
        return plan
    template = d.template
    current = [r for r in live if r.template == template]
    old = [r for r in live if r.template != template]
    old_ready = [r for r in old if r.ready]
    halted = d.halted_template == template
    if not halted and old_ready:
        looping = crash_looping(current, policy)
        overdue = (now - d.updated_at).total_seconds() > policy.progress_deadline
        if looping is not None:
            plan.halt = (f"rollout of generation {d.generation} halted: replica {looping.id} "
                         f"{looping.last_error} ({looping.restarts} restarts)")
        elif overdue and current and not all(r.ready for r in current):
            plan.halt = (f"rollout of generation {d.generation} halted: not ready within "
                         f"{policy.progress_deadline:g}s")
        halted = bool(plan.halt)
    if halted:
        plan.stop += [(r.id, "rollout halted") for r in current]
        plan.launch += [r.id for r in old if _due(r, now)]
        return plan
    for region in sorted({c.region for c in d.spec.containers} | {r.region for r in live}):
        _plan_region(plan, region, targets.get(region, 0),
                     [r for r in current if r.region == region],
                     [r for r in old if r.region == region], now)
    return plan


def restart_requested(r: Replica) -> bool:
    """Asked to be replaced on its own: it retires like an old-template replica."""
    return r.restart_requested_at is not None


def _plan_region(plan: Plan, region: str, target: int, current: list[Replica],
                 old: list[Replica], now: datetime) -> None:
    restarting = [r for r in current if restart_requested(r)]
    current = [r for r in current if not restart_requested(r)]
    if len(current) < target:
        plan.create += [region] * (target - len(current))
    elif len(current) > target:
        # Prefer removing replicas that serve nothing, then the newest.
        newest_first = sorted(current, key=lambda r: r.created_at, reverse=True)
        order = sorted(newest_first, key=lambda r: (r.ready, r.state == S.RUNNING))
        extra = order[: len(current) - target]
        for r in extra:
            (plan.drain if r.ready else plan.stop).append((r.id, "scaled down"))
        current = [r for r in current if r not in extra]
    plan.launch += [r.id for r in current if _due(r, now)]
    # Retire the old template, and replicas asked to restart, without ever dropping below
    # the ready count we need: their replacements surge first.
    leaving = ([(r, "replaced by a new generation") for r in old]
               + [(r, RESTART_REASON) for r in restarting])
    plan.stop += [(r.id, why) for r, why in leaving if not r.ready]
    leaving_ready = sorted(((r, why) for r, why in leaving if r.ready),
                           key=lambda item: item[0].created_at)
    ready_total = sum(r.ready for r in current) + len(leaving_ready)
    excess = ready_total - target
    if not leaving_ready:
        return
    if excess > 0:
        plan.drain += [(r.id, why) for r, why in leaving_ready[:excess]]
        return
    stuck = any(r.state == S.PENDING and r.unschedulable for r in current)
    starting = any(r.state in (S.STARTING, S.BACKOFF) or (r.state == S.RUNNING and not r.ready)
                   for r in current)
    if stuck and not starting:
        # No capacity to surge (e.g. every GPU is taken): free one leaving replica's place.
        plan.drain.append((leaving_ready[0][0].id, "making room for its replacement"))


def _due(r: Replica, now: datetime) -> bool:
    if r.state == S.PENDING:
        return True
    return r.state == S.BACKOFF and (r.next_start_at is None or r.next_start_at <= now)
