"""Least outstanding requests with power of two choices, a hard per-replica cap, and a bounded
FIFO queue. Choosing a replica and counting the request on it happen in one synchronous step
(no await between them), so the pick is atomic on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class Backend:
    replica_id: str
    host: str
    port: int
    inflight: int = 0
    serving: bool = True  # False once it left the routing table (draining)
    key: tuple[str, int] = field(init=False, default=("", 0))  # (host, port), made once
    log_name: str = field(init=False, default="")  # replica_id as a JSON string

    def __post_init__(self) -> None:
        self.key = (self.host, self.port)
        self.log_name = f'"{self.replica_id}"'


@dataclass(eq=False)
class Waiter:
    future: asyncio.Future[Backend]
    exclude: frozenset[str] = frozenset()


UNAVAILABLE = "unavailable"  # the Shed reason when no replica can come


class Shed(Exception):
    """The request cannot wait: the queue is full, the wait timed out, or no replica can
    ever come (the deployment is stopped or scaled to at most 0)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(eq=False)
class Balancer:
    """One deployment's replicas and waiting requests."""

    cap: int | None = None  # per_worker: max in-flight per replica
    max_queued: int = 256
    backends: list[Backend] = field(default_factory=list)
    waiters: deque[Waiter] = field(default_factory=deque)
    leaving: dict[str, Backend] = field(default_factory=dict)  # left the table, still busy
    unavailable: str = ""  # why no replica can come (then nothing waits), or ""
    seed: int = field(default_factory=lambda: random.getrandbits(31))

    def _draw(self, n: int) -> int:
        """A number below n, from a 31-bit linear congruential step: enough to pick two of
        n replicas, and plain integer arithmetic once compiled (no call into `random`)."""
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.seed >> 8) % n

    def update(self, replicas: list[tuple[str, str, int]], cap: int | None,
               max_queued: int, unavailable: str = "") -> None:
        """Adopt a new set of ready replicas; keep counters of the ones that stay. With
        `unavailable` (why no replica can come) and none left, the waiting requests fail."""
        self.cap, self.max_queued, self.unavailable = cap, max_queued, unavailable
        known = {b.replica_id: b for b in self.backends}
        fresh = []
        for replica_id, host, port in replicas:
            b = known.pop(replica_id, None) or self.leaving.pop(replica_id, None)
            if b is None or b.key != (host, port):
                b = Backend(replica_id, host, port)
            b.serving = True
            fresh.append(b)
        for b in known.values():
            b.serving = False
            if b.inflight:
                self.leaving[b.replica_id] = b
        self.backends = fresh
        self._dispatch()
        if unavailable and not fresh:
            waiters, self.waiters = self.waiters, deque()
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(Shed(UNAVAILABLE, unavailable))

    def _eligible(self, b: Backend, exclude: frozenset[str]) -> bool:
        return (self.cap is None or b.inflight < self.cap) and b.replica_id not in exclude

    def try_acquire(self, exclude: frozenset[str] = frozenset()) -> Backend | None:
        """Reserve a slot now, or None when every replica is at its cap (or none exists)."""
        if self.waiters:  # first come, first served
            return None
        return self._pick(exclude)

    def _pick(self, exclude: frozenset[str]) -> Backend | None:
        backends = self.backends
        n = len(backends)
        if n == 0:
            return None
        if n == 1:
            b = backends[0]
            chosen = b if self._eligible(b, exclude) else None
        else:
            i = self._draw(n)
            if n == 2:
                j = 1 - i
            else:
                j = self._draw(n - 1)
                if j >= i:
                    j += 1
            a, b = backends[i], backends[j]
            if not self._eligible(a, exclude):
                a, b = b, a
            if not self._eligible(a, exclude):
                chosen = next((x for x in backends if self._eligible(x, exclude)), None)
            else:
                chosen = b if self._eligible(b, exclude) and b.inflight < a.inflight else a
        if chosen is not None:
            chosen.inflight += 1
        return chosen

    def enqueue(self, exclude: frozenset[str] = frozenset()) -> Waiter:
        if len(self.waiters) >= self.max_queued:
            raise Shed("queue_full", f"the queue of {self.max_queued} waiting requests is full")
        waiter = Waiter(asyncio.get_running_loop().create_future(), exclude)
        self.waiters.append(waiter)
        return waiter

    def abandon(self, waiter: Waiter) -> None:
        """A waiter gave up (timeout, disconnect); a slot already handed to it goes back."""
        if waiter.future.done() and not waiter.future.cancelled():
            self.release(waiter.future.result())
        else:
            waiter.future.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def release(self, backend: Backend) -> None:
        backend.inflight -= 1
        if not backend.serving and backend.inflight <= 0:
            self.leaving.pop(backend.replica_id, None)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.waiters:
            waiter = self.waiters[0]
            if waiter.future.done():
                self.waiters.popleft()
                continue
            backend = self._pick(waiter.exclude)
            if backend is None:
                return
            self.waiters.popleft()
            waiter.future.set_result(backend)

    def inflight(self) -> int:
        return sum(b.inflight for b in self.backends) + sum(
            b.inflight for b in self.leaving.values())

    def inflight_by_replica(self) -> dict[str, int]:
        counts = {b.replica_id: b.inflight for b in self.backends if b.inflight}
        counts.update({r: b.inflight for r, b in self.leaving.items() if b.inflight})
        return counts
