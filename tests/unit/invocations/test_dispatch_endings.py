"""The dispatcher's endings of one try (Dispatcher._end / _finish) recorded on a real store:
every finished request gets an expiry, also when its result could not be written, so its
row and its idempotency key do not outlive result_ttl."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

from berth.domain.invocations import InvocationStatus, TryError
from berth.domain.spec import AsyncConfig
from berth.invocations.dispatch import Dispatcher
from berth.store.engine import Store
from berth.store.invocations import Ending, Leased, NewInvocation

if TYPE_CHECKING:
    from berth.gateway.service import Gateway
    from berth.gateway.table import Route

S = InvocationStatus
NOW, TTL = 100.0, 50.0


def stored_lease(store: Store, tries: int) -> Leased:
    with store.write() as tx:
        tx.invocations.enqueue([NewInvocation(
            id="r1", deployment_id="d1", project="p", route="predict", path="/predict",
            content_type="", body=b"{}", max_attempts=tries, attempt_timeout=5.0,
            result_ttl=TTL, created_at=0.0, idempotency_key="k")])
        [lease] = tx.invocations.lease("d1", 1, 0.0, "gw", 10.0)
    return lease


def ending(store: Store, tmp_path: Path, lease: Leased, writes: bool,
           code: int | None, error: TryError | None) -> Ending:
    async def main() -> Ending:
        gw = SimpleNamespace(loop=asyncio.get_running_loop())
        d = Dispatcher(cast("Gateway", gw), store, tmp_path, clock=lambda: NOW)
        if not writes:
            def full(project: str, dataset: str, path: str, data: bytes) -> None:
                raise OSError("no space left on device")
            d._write = full  # type: ignore[method-assign]
        route = cast("Route", SimpleNamespace(invocations=AsyncConfig(enabled=True),
                                              name="echo"))
        if code is None:
            assert error is not None
            return await d._end(lease, route, None, error, "no answer")
        return await d._finish(lease, route, code, b'{"ok":true}')

    return asyncio.run(main())


# (result written, the answer) -> the status recorded
CASES = [
    (True, 200, None, S.SUCCEEDED),
    (True, 400, None, S.FAILED),
    (True, None, TryError.TIMEOUT, S.FAILED),
    (False, 200, None, S.FAILED),  # the answer could not be stored
    (False, 400, None, S.FAILED),
    (False, None, TryError.CONNECT, S.FAILED),  # nor the {"error": ...} result
]


@pytest.mark.parametrize(("writes", "code", "error", "status"), CASES)
def test_every_last_try_ends_with_an_expiry(store: Store, tmp_path: Path, writes: bool,
                                            code: int | None, error: TryError | None,
                                            status: S) -> None:
    lease = stored_lease(store, tries=1)
    e = ending(store, tmp_path, lease, writes, code, error)
    assert e.status is status and e.expires_at == NOW + TTL
    assert (e.result_path is not None) is writes
    with store.write() as tx:
        assert tx.invocations.end([e]) == {"r1"}
    with store.write() as tx:
        assert [i.id for i in tx.invocations.expire(NOW + TTL + 1)] == ["r1"]
    with store.write() as tx:  # and the key is free again
        [again] = tx.invocations.enqueue([NewInvocation(
            id="r2", deployment_id="d1", project="p", route="predict", path="/predict",
            content_type="", body=b"{}", max_attempts=1, attempt_timeout=5.0,
            result_ttl=TTL, created_at=NOW, idempotency_key="k")])
    assert again.created


def test_a_result_write_that_fails_with_tries_left_is_retried(store: Store,
                                                              tmp_path: Path) -> None:
    lease = stored_lease(store, tries=3)
    e = ending(store, tmp_path, lease, False, 200, None)
    assert (e.status, e.next_at, e.expires_at) == (S.QUEUED, NOW + 1.0, None)
    assert e.error is not None and "no space left" in e.error
