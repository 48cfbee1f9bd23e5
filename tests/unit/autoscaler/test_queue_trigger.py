"""The queue trigger (async invocations waiting or running per replica): timelines through
`decide`, and the triggers policy_for adds for an async deployment.

Unless a case says otherwise: min 0, max 4, triggers concurrency 2 and queue 5, cooldown 5 s,
polling 1 s, so the stable window is 5 s, the panic window 1 s; idle timeout 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from berth.autoscaler.decide import (
    IDLE,
    SCALED_DOWN,
    SCALED_TO_ZERO,
    SCALED_UP,
    Sample,
    ScaleState,
)
from berth.autoscaler.policy import (
    DEFAULT_CONCURRENCY_TARGET,
    DEFAULT_QUEUE_TARGET,
    ScalePolicy,
    Trigger,
    TriggerKind,
)
from tests.unit.autoscaler.test_policy import policy_of
from tests.unit.autoscaler.timeline import Step, drive, policy, table

K = TriggerKind
BOTH = (Trigger(K.CONCURRENCY, 2.0), Trigger(K.QUEUE, 5.0))


def qpolicy(**kw: Any) -> ScalePolicy:
    return policy(**{"min": 0, "max": 4, "triggers": BOTH, "idle_timeout": 10.0, **kw})


def q(start: int, stop: int, backlog: int, want: int, load: float | None = 0.0,
      **kw: Any) -> list[Step]:
    """One poll a second with `backlog` async requests pending (the queue source's sample and
    the cold-start count) and `load` in flight through the gateways."""
    return [Step(float(t), load, want, queued=backlog,
                 extra=(Sample(K.QUEUE, float(backlog), float(t)),), **kw)
            for t in range(start, stop + 1)]


@dataclass(frozen=True)
class Case:
    policy: ScalePolicy
    current: int
    steps: list[Step]
    state: ScaleState = field(default_factory=ScaleState)
    # (kind, before, after, metric or None: not checked), in order
    changes: list[tuple[str, int, int, str | None]] = field(default_factory=list)


AT_ZERO = ScaleState(desired=0, last_scale_at=-100.0)

CASES: dict[str, Case] = {
    # 20 requests arrive at zero replicas: a cold start, at once, to what the backlog asks
    # for (20 / 5 = 4), not just to 1. The dispatcher keeps 4 in flight while it drains.
    # When the queue is empty (t=6) the stable window still averages 16.7 waiting (4); at
    # t=7 13.3 (3); the cooldown holds 3 until t=12, when the window is all zeros: down to
    # 1 (the last request was at t=5, not idle yet); idle from t=15, and at t=17 (cooldown
    # after t=12) to zero.
    "backlog at zero replicas, drained, idle": Case(qpolicy(), 0, [
        *q(0, 0, 20, 4, panic=True),
        *q(1, 5, 20, 4, load=4),
        *q(6, 6, 0, 4),
        *q(7, 11, 0, 3),
        *q(12, 16, 0, 1),
        *q(17, 20, 0, 0),
    ], state=AT_ZERO, changes=[(SCALED_UP, 0, 4, "cold start"), (SCALED_DOWN, 4, 3, "queue"),
                               (SCALED_DOWN, 3, 1, None), (SCALED_TO_ZERO, 1, 0, IDLE)]),
    # A few requests at zero: a cold start to one replica.
    "small backlog at zero replicas": Case(qpolicy(), 0, [
        *q(0, 3, 3, 1, load=None),
    ], state=AT_ZERO, changes=[(SCALED_UP, 0, 1, "cold start")]),
    # One replica keeps up with 5 waiting (on target). The backlog jumps to 20: the panic
    # window (5 and 20: 12.5 -> 3) scales up at once, the next poll (20: 4) to the 4 the
    # backlog needs, and it holds there.
    "backlog grows on one replica": Case(qpolicy(), 1, [
        *q(0, 5, 5, 1, load=2),
        *q(6, 6, 20, 3, load=2, panic=True),
        *q(7, 15, 20, 4, load=2),
    ], state=ScaleState(desired=1, last_scale_at=-100.0),
        changes=[(SCALED_UP, 1, 3, "queue"), (SCALED_UP, 3, 4, "queue")]),
    # The backlog never exceeds max: 100 waiting still asks for 4.
    "capped at max": Case(qpolicy(), 0, [
        *q(0, 5, 100, 4),
    ], state=AT_ZERO),
    # The queue trigger alone (no concurrency), min 1: 10 waiting ask for 2 (panic, at
    # once). Drained at t=6, the window's average falls: 8.3 and 6.7 still ask for 2, 5.0 at
    # t=8 for 1, the min.
    "queue trigger alone, min 1": Case(qpolicy(min=1, triggers=(Trigger(K.QUEUE, 5.0),)), 1, [
        *q(0, 5, 10, 2),
        *q(6, 7, 0, 2),
        *q(8, 20, 0, 1),
    ], state=ScaleState(desired=1, last_scale_at=-100.0),
        changes=[(SCALED_UP, 1, 2, "queue"), (SCALED_DOWN, 2, 1, "queue")]),
    # Async only, never a sync request: the waiting work keeps the deployment busy (not
    # idle, however long since a request came), 8 / 5 -> 2 replicas. Drained at t=10, it is
    # idle at once; the queue's window lets the replicas go as its average falls (t=12:
    # 4 -> 1), and after the cooldown, at t=17, to zero.
    "async only, no sync request ever": Case(qpolicy(), 0, [
        *q(0, 9, 8, 2),
        *q(10, 11, 0, 2),
        *q(12, 16, 0, 1),
        *q(17, 20, 0, 0),
    ], state=AT_ZERO, changes=[(SCALED_UP, 0, 2, "cold start"), (SCALED_DOWN, 2, 1, "queue"),
                               (SCALED_TO_ZERO, 1, 0, IDLE)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_queue_timeline(name: str) -> None:
    case = CASES[name]
    run = drive(case.policy, case.steps, case.current, case.state)
    got = [d.desired for d in run.decisions]
    assert got == [s.want for s in case.steps], table(case.steps, run)
    for s, d in zip(case.steps, run.decisions, strict=True):
        if s.panic is not None:
            assert d.panic is s.panic, f"t={s.t:g}: panic {d.panic}\n{table(case.steps, run)}"
    if case.changes:
        changes = [d.change for d in run.decisions if d.change is not None]
        assert [(c.kind, c.before, c.after) for c in changes] == [
            (k, b, a) for k, b, a, _ in case.changes]
        for c, (_, _, _, metric) in zip(changes, case.changes, strict=True):
            assert metric is None or c.metric == metric, c


def test_the_queue_reading_is_the_backlog_against_its_target() -> None:
    run = drive(qpolicy(), q(0, 0, 20, 4), 0, AT_ZERO)
    d = run.decisions[0]
    r = d.metrics["queue"]
    assert (r.value, r.target, r.wants, r.status) == (20.0, 5.0, 4, "ok")
    assert any("cold start" in reason and "20 queued" in reason for reason in d.reasons)


def test_a_silent_queue_source_holds_nothing_up() -> None:
    """The queue samples stop (its reader broke) with 4 replicas up: once the last sample is
    older than the TTL the trigger is stale, and the idle deployment goes to zero."""
    steps = [*q(0, 5, 20, 4), *(Step(float(t), 0.0, 4) for t in range(6, 13)),  # TTL 7 s
             *(Step(float(t), 0.0, 0) for t in range(13, 16))]
    run = drive(qpolicy(), steps, 4, ScaleState(desired=4, last_scale_at=-100.0))
    assert [d.desired for d in run.decisions] == [s.want for s in steps], table(steps, run)
    assert run.decisions[-1].metrics["queue"].status == "stale"


# -- policy_for ----------------------------------------------------------------------------------

ASYNC_ON = {"async": {"enabled": True}}
DEFAULT_Q = Trigger(K.QUEUE, DEFAULT_QUEUE_TARGET)
DEFAULT_C = Trigger(K.CONCURRENCY, DEFAULT_CONCURRENCY_TARGET)

# (scale, spec fields) -> triggers
POLICIES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[Trigger, ...]]] = {
    "async on: default concurrency and queue": (
        {"min": 0, "max": 4}, ASYNC_ON, (DEFAULT_C, DEFAULT_Q)),
    "async on, per_worker: concurrency on it": (
        {"min": 0, "max": 4}, {**ASYNC_ON, "per_worker": 3}, (Trigger(K.CONCURRENCY, 3.0),
                                                              DEFAULT_Q)),
    "async on, triggers.queue: it wins, alone": (
        {"min": 0, "max": 4, "triggers": {"queue": {"target": 10}}}, ASYNC_ON,
        (Trigger(K.QUEUE, 10.0),)),
    "async on, triggers.concurrency: with the default queue": (
        {"min": 1, "max": 4, "triggers": {"concurrency": {"target": 4}}}, ASYNC_ON,
        (Trigger(K.CONCURRENCY, 4.0), DEFAULT_Q)),
    "async on, cpu: with the default queue": (
        {"min": 1, "max": 4, "triggers": {"cpu": {"threshold": 70}}}, ASYNC_ON,
        (Trigger(K.CPU, 70.0), DEFAULT_Q)),
    "async on, both named": (
        {"min": 0, "max": 4, "triggers": {"concurrency": {"target": 4},
                                          "queue": {"target": 2}}}, ASYNC_ON,
        (Trigger(K.CONCURRENCY, 4.0), Trigger(K.QUEUE, 2.0))),
    "async on, fixed count: no trigger": ({"min": 2, "max": 2}, ASYNC_ON, ()),
    "async off: no queue trigger": ({"min": 0, "max": 4}, {}, (DEFAULT_C,)),
    "async disabled explicitly: no queue trigger": (
        {"min": 0, "max": 4}, {"async": {"enabled": False}}, (DEFAULT_C,)),
    "async off, triggers.queue named: kept": (
        {"min": 0, "max": 4, "triggers": {"queue": {"target": 3}}}, {},
        (Trigger(K.QUEUE, 3.0),)),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_for_queue_triggers(name: str) -> None:
    scale, spec, want = POLICIES[name]
    assert policy_of(scale, **spec).triggers == want


def test_the_queue_trigger_reads_its_own_source() -> None:
    assert (DEFAULT_Q.key, DEFAULT_Q.source) == ("queue", "queue")
    assert K.QUEUE not in K.request_driven() | K.resource()  # waiting work is never idle
