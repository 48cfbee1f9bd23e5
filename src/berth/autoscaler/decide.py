"""decide: one region's desired replica count from its load history. Pure.

Knative's KPA shape, with the fixes its and Ray Serve's users asked for:
- a stable window (scale-down) and a short panic window (bursts); up at once, down only after
  the cooldown and a full stable window; within 10% of the target per replica the count
  holds (hysteresis), so a steady or jittering load never flaps;
- load is measured as totals at the gateways (in flight + waiting), so replicas still
  starting are counted as capacity on the way and a slow start cannot inflate the count
  (Knative #13284); panic never scales down and ends one stable window after it last held;
- every sample has a time; one older than the TTL is dropped, and a source that went silent
  is *stale* and holds nothing up (Ray #38118);
- from zero, waiting requests or queued work scale up at once, without any window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind

SCALED_UP, SCALED_DOWN, SCALED_TO_ZERO = "ScaledUp", "ScaledDown", "ScaledToZero"
IDLE = "idle"


@dataclass(frozen=True)
class Sample:
    source: str  # a trigger's source: concurrency, request_rate, cpu, custom:<name>, ...
    value: float  # the region's total, in the trigger's unit (per-replica target x replicas)
    at: float  # unix seconds the source measured it


@dataclass(frozen=True)
class Observed:
    """What the loop read for one region this poll."""

    current: int = 0  # replicas of the current spec, starting ones included, leaving ones not
    ready: int = 0
    inflight: int = 0
    waiting: int = 0  # requests held at the gateways for a free replica
    queued: int = 0  # async invocations waiting
    last_request_at: float | None = None
    samples: tuple[Sample, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)  # source -> why


@dataclass(frozen=True)
class ScaleState:
    """What decide remembers between polls; empty after a restart."""

    history: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)  # per source,
    # oldest first; only the sources the policy's triggers read
    since: float | None = None  # first poll of this history: how much of a window it covers
    desired: int | None = None
    last_scale_at: float | None = None
    panic_at: float | None = None  # the last poll at which the panic condition held
    up_since: float | None = None  # since when the load has asked for more (scale_up_delay)


@dataclass(frozen=True)
class Reading:
    """One trigger on the view: its window average against its target."""

    value: float | None  # None: no fresh sample
    target: float
    age: float | None  # seconds since the newest sample
    wants: int | None  # replicas it asks for (None: it counts for nothing now)
    status: str = "ok"  # ok | idle | stale | unavailable: <why>


@dataclass(frozen=True)
class ScaleChange:
    kind: str  # ScaledUp | ScaledDown | ScaledToZero
    before: int
    after: int
    metric: str  # the trigger that decided it, or "idle" / "cold start" / "bounds"
    value: float | None
    target: float | None

    @property
    def message(self) -> str:
        why = self.metric
        if self.value is not None and self.target is not None:
            why = f"{self.metric} {self.value:.3g} for target {self.target:g}"
        return f"{self.before} -> {self.after} replicas: {why}"


@dataclass(frozen=True)
class Decision:
    desired: int
    state: ScaleState
    panic: bool = False
    reasons: tuple[str, ...] = ()
    metrics: Mapping[str, Reading] = field(default_factory=dict)
    change: ScaleChange | None = None


def _ceil(x: float) -> int:
    return max(math.ceil(x - 1e-9), 0)


@dataclass(frozen=True)
class _Want:
    trigger: Trigger
    value: float  # stable-window average
    panic_value: float  # panic-window average
    up: int  # replicas to scale up to (load above the band)
    down: int  # replicas it still needs (load below the band frees the rest)
    panic: int  # replicas the panic window asks for


def decide(policy: ScalePolicy, observed: Observed, state: ScaleState, now: float) -> Decision:
    # A sample already older than the TTL when it arrives is dropped: its source is dead.
    # Kept as long as any window looks back, and at least the TTL: a source is stale only
    # once its newest sample is older than the TTL, not as soon as it leaves the window.
    keep = max(policy.history_seconds, policy.metric_ttl)
    arrived: dict[str, list[Sample]] = {}
    for s in observed.samples:
        if now - s.at <= policy.metric_ttl:
            arrived.setdefault(s.source, []).append(s)
    history: dict[str, tuple[Sample, ...]] = {}
    for source in {t.source for t in policy.triggers}:
        # Oldest first: trim from the front (a sample that came out of order stays a little
        # longer; every window still filters by time).
        old = state.history.get(source, ())
        first = 0
        while first < len(old) and now - old[first].at > keep:
            first += 1
        kept = old[first:] + tuple(arrived.get(source, ()))
        if kept:
            history[source] = kept
    since = state.since if state.since is not None else now
    last_req = observed.last_request_at
    idle_for = math.inf if last_req is None else now - last_req
    busy = observed.inflight > 0 or observed.waiting > 0 or observed.queued > 0
    idle = not busy and idle_for >= policy.idle_timeout
    # The count decided last, not the replicas the controller has started so far: during a
    # rollout or a replica's replacement fewer run for a moment, and that is no scale-down.
    # With no earlier decision, bringing the count within its bounds is no scale event.
    before = (state.desired if state.desired is not None
              else min(max(observed.current, policy.min), policy.max))
    base = min(max(before, policy.min), policy.max)
    capacity = max(observed.current, before)  # replicas running, starting or on the way
    readings: dict[str, Reading] = {}
    wants: list[_Want] = []
    for t in policy.triggers:
        reading, want = _read(policy, t, history.get(t.source, ()), observed, base, idle, now)
        readings[t.key] = reading
        if want is not None:
            wants.append(want)

    floor = policy.min if policy.min or idle else min(1, policy.max)
    reasons: list[str] = []
    panic_at = state.panic_at
    up_since: float | None = None
    decided_by: tuple[str, float | None, float | None] = ("bounds", None, None)

    panic_want = max((w.panic for w in wants), default=0)
    if wants and panic_want >= policy.panic_threshold * max(capacity, 1) \
            and panic_want > capacity:
        panic_at = now
    panic = panic_at is not None and now - panic_at < policy.stable_window and not idle
    if not panic:
        panic_at = None
    up_want = max((w.up for w in wants), default=0)
    down_want = max((w.down for w in wants), default=0)
    cooled = state.last_scale_at is None or now - state.last_scale_at >= policy.cooldown
    covered = now - since >= policy.stable_window

    if policy.fixed:
        desired = policy.min
        reasons.append(f"autoscaling off: min = max = {policy.min}")
    elif observed.current == 0 and (observed.waiting or observed.queued) and policy.max:
        desired = max(base, 1, up_want, panic_want)
        reasons.append(f"cold start: {observed.waiting} requests waiting, "
                       f"{observed.queued} queued")
        decided_by = ("cold start", None, None)
    else:
        desired = base
        ask = max(up_want, panic_want if panic else 0)
        if ask > base:
            up_since = state.up_since if state.up_since is not None else now
            if now - up_since >= policy.scale_up_delay:
                desired = ask
                # The trigger that asked for the most, by the window that asked for it.
                asker = max(wants, key=lambda w: max(w.up, w.panic if panic else 0))
                by_panic = panic and asker.panic > asker.up
                decided_by = (asker.trigger.key,
                              asker.panic_value if by_panic else asker.value,
                              asker.trigger.target)
            else:
                reasons.append(f"scale-up delay: {policy.scale_up_delay - (now - up_since):.0f}s"
                               " left")
        elif panic:
            reasons.append("holding the count until the load stays below it for "
                           f"{policy.stable_window:g}s")
        elif max(down_want, floor) < base:
            if not cooled:
                assert state.last_scale_at is not None
                left = policy.cooldown - (now - state.last_scale_at)
                reasons.append(f"cooldown: scale-down in {left:.0f}s")
            elif not covered and not idle:
                reasons.append(f"stable window: {now - since:.0f}s of "
                               f"{policy.stable_window:g}s of history")
            else:
                desired = max(down_want, floor)
                top = max(wants, key=lambda w: w.down, default=None)
                decided_by = ((IDLE, idle_for, policy.idle_timeout) if idle and not down_want
                              else (top.trigger.key, top.value, top.trigger.target)
                              if top is not None else ("bounds", None, None))
        if panic:
            reasons.insert(0, f"panic: the last {policy.panic_window:g}s ask for "
                              f"{panic_want} replicas")
    desired = min(max(desired, floor), policy.max)
    if idle and not policy.fixed:
        reasons.append(f"idle for {idle_for:.0f}s (timeout {policy.idle_timeout:g}s)"
                       if last_req is not None else "no request yet")
    for key, r in readings.items():
        if r.status != "ok":
            reasons.append(f"{key}: {r.status}")
    change = None
    last_scale_at = state.last_scale_at
    if desired != before:
        kind = (SCALED_UP if desired > before else SCALED_TO_ZERO if desired == 0
                else SCALED_DOWN)
        metric, value, target = decided_by
        change = ScaleChange(kind, before, desired, metric, value, target)
        last_scale_at = now
    new_state = replace(state, history=history, since=since, desired=desired,
                        last_scale_at=last_scale_at, panic_at=panic_at, up_since=up_since)
    return Decision(desired=desired, state=new_state, panic=panic, reasons=tuple(reasons),
                    metrics=readings, change=change)


def _read(policy: ScalePolicy, t: Trigger, mine: tuple[Sample, ...], observed: Observed,
          held: int, idle: bool, now: float) -> tuple[Reading, _Want | None]:
    if t.source in observed.unavailable:
        why = observed.unavailable[t.source]
        return Reading(None, t.target, None, None, f"unavailable: {why}"), None
    window = t.window if t.window is not None else policy.stable_window
    panic_window = policy.panic_window
    # One pass: the newest sample(s), and sums over the stable and panic windows.
    newest: float | None = None
    latest = latest_n = total = panic_total = 0.0
    count = panic_count = 0
    for sample in mine:
        at, v = sample.at, sample.value
        if newest is None or at > newest:
            newest, latest, latest_n = at, v, 1.0
        elif at == newest:
            latest += v
            latest_n += 1
        if now - at <= window:
            total += v
            count += 1
        if now - at <= panic_window:
            panic_total += v
            panic_count += 1
    if newest is None or now - newest > policy.metric_ttl:
        age = None if newest is None else now - newest
        return Reading(None, t.target, age, None, "stale"), None
    age = max(now - newest, 0.0)
    # A window with no sample in it (shorter than the gateways' report interval, or a
    # source silent for longer than the window but not yet the TTL): the newest counts.
    value = total / count if count else latest / latest_n
    panic_value = panic_total / panic_count if panic_count else latest / latest_n
    if idle and (t.kind in TriggerKind.request_driven() or t.kind in TriggerKind.resource()):
        return Reading(value, t.target, age, 0, IDLE), None
    # The tolerance band, as Kubernetes' HPA: within 10% of the target per replica of the
    # count held the count holds; outside it the count is what the load needs.
    raw = value / t.target
    wants = held if held and abs(raw / held - 1) <= policy.tolerance else _ceil(raw)
    want = _Want(t, value, panic_value, wants, wants, _ceil(panic_value / t.target))
    return Reading(value, t.target, age, want.up), want
