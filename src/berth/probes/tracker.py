"""Probe thresholds as a pure state machine over (result, now)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from berth.domain.spec import Probe


class ProbeKind(StrEnum):
    STARTUP = "startup"
    READINESS = "readiness"
    LIVENESS = "liveness"


@dataclass
class ProbeTracker:
    """Consecutive successes/failures against thresholds.

    startup: `passing` once one success arrives; `failed` after failure_threshold failures.
    readiness: `passing` after success_threshold successes, cleared after failure_threshold.
    liveness: `failed` after failure_threshold consecutive failures.
    """

    kind: ProbeKind
    probe: Probe
    armed_at: float  # when the container started (initial_delay counts from here)
    passing: bool = False
    failed: bool = False
    successes: int = 0
    failures: int = 0
    last_run: float | None = None
    message: str = ""

    def next_due(self) -> float:
        first = self.armed_at + self.probe.initial_delay_seconds
        if self.last_run is None:
            return first
        return max(first, self.last_run + self.probe.period_seconds)

    def due(self, now: float) -> bool:
        return now >= self.next_due()

    def record(self, ok: bool, message: str, now: float) -> None:
        self.last_run = now
        self.message = message
        if ok:
            self.successes += 1
            self.failures = 0
            needed = self.probe.success_threshold if self.kind == ProbeKind.READINESS else 1
            if self.successes >= needed:
                self.passing = True
                self.failed = False
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= self.probe.failure_threshold:
                self.passing = False
                self.failed = self.kind != ProbeKind.READINESS


@dataclass(frozen=True)
class ProbeVerdict:
    started: bool
    ready: bool
    startup_failed: bool = False
    liveness_failed: bool = False
    message: str = ""


def verdict(startup: ProbeTracker | None, readiness: ProbeTracker | None,
            liveness: ProbeTracker | None) -> ProbeVerdict:
    started = startup is None or startup.passing
    if startup is not None and startup.failed:
        return ProbeVerdict(False, False, startup_failed=True,
                            message=f"startup probe failed: {startup.message}")
    if liveness is not None and liveness.failed:
        return ProbeVerdict(started, False, liveness_failed=True,
                            message=f"liveness probe failed: {liveness.message}")
    ready = started and (readiness is None or readiness.passing)
    message = readiness.message if readiness is not None and not ready else ""
    return ProbeVerdict(started, ready, message=message)
