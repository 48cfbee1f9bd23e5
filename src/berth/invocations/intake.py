"""Async intake's durable half: requests handed in by the gateway are committed in batches
(group commit: one transaction for all that arrived while the previous one was writing), and
each is answered only once its transaction has committed.

The backlog bound is checked in the same transaction as the insert, so concurrent gateways
cannot together go past `max_backlog`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from berth.domain.spec import AsyncConfig
from berth.invocations import rules
from berth.store.engine import Store
from berth.store.invocations import Accepted, NewInvocation

log = logging.getLogger("berth.invocations")
MAX_BATCH = 2000  # requests per transaction


@dataclass(frozen=True)
class Submission:
    item: NewInvocation
    cfg: AsyncConfig
    answer: Callable[[Accepted | rules.Refusal], None]  # called on the event loop


def commit_batch(store: Store, batch: list[Submission]) -> list[Accepted | rules.Refusal]:
    """One transaction: refuse what would overfill a backlog, insert the rest. A repeat of a
    stored request (its idempotency key held) takes no place: it is answered its id."""
    with store.write(notify=False) as tx:
        pending = {d: b.pending for d, b in
                   tx.invocations.backlog({s.item.deployment_id for s in batch}).items()}
        held = set(tx.invocations.held_keys([s.item for s in batch]))
        results: list[Accepted | rules.Refusal | None] = []
        accepted: list[NewInvocation] = []
        for s in batch:
            d_id = s.item.deployment_id
            key = (d_id, s.item.idempotency_key) if s.item.idempotency_key else None
            if key is None or key not in held:
                full = rules.backlog_full(s.cfg, pending.get(d_id, 0))
                if full is not None:
                    results.append(full)
                    continue
                pending[d_id] = pending.get(d_id, 0) + 1
                if key is not None:
                    held.add(key)
            accepted.append(s.item)
            results.append(None)
        done = iter(tx.invocations.enqueue(accepted))
    return [r if r is not None else next(done) for r in results]


class IntakeQueue:
    """Submissions waiting for the next batch commit; one commit in flight at a time."""

    def __init__(self, store: Store,
                 on_commit: Callable[[set[str]], None] | None = None) -> None:
        self.store = store
        self.on_commit = on_commit
        self.waiting: list[Submission] = []
        self.committing = False
        self.accepted = 0  # since start, for /metrics
        self.refused = 0

    def submit(self, s: Submission) -> None:
        self.waiting.append(s)
        if not self.committing:
            self.committing = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                try:
                    results = await loop.run_in_executor(None, commit_batch, self.store, batch)
                except Exception as exc:
                    log.exception("committing %d async requests failed", len(batch))
                    unavailable = rules.Refusal(503, "store_unavailable",
                                                f"the request was not stored: {exc}")
                    results = [unavailable] * len(batch)
                for s, r in zip(batch, results, strict=True):
                    if isinstance(r, Accepted):
                        self.accepted += r.created
                    else:
                        self.refused += 1
                    s.answer(r)
                if self.on_commit is not None:
                    self.on_commit({s.item.deployment_id for s, r in zip(batch, results,
                                                                         strict=True)
                                    if isinstance(r, Accepted)})
        finally:
            self.committing = False
