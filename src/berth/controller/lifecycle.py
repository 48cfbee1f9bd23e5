"""One replica's lifecycle step: from its row and what was observed, its next row."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from berth.controller.policy import Policy
from berth.domain.records import Replica
from berth.domain.status import FailureKind, ReplicaState, check_replica_transition
from berth.domain.units import format_size
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ProcessObservation

S = ReplicaState


class Signal(StrEnum):
    TERM = "TERM"
    KILL = "KILL"


@dataclass(frozen=True)
class Note:
    """An event to record: what happened to a replica and why."""

    reason: str
    message: str


@dataclass
class Step:
    replica: Replica
    signal: Signal | None = None
    forget: bool = False  # release the runtime's record (and any leftover processes)
    delete: bool = False  # remove the row
    notes: list[Note] = field(default_factory=list)


def move(r: Replica, state: ReplicaState, reason: str, now: datetime) -> Replica:
    check_replica_transition(r.state, state)
    return replace(r, state=state, reason=reason, since=now if state != r.state else r.since)


def crash(r: Replica, failure: FailureKind, error: str, code: int | None, policy: Policy,
          now: datetime) -> Replica:
    stable = r.started_at is not None and (now - r.started_at).total_seconds() >= policy.stable_run
    failures = 1 if stable else r.failures + 1
    delay = policy.backoff(failures)
    out = move(r, S.BACKOFF, f"{error}; restarting in {delay:g}s", now)
    return replace(out, ready=False, failures=failures, restarts=r.restarts + 1, exit_code=code,
                   last_error=error, failure=failure,
                   next_start_at=now + timedelta(seconds=delay), pid=None)


def unrunnable(r: Replica) -> bool:
    """The runtime could not execute the command, or get the image, at all (as opposed to
    it crashing)."""
    return r.failure in (FailureKind.NOT_EXECUTABLE, FailureKind.PULL_FAILED)


def step_replica(r: Replica, proc: ProcessObservation | None, probe: ProbeVerdict,
                 policy: Policy, now: datetime, released: bool = True) -> Step:
    """`released`: no gateway routes to the replica or has a request on it (for DRAINING)."""
    if r.state in (S.STARTING, S.RUNNING):
        return _step_running(r, proc, probe, policy, now)
    alive = proc is not None and proc.alive
    if r.state == S.DRAINING:
        if not alive:
            return Step(move(r, S.STOPPED, "exited while draining", now), forget=True,
                        notes=[Note("Stopped", "exited while draining")])
        drained = released and (now - r.since).total_seconds() >= policy.drain_seconds
        if drained or r.state_deadline is None or now >= r.state_deadline:
            deadline = now + timedelta(seconds=policy.stop_grace)
            out = move(r, S.STOPPING, "drained; SIGTERM sent", now)
            out = replace(out, state_deadline=deadline)
            return Step(out, signal=Signal.TERM, notes=[Note("Stopping", "drained; SIGTERM sent")])
    elif r.state == S.STOPPING:
        if not alive:
            return Step(move(r, S.STOPPED, "stopped", now), forget=True,
                        notes=[Note("Stopped", "process exited")])
        if r.state_deadline is not None and now >= r.state_deadline:
            out = replace(r, reason="grace period over; SIGKILL sent", kill_sent=True)
            return Step(out, signal=Signal.KILL,
                        notes=[] if r.kill_sent else [Note("Killed", out.reason)])
    elif r.state == S.STOPPED:
        return Step(r, delete=True)
    return Step(r)


def _step_running(r: Replica, proc: ProcessObservation | None, probe: ProbeVerdict,
                  policy: Policy, now: datetime) -> Step:
    if proc is None or not proc.alive:
        code = proc.exit_code if proc is not None else None
        if proc is not None and proc.oom_killed:
            limit = (f" of {format_size(proc.memory_limit_bytes)}"
                     if proc.memory_limit_bytes else "")
            out = crash(r, FailureKind.EXITED, f"OOMKilled: over its memory limit{limit}",
                        code, policy, now)
            return Step(out, forget=True, notes=[Note("OOMKilled", out.reason)])
        if proc is not None and proc.error:  # the runtime could not execute the command
            failure, error = FailureKind.NOT_EXECUTABLE, proc.error
        elif code is not None:
            failure, error = FailureKind.EXITED, f"exited with code {code}"
        else:
            failure, error = FailureKind.LOST, "process lost"
        out = crash(r, failure, error, code, policy, now)
        return Step(out, forget=True, notes=[Note("Exited", out.reason)])
    if probe.startup_failed or probe.liveness_failed:
        out = crash(r, FailureKind.UNHEALTHY, probe.message, None, policy, now)
        return Step(out, signal=Signal.KILL, forget=True, notes=[Note("Unhealthy", out.reason)])
    out, notes = r, []
    if r.state == S.STARTING and probe.started:
        out = move(out, S.RUNNING, "started", now)
        notes.append(Note("Started", "startup complete"))
    ready = out.state == S.RUNNING and probe.ready
    if ready != out.ready:
        out = replace(out, ready=ready, ready_at=now if ready else out.ready_at,
                      reason="ready" if ready else f"not ready: {probe.message}".rstrip(": "))
        notes.append(Note("Ready" if ready else "NotReady", out.reason))
    if (out.failures and out.ready and out.started_at is not None
            and (now - out.started_at).total_seconds() >= policy.stable_run):
        out = replace(out, failures=0)
    return Step(out, notes=notes)
