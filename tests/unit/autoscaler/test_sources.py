"""The autoscaler's pure source helpers: request rate, gauge parsing, GPU samples, and the
replicas that count."""

from __future__ import annotations

from dataclasses import replace

import pytest

from berth.autoscaler.decide import Sample
from berth.autoscaler.policy import TriggerKind
from berth.autoscaler.sources import CounterRate, gpu_samples, parse_gauge, serving_replicas
from berth.domain.records import Replica
from berth.domain.status import ReplicaState as S
from berth.runtime.nvml import GpuUsage
from tests.fakes.builders import at, deployment, replica

K = TriggerKind
GIB = 2**30


def test_request_rate_is_growth_per_second() -> None:
    rate = CounterRate(K.REQUEST_RATE)
    assert rate.sample("d1", 100, 10.0) is None  # first sight: nothing to compare
    assert rate.sample("d1", 130, 12.0) == Sample(K.REQUEST_RATE, 15.0, 12.0)
    assert rate.sample("d1", 130, 14.0) == Sample(K.REQUEST_RATE, 0.0, 14.0)


def test_a_counter_that_went_down_starts_a_new_baseline_not_a_spike() -> None:
    rate = CounterRate(K.REQUEST_RATE)
    rate.sample("d1", 500, 10.0)
    # A gateway restarted (its counter went down to 8) or one of two stopped reporting
    # (the sum halved): neither is a measure of the traffic, so no sample.
    assert rate.sample("d1", 8, 14.0) is None
    assert rate.sample("d1", 18, 16.0) == Sample(K.REQUEST_RATE, 5.0, 16.0)


def test_concurrency_is_the_rate_of_request_seconds() -> None:
    busy = CounterRate(K.CONCURRENCY)
    busy.sample("d1", 10.0, 100.0)
    # 8 requests in flight for the whole 2 s: 16 request-seconds
    assert busy.sample("d1", 26.0, 102.0) == Sample(K.CONCURRENCY, 8.0, 102.0)


def test_request_rate_needs_a_newer_report() -> None:
    rate = CounterRate(K.REQUEST_RATE)
    rate.sample("d1", 10, 10.0)
    assert rate.sample("d1", 20, 10.0) is None  # the same report again
    assert rate.sample("d1", 30, 9.0) is None  # an older one


def test_request_rate_keeps_deployments_apart_and_forgets() -> None:
    rate = CounterRate(K.REQUEST_RATE)
    rate.sample("d1", 10, 0.0)
    rate.sample("d2", 1000, 0.0)
    assert rate.sample("d1", 20, 1.0) == Sample(K.REQUEST_RATE, 10.0, 1.0)
    rate.forget({"d1"})
    assert set(rate.seen) == {"d1"}
    assert rate.sample("d2", 1100, 2.0) is None  # forgotten: first sight again


PAGE = """\
# HELP queue_depth Requests waiting in the model server.
# TYPE queue_depth gauge
queue_depth{worker="a"} 3
queue_depth{worker="b"} 4.5
# TYPE other gauge
other 100
"""


def test_parse_gauge_sums_every_label_set() -> None:
    assert parse_gauge(PAGE, "queue_depth") == 7.5
    assert parse_gauge(PAGE, "other") == 100.0


def test_parse_gauge_missing_metric_is_none() -> None:
    assert parse_gauge(PAGE, "absent") is None
    assert parse_gauge("", "queue_depth") is None


def test_parse_gauge_skips_nan_samples() -> None:
    page = 'g{a="1"} NaN\ng{a="2"} 2\n'
    assert parse_gauge(page, "g") == 2.0
    assert parse_gauge("g NaN\n", "g") is None


@pytest.mark.parametrize("text", ["this is not prometheus{", 'g{a="1"} abc\n'])
def test_parse_gauge_bad_text_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_gauge(text, "g")


def usage(util: float, used_gib: int, total_gib: int = 80) -> GpuUsage:
    return GpuUsage(utilization=util, memory_used=used_gib * GIB, memory_total=total_gib * GIB)


D = deployment(2)


def test_gpu_samples_sum_each_replicas_mean() -> None:
    a = replica(D, "a", gpus=[0, 1])
    b = replica(D, "b", S.STARTING, ready=False, gpus=[2])
    meter = {0: usage(20, 8), 1: usage(40, 24), 2: usage(50, 40), 3: usage(99, 80)}
    samples, why = gpu_samples(meter, [a, b], 5.0)
    # a: (20 + 40) / 2 = 30 %, (10 + 30) / 2 = 20 % memory; b: 50 %, 50 %
    assert why == ""
    assert samples == [Sample(K.GPU_UTILIZATION, 80.0, 5.0), Sample(K.GPU_MEMORY, 70.0, 5.0)]


def test_gpu_samples_skip_replicas_without_a_process() -> None:
    waiting = replica(D, "a", S.PENDING, ready=False, gpus=[0])
    samples, why = gpu_samples({0: usage(90, 40)}, [waiting], 5.0)
    assert why == "" and [s.value for s in samples] == [0.0, 0.0]


@pytest.mark.parametrize(("meter", "replicas", "why"), [
    ("NVML is not available: no NVIDIA driver", [replica(D, "a", gpus=[0])],
     "NVML is not available: no NVIDIA driver"),
    ({0: usage(10, 1)}, [replica(D, "a")], "the replicas hold no GPUs"),
    ({0: usage(10, 1)}, [], "the replicas hold no GPUs"),
    ({0: usage(10, 1)}, [replica(D, "a", gpus=[0, 3, 2])], "NVML does not see GPU 2, 3"),
])
def test_gpu_samples_unavailable(meter: dict[int, GpuUsage] | str, replicas: list[Replica],
                                 why: str) -> None:
    samples, reason = gpu_samples(meter, replicas, 5.0)
    assert (samples, reason) == ([], why)


def test_serving_replicas_are_the_regions_live_ones_of_the_current_spec() -> None:
    keep = [replica(D, "run"), replica(D, "start", S.STARTING, ready=False),
            replica(D, "pend", S.PENDING, ready=False), replica(D, "back", S.BACKOFF)]
    drop = [replica(D, "old", template="other-template"),
            replica(D, "drain", S.DRAINING), replica(D, "stop", S.STOPPING),
            replica(D, "gone", S.STOPPED),
            replica(D, "restart", restart_requested_at=at(3)),
            replace(replica(D, "far"), region="eu")]
    got = serving_replicas(D, [*keep, *drop], "local")
    assert [r.id for r in got] == ["run", "start", "pend", "back"]
    assert [r.id for r in serving_replicas(D, [*keep, *drop], "eu")] == ["far"]
