"""One prober per replica process: runs its due probes, keeps the verdict current."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from berth.domain.spec import Probes
from berth.probes.checks import ProbeTarget, run_check, tcp_connect
from berth.probes.tracker import ProbeKind, ProbeTracker, ProbeVerdict, verdict

PORT_POLL_SECONDS = 0.02
STOP_SECONDS = 2.0
log = logging.getLogger("berth.probes")


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
        # The replica's port accepted a connection at least once. With no startup probe,
        # liveness counts only from then: a server still loading is not a dead one.
        self._port_opened = started

    def verdict(self) -> ProbeVerdict:
        return verdict(self.startup, self.readiness, self.liveness)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the probing and wait until it has ended. The controller awaits this in its
        tick, so it must return: a cancellation that a library loses (Python 3.11's
        `asyncio.wait_for` can) is sent again, and a task that still runs after
        STOP_SECONDS is left behind with a warning rather than waited for."""
        task, self._task = self._task, None
        if task is None:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while not task.done() and time.monotonic() < deadline:
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
        if not task.done():
            log.warning("the prober of %s:%d did not stop within %gs; left behind",
                        self.target.host, self.target.port, STOP_SECONDS)
        elif not task.cancelled() and task.exception() is not None:
            log.warning("the prober of %s:%d had failed: %r", self.target.host,
                        self.target.port, task.exception())

    def _active(self) -> list[ProbeTracker]:
        if self.startup is not None and not self.startup.passing:
            return [] if self.startup.failed else [self.startup]
        liveness = self.liveness if self.startup is not None or self._port_opened else None
        return [t for t in (self.readiness, liveness) if t is not None and not t.failed]

    async def _run(self) -> None:
        while True:
            active = self._active()
            if not active and not self._starting():
                await asyncio.sleep(1.0)
                continue
            now = self.clock()
            due = [t for t in active if t.due(now)]
            wait = min(max(min((t.next_due() for t in active), default=now + 1.0) - now, 0.01),
                       1.0)
            if not due and self._starting():
                if not await self._port_opens_within(wait):  # waited: the check is due now
                    continue
                if self.startup is None:
                    continue  # liveness is active from now on
                due = [self.startup]  # it just opened: check now, not a period later
            if due:
                await self._check(due)
                continue
            await asyncio.sleep(wait)

    async def _check(self, due: list[ProbeTracker]) -> None:
        results = await asyncio.gather(*(run_check(t.probe, self.target, self.http) for t in due))
        finished = self.clock()
        before = self.verdict()
        for tracker, (ok, message) in zip(due, results, strict=True):
            tracker.record(ok, message, finished)
        if self.on_change is not None and _flags(self.verdict()) != _flags(before):
            self.on_change()

    def _starting(self) -> bool:
        """Waiting for a start whose port has never accepted: worth watching the port (when
        the startup probe looks at the replica's own port, or when there is none and liveness
        waits for the port)."""
        startup = self.startup
        if startup is None:
            return self.liveness is not None and not self._port_opened
        if startup.passing or startup.failed or self._port_opened:
            return False
        probe = startup.probe
        action = probe.http_get or probe.tcp_socket
        return action is not None and self.target.map_port(action.port) == self.target.port

    async def _port_opens_within(self, seconds: float) -> bool:
        """A plain TCP connect every 20 ms until the replica's port accepts (True) or
        `seconds` pass. A refused connect costs next to nothing, unlike a probe, so a cold
        start is checked as soon as the server listens instead of up to a period later;
        once the port has opened, probes keep their own schedule."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            try:
                await tcp_connect(self.target.host, self.target.port, 1.0)
            except (OSError, TimeoutError):
                left = end - loop.time()
                if left <= 0:
                    return False
                await asyncio.sleep(min(PORT_POLL_SECONDS, left))
                continue
            self._port_opened = True
            return True


def _flags(v: ProbeVerdict) -> tuple[bool, bool, bool, bool]:
    return v.started, v.ready, v.startup_failed, v.liveness_failed
