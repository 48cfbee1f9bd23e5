"""policy_for: the native spec's scale settings as the policy decide reads."""

from __future__ import annotations

from typing import Any

import pytest

from berth.autoscaler.policy import ScalePolicy, Trigger, TriggerKind, policy_for
from berth.domain.validation import parse_spec

K = TriggerKind


def policy_of(scale: dict[str, Any], **spec: Any) -> ScalePolicy:
    parsed = parse_spec({"name": "echo", "image": "catalog/echo",
                         "containers": [{"region": "local", "scale": scale}], **spec})
    return policy_for(parsed, parsed.containers[0])


@pytest.mark.parametrize(("scale", "stable", "panic"), [
    ({"cooldown_period": 5, "polling_interval": 1}, 5.0, 1.0),  # = cooldown; panic 1 poll
    ({"cooldown_period": 60, "polling_interval": 30}, 60.0, 30.0),
    ({"cooldown_period": 300, "polling_interval": 5}, 300.0, 30.0),  # panic = stable / 10
    ({"cooldown_period": 1, "polling_interval": 10}, 20.0, 10.0),  # at least two polls
    ({"cooldown_period": 0, "polling_interval": 3}, 6.0, 3.0),
    ({"cooldown_period": 5, "polling_interval": 1, "stable_window": 50}, 50.0, 5.0),
    ({"cooldown_period": 5, "polling_interval": 4, "stable_window": 1}, 8.0, 4.0),
])
def test_stable_and_panic_windows(scale: dict[str, Any], stable: float, panic: float) -> None:
    p = policy_of({"min": 1, "max": 4, **scale})
    assert (p.stable_window, p.panic_window) == (stable, panic)
    assert p.cooldown == scale["cooldown_period"]
    assert p.polling_interval == scale["polling_interval"]
    assert p.metric_ttl == 2 * scale["polling_interval"] + 5


def test_defaults() -> None:
    p = policy_of({"min": 1, "max": 4})
    assert p.triggers == (Trigger(K.CONCURRENCY, 2.0),)
    assert (p.cooldown, p.polling_interval, p.stable_window) == (60.0, 30.0, 60.0)
    assert (p.idle_timeout, p.scale_up_delay, p.panic_threshold, p.tolerance) == (
        120.0, 0.0, 2.0, 0.1)
    assert not p.fixed


def test_default_concurrency_target_is_per_worker() -> None:
    p = policy_of({"min": 1, "max": 4}, per_worker=5)
    assert p.triggers == (Trigger(K.CONCURRENCY, 5.0),)


def test_fixed_count_has_no_default_trigger() -> None:
    p = policy_of({"min": 3, "max": 3})
    assert p.fixed and p.triggers == ()


def test_timeout_and_scale_up_delay() -> None:
    p = policy_of({"min": 0, "max": 2, "scale_up_delay": 10}, timeout=30)
    assert (p.min, p.max, p.idle_timeout, p.scale_up_delay) == (0, 2, 30.0, 10.0)


def test_every_trigger_is_mapped_from_the_spec() -> None:
    p = policy_of({"min": 1, "max": 8, "triggers": {
        "concurrency": {"target": 4}, "request_rate": {"target": 3.5},
        "http": {"rate": 5, "window": 30}, "cpu": {"threshold": 70},
        "memory": {"threshold": 80}, "gpu_utilization": {"threshold": 50},
        "gpu_memory": {"threshold": 60},
        "custom": [{"metric_name": "queue_depth", "target": 7, "path": "/m"}],
    }}, per_worker=9)
    assert p.triggers == (
        Trigger(K.CONCURRENCY, 4.0), Trigger(K.REQUEST_RATE, 3.5),
        Trigger(K.HTTP, 5.0, window=30.0), Trigger(K.CPU, 70.0), Trigger(K.MEMORY, 80.0),
        Trigger(K.GPU_UTILIZATION, 50.0), Trigger(K.GPU_MEMORY, 60.0),
        Trigger(K.CUSTOM, 7.0, metric_name="queue_depth", path="/m"))
    assert [t.key for t in p.triggers] == [
        "concurrency", "request_rate", "http", "cpu", "memory", "gpu_utilization",
        "gpu_memory", "custom:queue_depth"]
    # http and request_rate read the same samples; a custom trigger its own gauge
    assert [t.source for t in p.triggers[1:3]] == ["request_rate", "request_rate"]
    assert p.triggers[-1].source == "custom:queue_depth"
    assert p.history_seconds == 60.0  # the stable window; http's 30 s is shorter


def test_history_covers_the_longest_trigger_window() -> None:
    p = policy_of({"min": 1, "max": 8, "cooldown_period": 5, "polling_interval": 1,
                   "triggers": {"http": {"rate": 5, "window": 120}}})
    assert p.history_seconds == 120.0
