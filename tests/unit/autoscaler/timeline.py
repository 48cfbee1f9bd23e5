"""Drive `decide` over a timeline the way the autoscaler loop does: each poll's decision
state is fed back, and the controller is assumed to have started the last desired count
(unless a step says the controller lags)."""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass, field
from typing import Any

from berth.autoscaler.decide import Decision, Observed, Sample, ScaleState, decide
from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind

K = TriggerKind


@dataclass(frozen=True)
class Step:
    t: float
    load: float | None  # the concurrency total (in flight + waiting) at t; None: no sample
    want: int  # desired replicas after this poll
    ready: int | None = None  # ready replicas (default: all of `current`)
    waiting: int = 0
    queued: int = 0
    current: int | None = None  # replicas the controller has (default: the last desired)
    sample_at: float | None = None  # when the source measured the load (default: t)
    extra: tuple[Sample, ...] = ()  # other triggers' samples
    unavailable: dict[str, str] = field(default_factory=dict)
    panic: bool | None = None  # the decision's panic flag, when the case checks it


def span(start: int, stop: int, load: float | None, want: int, **kw: Any) -> list[Step]:
    """One step per second from start to stop, both included."""
    return [Step(float(t), load, want, **kw) for t in range(start, stop + 1)]


def policy(min: int = 1, max: int = 4, target: float = 2.0, cooldown: float = 5,
           polling: float = 1, **kw: Any) -> ScalePolicy:
    """A policy shaped like policy_for's: stable window = cooldown (at least two polls)."""
    stable = kw.pop("stable_window", None) or builtins.max(cooldown, 2 * polling)
    args: dict[str, Any] = {
        "triggers": (Trigger(K.CONCURRENCY, target),), "cooldown": cooldown,
        "polling_interval": polling, "stable_window": stable,
        "panic_window": builtins.min(stable, builtins.max(stable / 10, polling)),
        "idle_timeout": 120.0,
        "metric_ttl": 2 * polling + 5, **kw}
    return ScalePolicy(min=min, max=max, **args)



@dataclass
class Run:
    decisions: list[Decision]
    befores: list[int]  # the count before each poll


def drive(p: ScalePolicy, steps: list[Step], current: int,
          state: ScaleState | None = None, last_request_at: float | None = None) -> Run:
    state = state or ScaleState()
    out = Run([], [])
    desired = current
    for s in steps:
        load = s.load or 0.0
        if load > 0 or s.waiting:
            last_request_at = s.t
        cur = desired if s.current is None else s.current
        samples = list(s.extra)
        if s.load is not None:
            samples.append(Sample(K.CONCURRENCY, s.load,
                                  s.t if s.sample_at is None else s.sample_at))
        obs = Observed(current=cur, ready=cur if s.ready is None else s.ready,
                       inflight=max(math.ceil(load) - s.waiting, 0), waiting=s.waiting,
                       queued=s.queued, last_request_at=last_request_at,
                       samples=tuple(samples), unavailable=s.unavailable)
        d = decide(p, obs, state, s.t)
        out.befores.append(desired)
        out.decisions.append(d)
        state, desired = d.state, d.desired
    return out


def table(steps: list[Step], run: Run) -> str:
    return "\n".join(f"t={s.t:g} load={s.load} want={s.want} got={d.desired} "
                     f"panic={d.panic} reasons={list(d.reasons)}"
                     for s, d in zip(steps, run.decisions, strict=True))
