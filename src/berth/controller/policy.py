"""Timing and threshold knobs the pure decisions read."""

from __future__ import annotations

from dataclasses import dataclass

from berth.settings import Settings


@dataclass(frozen=True)
class Policy:
    crash_loop_threshold: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    stable_run: float = 30.0
    drain_seconds: float = 0.0
    stop_grace: float = 10.0
    progress_deadline: float = 600.0

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(crash_loop_threshold=s.crash_loop_threshold,
                   backoff_base=s.backoff_base_seconds, backoff_max=s.backoff_max_seconds,
                   stable_run=s.stable_run_seconds, drain_seconds=s.drain_seconds,
                   stop_grace=s.stop_grace_seconds,
                   progress_deadline=s.progress_deadline_seconds)

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_base * 2 ** max(failures - 1, 0), self.backoff_max))
