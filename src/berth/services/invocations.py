"""Async invocation use cases for the API and the dialects: submit one, read one, page
through them, read a result. The gateway's intake and the dispatcher are in `invocations/`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from berth.domain.errors import BerthError, Conflict, NotFound, PayloadTooLarge
from berth.domain.invocations import InvocationStatus
from berth.domain.records import Deployment
from berth.domain.status import DesiredState
from berth.invocations import rules
from berth.invocations.datasets import open_dataset
from berth.services.deployments import check_project
from berth.store.engine import Store, Tx
from berth.store.invocations import Accepted, Invocation, NewInvocation

POLL_SECONDS = 0.05  # how often `wait` reads a request's status


class BacklogFull(BerthError):
    code = "backlog_full"
    status = 429


class NoAsyncRoute(BerthError):
    code = "no_route"
    status = 404


def refused(r: rules.Refusal) -> BerthError:
    kinds: dict[int, type[BerthError]] = {409: Conflict, 413: PayloadTooLarge, 429: BacklogFull,
                                          404: NoAsyncRoute}
    return kinds.get(r.status, Conflict)(r.message, reason=r.code)


@dataclass(frozen=True)
class Page:
    total: int
    items: list[Invocation]


class InvocationService:
    def __init__(self, store: Store, data_dir: Path, clock: Callable[[], float]) -> None:
        self.store = store
        self.data_dir = data_dir
        self.clock = clock

    def _deployment(self, tx: Tx, project: str, name: str) -> Deployment:
        check_project(project)
        d = tx.deployments.by_name(project, name)
        if d is None:
            raise NotFound(f"deployment {name!r} not found in project {project!r}",
                           name=name, project=project)
        return d

    def submit(self, project: str, name: str, route: str, body: bytes, content_type: str,
               idempotency_key: str | None = None) -> Accepted:
        """One request, committed before this returns (the gateway batches its intake)."""
        with self.store.write(notify=False) as tx:
            d = self._deployment(tx, project, name)
            if d.desired == DesiredState.DELETED:
                raise Conflict(f"deployment {name!r} is being deleted", name=name)
            cfg = d.spec.async_
            path, _, query = route.partition("?")
            found = rules.target(cfg, path, query)
            if isinstance(found, rules.Refusal):
                raise refused(found)
            for check in (rules.too_large(cfg, len(body)),):
                if check is not None:
                    raise refused(check)
            pending = tx.invocations.backlog([d.id]).get(d.id)
            full = rules.backlog_full(cfg, pending.pending if pending else 0)
            if full is not None:
                raise refused(full)
            item = NewInvocation(
                id=str(uuid.uuid4()), deployment_id=d.id, project=d.project, route=found.route,
                path=found.path, content_type=content_type, body=body,
                max_attempts=cfg.max_attempts, attempt_timeout=cfg.attempt_timeout,
                result_ttl=float(cfg.result_ttl), created_at=self.clock(),
                idempotency_key=idempotency_key)
            return tx.invocations.enqueue([item])[0]

    def get(self, project: str, name: str, request_id: str) -> Invocation:
        with self.store.read() as tx:
            d = self._deployment(tx, project, name)
            found = tx.invocations.get(d.id, request_id)
        if found is None:
            raise NotFound(f"async request {request_id!r} not found in deployment {name!r}",
                           name=name, request_id=request_id)
        return found

    def page(self, project: str, name: str, *, statuses: Iterable[InvocationStatus] = (),
             since: float | None = None, until: float | None = None, offset: int = 0,
             limit: int = 100, route: str | None = None) -> Page:
        """Newest first; `route` keeps the requests sent to that route name."""
        with self.store.read() as tx:
            d = self._deployment(tx, project, name)
            total, items = tx.invocations.page(d.id, statuses=statuses, since=since,
                                               until=until, offset=offset, limit=limit,
                                               route=route)
        return Page(total, items)

    def counts(self, project: str, name: str) -> dict[InvocationStatus, int]:
        with self.store.read() as tx:
            d = self._deployment(tx, project, name)
            return tx.invocations.counts(d.id)

    def result(self, inv: Invocation) -> bytes | None:
        """The result object of a finished request (None before, or once expired)."""
        if inv.dataset is None or inv.result_path is None:
            return None
        with self.store.read() as tx:
            ds = tx.datasets.get(inv.project, inv.dataset)
        if ds is None:
            return None
        return open_dataset(ds, self.data_dir).read(inv.result_path)

    async def wait(self, project: str, name: str, request_id: str, seconds: float
                   ) -> Invocation:
        """The request once it is finished, or as it is when `seconds` have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            inv = await loop.run_in_executor(None, self.get, project, name, request_id)
            if inv.status not in InvocationStatus.pending() or loop.time() >= deadline:
                return inv
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))
