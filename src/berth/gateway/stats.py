"""Per-deployment counters the hot path bumps (plain Python, no locks, no labels)."""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, 120.0, 300.0)


@dataclass
class Histogram:
    bounds: tuple[float, ...] = LATENCY
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        i = 0
        for bound in self.bounds:  # compiled, a plain loop beats a call to bisect
            if value <= bound:
                break
            i += 1
        self.counts[i] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


@dataclass
class DeploymentStats:
    project: str
    name: str
    responses: dict[int, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    ttfb: Histogram = field(default_factory=Histogram)
    queue_wait: Histogram = field(default_factory=Histogram)
    cold_start: Histogram = field(default_factory=Histogram)
    shed: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    queued: int = 0
    last_request: float = 0.0
