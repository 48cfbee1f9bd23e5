"""Histogram buckets: a value lands in the first bucket whose bound is not below it."""

from __future__ import annotations

from bisect import bisect_left

from berth.gateway.stats import LATENCY, Histogram


def test_observe_counts_like_prometheus_le_buckets() -> None:
    h = Histogram()
    values = [0.0, 0.0005, 0.001, 0.0011, 0.25, 1.0, 299.9, 300.0, 300.1, 1e9]
    for v in values:
        h.observe(v)
    expected = [0] * (len(LATENCY) + 1)
    for v in values:
        expected[bisect_left(LATENCY, v)] += 1
    assert h.counts == expected
    assert h.total == sum(values)
    assert h.buckets()[-1] == ("+Inf", float(len(values)))
