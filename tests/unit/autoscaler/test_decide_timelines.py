"""`decide` as tables of timelines: (t, load) -> expected replicas after each poll.

Unless a case says otherwise: concurrency target 2, min 1, max 4, cooldown 5 s, polling 1 s,
so the stable window is 5 s, the panic window 1 s and the metric TTL 7 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from berth.autoscaler.decide import SCALED_DOWN, SCALED_TO_ZERO, SCALED_UP, Sample, ScaleState
from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind
from tests.unit.autoscaler.timeline import Step, drive, policy, span, table

K = TriggerKind


@dataclass(frozen=True)
class Case:
    policy: ScalePolicy
    current: int  # replicas at the first poll
    steps: list[Step]
    state: ScaleState = field(default_factory=ScaleState)
    last_request_at: float | None = None


CASES: dict[str, Case] = {
    # 4 replicas, the load halves to 4 in flight (1 per replica, half the target): outside
    # the 10% band, so once the window is full (t=5) the count is what the load needs, 2 --
    # not a band above it -- and holds there (4 / 2 = 2 per replica: on target).
    "half the load": Case(policy(), 4, [
        *span(0, 4, 4, 4),
        *span(5, 30, 4, 2),
    ], state=ScaleState(desired=4, last_scale_at=-100.0)),
    # 0 -> 8 clients at target 2 with one replica: the panic window asks for 4 at once.
    "burst": Case(policy(), 1, [
        *span(0, 0, 8, 4, panic=True),
        *span(1, 3, 8, 4),
    ]),
    # Three replicas stay not ready for 15 polls while the 8 clients wait: load is counted
    # at the gateways (in flight + waiting), so the starting replicas are capacity on the
    # way and the count stays ceil(8 / 2) = 4 (Knative #13284 over-scaled here).
    "slow start during panic": Case(policy(max=10), 1, [
        Step(0, 8, 4, ready=1, panic=True),
        *span(1, 15, 8, 4, ready=1, waiting=6),
        *span(16, 25, 8, 4, ready=4),
    ]),
    # 16 clients keep the panic condition (8 wanted >= 2 x 4) until t=3; the load stops at
    # t=4. The cooldown would allow a scale-down at t=5, but panic holds until a full stable
    # window after t=3; then the stable average (16 + 0 x 5) / 6 asks for 2, and after the
    # next cooldown the floor of 1.
    "exiting panic": Case(policy(), 1, [
        *span(0, 3, 16, 4, panic=True),
        *span(4, 7, 0, 4, panic=True),
        *span(8, 12, 0, 2, panic=False),
        *span(13, 20, 0, 1, panic=False),
    ]),
    # 4 +- 0.3 in flight at target 2 with 2 replicas: inside the tolerance band, no change.
    "jitter around the target": Case(policy(), 2, [
        Step(float(t), 3.7 if t % 2 else 4.3, 2) for t in range(40)
    ]),
    # A load of 6 holds 3 replicas; the source goes silent after t=10. Its last sample
    # counts until it is older than the TTL (7 s, past the 5 s window), then the trigger is
    # stale, holds nothing up, and the count goes to min (cooldown and window long past).
    "stale metric source": Case(policy(), 1, [
        *span(0, 10, 6, 3),
        *span(11, 17, None, 3),
        *span(18, 25, None, 1),
    ]),
    # A sample that arrives already older than the TTL is dropped: no scale-up on it.
    "sample older than the ttl on arrival": Case(policy(), 1, [
        Step(0, 8, 1, sample_at=-10),
        Step(1, 8, 4, panic=True),
    ]),
    # After a restart: desired and last_scale_at restored, no history. The low load asks
    # for 1, but only after a full stable window of new history.
    "restart with no history": Case(policy(), 3, [
        *span(100, 104, 1, 3),
        *span(105, 110, 1, 1),
    ], state=ScaleState(desired=3, last_scale_at=0.0)),
    # Restored inside the cooldown: the cooldown holds across the restart too.
    "restart inside the cooldown": Case(policy(cooldown=20, stable_window=5), 3, [
        *span(100, 109, 1, 3),
        *span(110, 112, 1, 1),
    ], state=ScaleState(desired=3, last_scale_at=90.0)),
    # The controller has not yet started two of the 4 decided replicas (a rollout, a
    # replica being replaced): the decision holds its own count, it does not follow them
    # down (the load of 8 needs the 4).
    "controller behind the decided count": Case(policy(), 4, [
        *span(0, 9, 8, 4),
        Step(10, 8, 4, current=2),
        Step(11, 8, 4, current=0),
        Step(12, 8, 4, current=0, waiting=2),  # not a cold start: 4 are on the way
        *span(13, 16, 8, 4),
    ], state=ScaleState(desired=4, last_scale_at=-100.0)),
    # min 0, idle timeout 10: the last request is at t=4; at t=14 it goes to zero.
    "scale to zero after the timeout": Case(policy(min=0, max=3, idle_timeout=10), 1, [
        *span(0, 4, 1, 1),
        *span(5, 13, 0, 1),
        *span(14, 20, 0, 0),
    ]),
    # The same with min 1: never below 1.
    "min 1 never goes to zero": Case(policy(min=1, max=3, idle_timeout=10), 1, [
        *span(0, 4, 1, 1),
        *span(5, 40, 0, 1),
    ]),
    # 0 replicas, 3 requests waiting, scaled a second ago (inside the cooldown) and with a
    # scale-up delay: up at once, to what the waiting requests ask for.
    "cold start": Case(policy(min=0, scale_up_delay=30), 0, [
        Step(10, 3, 2, waiting=3),
        Step(11, 3, 2, waiting=3),
    ], state=ScaleState(desired=0, last_scale_at=9.0)),
    # Queued async work at zero starts one replica at once too.
    "cold start on queued work": Case(policy(min=0), 0, [
        Step(10, 0, 1, queued=2),
    ], state=ScaleState(desired=0, last_scale_at=9.0), last_request_at=None),
    # min == max: the count is fixed whatever the load.
    "fixed count": Case(policy(min=2, max=2, triggers=()), 2, [
        *span(0, 5, 20, 2),
        *span(6, 200, 0, 2),
    ]),
    # scale_up_delay 3: the load must ask for more for 3 s before the count goes up.
    "scale-up delay": Case(policy(scale_up_delay=3), 1, [
        *span(0, 2, 4, 1),
        *span(3, 6, 4, 2),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_timeline(name: str) -> None:
    case = CASES[name]
    run = drive(case.policy, case.steps, case.current, case.state, case.last_request_at)
    got = [d.desired for d in run.decisions]
    assert got == [s.want for s in case.steps], table(case.steps, run)
    for s, d in zip(case.steps, run.decisions, strict=True):
        if s.panic is not None:
            assert d.panic is s.panic, f"t={s.t:g}: panic {d.panic}\n{table(case.steps, run)}"


def test_burst_is_one_scale_up_event_naming_the_trigger() -> None:
    run = drive(policy(), span(0, 3, 8, 4), 1)
    changes = [d.change for d in run.decisions if d.change is not None]
    assert len(changes) == 1
    c = changes[0]
    assert (c.kind, c.before, c.after, c.metric, c.target) == (SCALED_UP, 1, 4,
                                                                "concurrency", 2.0)
    assert "panic" in run.decisions[0].reasons[0]


def test_exiting_panic_says_panic_holds_then_scales_down() -> None:
    steps = [*span(0, 3, 16, 4), *span(4, 7, 0, 4), *span(8, 8, 0, 2)]
    run = drive(policy(), steps, 1)
    at6 = run.decisions[6]
    assert any("holding the count" in r for r in at6.reasons), at6.reasons
    at8 = run.decisions[8]
    assert at8.change is not None and at8.change.kind == SCALED_DOWN
    assert (at8.change.before, at8.change.after) == (4, 2)


def test_jitter_makes_no_scale_event() -> None:
    steps = [Step(float(t), 3.7 if t % 2 else 4.3, 2) for t in range(40)]
    run = drive(policy(), steps, 2)
    assert [d.change for d in run.decisions] == [None] * 40


def test_stale_source_is_reported_with_its_age_until_the_ttl() -> None:
    steps = [*span(0, 10, 6, 3), *span(11, 17, None, 3), *span(18, 18, None, 1)]
    run = drive(policy(), steps, 1)
    at17, at18 = run.decisions[17].metrics["concurrency"], run.decisions[18].metrics["concurrency"]
    assert (at17.status, at17.value, at17.age) == ("ok", 6.0, 7.0)
    assert (at18.status, at18.value, at18.wants) == ("stale", None, None)
    assert "concurrency: stale" in run.decisions[18].reasons


def test_sample_older_than_ttl_on_arrival_is_not_read() -> None:
    run = drive(policy(), [Step(0, 8, 1, sample_at=-10)], 1)
    r = run.decisions[0].metrics["concurrency"]
    assert (r.status, r.value) == ("stale", None)
    assert run.decisions[0].state.history == {}


def test_trigger_window_shorter_than_the_polls_uses_the_newest_sample() -> None:
    """An http trigger's own window (1 s) can hold no sample at a poll while the source is
    still fresh (the gateways report every few seconds): its newest sample counts."""
    p = policy(max=10, triggers=(Trigger(K.HTTP, 5.0, window=1.0),))
    rate = [Sample(K.REQUEST_RATE, 20.0, 0.0)]
    steps = [Step(0, None, 4, extra=tuple(rate)), Step(2, None, 4), Step(3, None, 4)]
    run = drive(p, steps, 1, last_request_at=0.0)
    assert [d.desired for d in run.decisions] == [4, 4, 4], table(steps, run)
    r = run.decisions[1].metrics["http"]
    assert (r.status, r.value, r.age) == ("ok", 20.0, 2.0)


def test_scale_to_zero_is_its_own_event_kind() -> None:
    steps = [*span(0, 4, 1, 1), *span(5, 13, 0, 1), *span(14, 14, 0, 0)]
    run = drive(policy(min=0, max=3, idle_timeout=10), steps, 1)
    c = run.decisions[-1].change
    assert c is not None and (c.kind, c.before, c.after, c.metric) == (SCALED_TO_ZERO, 1, 0,
                                                                        "idle")
    assert any(r.startswith("idle for 10s") for r in run.decisions[-1].reasons)


def test_cold_start_names_the_waiting_requests() -> None:
    run = drive(policy(min=0), [Step(10, 3, 2, waiting=3)], 0,
                ScaleState(desired=0, last_scale_at=9.0))
    d = run.decisions[0]
    assert d.change is not None and d.change.metric == "cold start"
    assert "cold start: 3 requests waiting, 0 queued" in d.reasons


def test_fixed_count_says_autoscaling_is_off() -> None:
    run = drive(policy(min=3, max=3, triggers=()), [Step(0, 9, 3)], 1)
    assert run.decisions[0].reasons == ("autoscaling off: min = max = 3",)


def test_scale_up_delay_is_reported_while_it_waits() -> None:
    run = drive(policy(scale_up_delay=3), span(0, 1, 4, 1), 1)
    assert any(r.startswith("scale-up delay: 2s left") for r in run.decisions[1].reasons)


CUSTOM = Trigger(K.CUSTOM, 10.0, metric_name="queue_depth")


@pytest.mark.parametrize(("concurrency", "depth", "want", "metric"), [
    (4, 50.0, 5, "custom:queue_depth"),  # concurrency asks 2, the gauge 5
    (16, 10.0, 8, "concurrency"),  # concurrency asks 8, the gauge 1
])
def test_the_largest_trigger_wins(concurrency: float, depth: float, want: int,
                                  metric: str) -> None:
    p = policy(max=10, triggers=(Trigger(K.CONCURRENCY, 2.0), CUSTOM))
    gauge = (Sample(CUSTOM.source, depth, 0.0),)
    run = drive(p, [Step(0, concurrency, want, extra=gauge)], 1)
    d = run.decisions[0]
    assert d.desired == want and d.change is not None and d.change.metric == metric


def test_unavailable_trigger_is_reported_and_the_others_decide() -> None:
    p = policy(max=10, triggers=(Trigger(K.CONCURRENCY, 2.0),
                                 Trigger(K.GPU_UTILIZATION, 70.0)))
    why = {K.GPU_UTILIZATION.value: "no NVIDIA driver"}
    run = drive(p, [Step(0, 6, 3, unavailable=why)], 1)
    d = run.decisions[0]
    gpu = d.metrics["gpu_utilization"]
    assert (gpu.status, gpu.value, gpu.wants) == ("unavailable: no NVIDIA driver", None, None)
    assert "gpu_utilization: unavailable: no NVIDIA driver" in d.reasons
    assert d.desired == 3 and d.metrics["concurrency"].wants == 3


def test_a_panic_scale_up_names_the_trigger_whose_panic_window_asked() -> None:
    """Stable window 20 s, panic window 2 s. The gauge (40 at target 10) holds 4 replicas;
    at t=20 concurrency jumps to 44: its stable average (20 x 2 + 44) / 21 = 4 asks for
    only 2, its panic window (2 + 2 + 44) / 3 = 16 for 8, and the count goes to 8. The
    event must name concurrency and that panic-window value, not the gauge."""
    p = policy(max=10, stable_window=20, triggers=(Trigger(K.CONCURRENCY, 2.0), CUSTOM))
    steps = [Step(float(t), 44 if t == 20 else 2, 8 if t == 20 else 4,
                  extra=(Sample(CUSTOM.source, 40.0, float(t)),)) for t in range(21)]
    run = drive(p, steps, 1)
    assert [d.desired for d in run.decisions] == [s.want for s in steps], table(steps, run)
    c = run.decisions[20].change
    assert c is not None and (c.metric, c.value, c.before, c.after) == ("concurrency", 16.0,
                                                                         4, 8)
