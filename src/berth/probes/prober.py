"""One prober per replica process: runs its due probes, keeps the verdict current."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx

from berth.domain.spec import Probes
from berth.probes.checks import ProbeTarget, run_check
from berth.probes.tracker import ProbeKind, ProbeTracker, ProbeVerdict, verdict


class ReplicaProber:
    def __init__(
        self, probes: Probes, target: ProbeTarget, http: httpx.AsyncClient, *,
        started: bool = False, ready: bool = False,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """`started`/`ready` seed the trackers for a replica adopted after a server restart."""
        now = clock()
        self.target = target
        self.http = http
        self.clock = clock
        self.on_change = on_change

        def make(kind: ProbeKind) -> ProbeTracker | None:
            probe = getattr(probes, kind.value)
            return None if probe is None else ProbeTracker(kind, probe, now)

        self.startup = make(ProbeKind.STARTUP)
        self.readiness = make(ProbeKind.READINESS)
        self.liveness = make(ProbeKind.LIVENESS)
        if started and self.startup is not None:
            self.startup.passing = True
        if ready and self.readiness is not None:
            self.readiness.passing = True
        self._task: asyncio.Task[None] | None = None

    def verdict(self) -> ProbeVerdict:
        return verdict(self.startup, self.readiness, self.liveness)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _active(self) -> list[ProbeTracker]:
        if self.startup is not None and not self.startup.passing:
            return [] if self.startup.failed else [self.startup]
        return [t for t in (self.readiness, self.liveness) if t is not None and not t.failed]

    async def _run(self) -> None:
        while True:
            active = self._active()
            if not active:
                await asyncio.sleep(1.0)
                continue
            now = self.clock()
            due = [t for t in active if t.due(now)]
            if due:
                results = await asyncio.gather(
                    *(run_check(t.probe, self.target, self.http) for t in due))
                finished = self.clock()
                before = self.verdict()
                for tracker, (ok, message) in zip(due, results, strict=True):
                    tracker.record(ok, message, finished)
                if self.on_change is not None and _flags(self.verdict()) != _flags(before):
                    self.on_change()
                continue
            wait = min(t.next_due() for t in active) - now
            await asyncio.sleep(min(max(wait, 0.01), 1.0))


def _flags(v: ProbeVerdict) -> tuple[bool, bool, bool, bool]:
    return v.started, v.ready, v.startup_failed, v.liveness_failed
