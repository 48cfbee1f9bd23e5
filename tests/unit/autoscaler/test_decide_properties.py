"""Properties of `decide` over random policies and random load timelines."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from berth.autoscaler.decide import Decision, Observed, Sample, ScaleState, decide
from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind

K = TriggerKind
CUSTOM = Trigger(K.CUSTOM, 10.0, metric_name="depth")
SETTINGS = settings(max_examples=120, deadline=None)


@st.composite
def policies(draw: st.DrawFn) -> ScalePolicy:
    lo = draw(st.integers(0, 3))
    hi = draw(st.integers(lo, 6))
    polling = float(draw(st.integers(1, 3)))
    cooldown = float(draw(st.integers(0, 12)))
    stable = max(float(draw(st.integers(1, 12))), 2 * polling)
    triggers = [Trigger(K.CONCURRENCY, float(draw(st.sampled_from([1, 2, 5]))))]
    if draw(st.booleans()):
        triggers.append(CUSTOM)
    return ScalePolicy(
        min=lo, max=hi, triggers=tuple(triggers), cooldown=cooldown,
        polling_interval=polling, stable_window=stable,
        panic_window=min(stable, max(stable / 10, polling)),
        idle_timeout=float(draw(st.integers(0, 20))),
        scale_up_delay=float(draw(st.integers(0, 4))), metric_ttl=2 * polling + 5)


@dataclass(frozen=True)
class Poll:
    gap: int  # polls since the previous one (1 or 2)
    inflight: int
    waiting: int
    queued: int
    depth: float | None  # the custom gauge; None: no sample this poll
    fresh: bool  # the concurrency source reported this poll
    lag: int  # replicas of the last decision the controller has not started yet


polls = st.builds(
    Poll, gap=st.sampled_from([1, 1, 1, 2]), inflight=st.integers(0, 20),
    waiting=st.sampled_from([0, 0, 0, 1, 3]), queued=st.sampled_from([0, 0, 0, 0, 2]),
    depth=st.one_of(st.none(), st.floats(0, 80)), fresh=st.sampled_from([True] * 5 + [False]),
    lag=st.sampled_from([0] * 8 + [1, 2]))


@dataclass(frozen=True)
class Seen:
    t: float
    before: int  # the count decided at the previous poll
    last_scale_at: float | None  # the last scale event before this poll
    observed: Observed
    decision: Decision


def simulate(p: ScalePolicy, start: int, timeline: list[Poll]) -> list[Seen]:
    """Drive decide like the loop: the state fed back, the controller running the last
    decision (minus `lag` replicas not started yet), the last request time tracked."""
    state, desired, t = ScaleState(), start, 0.0
    last_request: float | None = None
    out: list[Seen] = []
    for poll in timeline:
        t += poll.gap * p.polling_interval
        if poll.inflight or poll.waiting:
            last_request = t
        samples = []
        if poll.fresh:
            samples.append(Sample(K.CONCURRENCY, float(poll.inflight + poll.waiting), t))
        if poll.depth is not None:
            samples.append(Sample(CUSTOM.source, poll.depth, t))
        obs = Observed(current=max(desired - poll.lag, 0), ready=max(desired - poll.lag, 0),
                       inflight=poll.inflight, waiting=poll.waiting, queued=poll.queued,
                       last_request_at=last_request, samples=tuple(samples))
        d = decide(p, obs, state, t)
        out.append(Seen(t, desired, state.last_scale_at, obs, d))
        state, desired = d.state, d.desired
    return out


@st.composite
def runs(draw: st.DrawFn) -> tuple[ScalePolicy, list[Seen]]:
    p = draw(policies())
    start = draw(st.integers(p.min, p.max))
    return p, simulate(p, start, draw(st.lists(polls, min_size=1, max_size=40)))


@SETTINGS
@given(runs())
def test_desired_is_always_within_min_and_max(run: tuple[ScalePolicy, list[Seen]]) -> None:
    p, seen = run
    for s in seen:
        assert p.min <= s.decision.desired <= p.max, s


@SETTINGS
@given(runs())
def test_no_scale_down_inside_the_cooldown(run: tuple[ScalePolicy, list[Seen]]) -> None:
    p, seen = run
    for s in seen:
        if s.decision.desired < s.before:
            assert s.last_scale_at is None or s.t - s.last_scale_at >= p.cooldown, s


@SETTINGS
@given(runs())
def test_zero_only_after_the_idle_timeout_and_only_with_min_zero(
        run: tuple[ScalePolicy, list[Seen]]) -> None:
    p, seen = run
    for s in seen:
        if s.decision.desired == 0 and p.max > 0:
            o = s.observed
            assert p.min == 0, s
            assert not (o.inflight or o.waiting or o.queued), s
            assert o.last_request_at is None or s.t - o.last_request_at >= p.idle_timeout, s


@SETTINGS
@given(policies(), st.data(), st.integers(0, 20), st.one_of(st.none(), st.floats(0, 80)))
def test_a_constant_load_settles_on_one_count(p: ScalePolicy, data: st.DataObject,
                                              inflight: int, depth: float | None) -> None:
    """Once the first changes are through (scale-up delay, a full stable window and a
    cooldown, the idle timeout), a constant load never changes the count again."""
    start = data.draw(st.integers(p.min, p.max))
    settle = (p.scale_up_delay + p.stable_window + p.cooldown + p.idle_timeout
              + 2 * p.polling_interval)
    n = math.ceil(settle / p.polling_interval) + 15
    steady = Poll(gap=1, inflight=inflight, waiting=0, queued=0, depth=depth, fresh=True,
                  lag=0)
    seen = simulate(p, start, [steady] * n)
    after = {s.decision.desired for s in seen if s.t > settle}
    assert len(after) == 1, [(s.t, s.decision.desired) for s in seen]
