"""Intake's group commit on a real store: the backlog bound counted across one batch and
over what is stored, refusals insert nothing, idempotency keys answered with the earlier id;
and IntakeQueue answering each submission once its batch committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from berth.domain.invocations import InvocationStatus
from berth.domain.spec import AsyncConfig
from berth.invocations.intake import IntakeQueue, Submission, commit_batch
from berth.invocations.rules import Refusal
from berth.store.engine import Store
from berth.store.invocations import Accepted, Ending, NewInvocation

D1, D2 = "dep-1", "dep-2"


def item(i: str, d: str = D1, key: str | None = None) -> NewInvocation:
    return NewInvocation(id=i, deployment_id=d, project="p", route="predict", path="/predict",
                         content_type="", body=b"{}", max_attempts=3, attempt_timeout=30.0,
                         result_ttl=100.0, created_at=1.0, idempotency_key=key)


def cfg(max_backlog: int = 100) -> AsyncConfig:
    return AsyncConfig(enabled=True, max_backlog=max_backlog)


def ignore(_: Accepted | Refusal) -> None:
    pass


def sub(i: str, d: str = D1, key: str | None = None, max_backlog: int = 100) -> Submission:
    return Submission(item(i, d, key), cfg(max_backlog), ignore)


def summary(results: list[Accepted | Refusal]) -> list[str]:
    """'+id' stored, '=id' an earlier request's id, 'status code' refused."""
    return [f"{'+' if r.created else '='}{r.id}" if isinstance(r, Accepted)
            else f"{r.status} {r.code}" for r in results]


def stored(store: Store, d: str = D1) -> list[str]:
    with store.read() as tx:
        return sorted(r.id for r in tx.invocations.page(d)[1])


def test_the_bound_counts_the_batch_itself(store: Store) -> None:
    got = commit_batch(store, [sub(f"r{n}", max_backlog=3) for n in range(5)])
    assert summary(got) == ["+r0", "+r1", "+r2", "429 backlog_full", "429 backlog_full"]
    assert stored(store) == ["r0", "r1", "r2"]


def test_the_bound_counts_what_is_already_pending(store: Store) -> None:
    commit_batch(store, [sub("a", max_backlog=3), sub("b", max_backlog=3)])
    got = commit_batch(store, [sub("c", max_backlog=3), sub("d", max_backlog=3)])
    assert summary(got) == ["+c", "429 backlog_full"]
    assert stored(store) == ["a", "b", "c"]


def test_each_deployment_has_its_own_bound(store: Store) -> None:
    got = commit_batch(store, [sub("a1", max_backlog=1), sub("b1", D2, max_backlog=2),
                               sub("a2", max_backlog=1), sub("b2", D2, max_backlog=2),
                               sub("b3", D2, max_backlog=2)])
    assert summary(got) == ["+a1", "+b1", "429 backlog_full", "+b2", "429 backlog_full"]
    assert (stored(store), stored(store, D2)) == (["a1"], ["b1", "b2"])


def test_finished_requests_free_their_place(store: Store) -> None:
    commit_batch(store, [sub("a", max_backlog=1)])
    with store.write() as tx:
        [lz] = tx.invocations.lease(D1, 1, 2.0, "gw", 10.0)
    # running still counts
    assert summary(commit_batch(store, [sub("b", max_backlog=1)])) == ["429 backlog_full"]
    with store.write() as tx:
        tx.invocations.end([Ending(lz.id, lz.token, InvocationStatus.SUCCEEDED, 3.0)])
    assert summary(commit_batch(store, [sub("b", max_backlog=1)])) == ["+b"]


def test_a_batch_of_refusals_inserts_nothing(store: Store) -> None:
    commit_batch(store, [sub("a", max_backlog=1)])
    got = commit_batch(store, [sub("b", max_backlog=1), sub("c", key="k", max_backlog=1)])
    assert summary(got) == ["429 backlog_full", "429 backlog_full"]
    assert stored(store) == ["a"]


def test_idempotency_keys_are_answered_with_the_earlier_id(store: Store) -> None:
    first = commit_batch(store, [sub("a", key="k"), sub("b", key="k"), sub("c")])
    assert summary(first) == ["+a", "=a", "+c"]
    again = commit_batch(store, [sub("d", key="k"), sub("e", D2, key="k")])
    assert summary(again) == ["=a", "+e"]
    assert (stored(store), stored(store, D2)) == (["a", "c"], ["e"])


def test_a_repeat_of_a_stored_request_is_answered_even_when_the_backlog_is_full(
        store: Store) -> None:
    """A client that lost its 202 and retries with the same key gets the request id: the
    request is stored, and the retry adds nothing to the backlog."""
    commit_batch(store, [sub("a", key="k", max_backlog=2), sub("b", max_backlog=2)])
    got = commit_batch(store, [sub("a2", key="k", max_backlog=2),
                               sub("c", max_backlog=2)])
    assert summary(got) == ["=a", "429 backlog_full"]
    assert stored(store) == ["a", "b"]


def test_repeats_within_a_batch_take_one_place(store: Store) -> None:
    got = commit_batch(store, [sub("a", key="k", max_backlog=2),
                               sub("a2", key="k", max_backlog=2),
                               sub("a3", key="k", max_backlog=2),
                               sub("b", max_backlog=2), sub("c", max_backlog=2)])
    assert summary(got) == ["+a", "=a", "=a", "+b", "429 backlog_full"]
    assert stored(store) == ["a", "b"]


async def drained(q: IntakeQueue, committed: asyncio.Event) -> None:
    """Until the queue has answered all it holds (the guard only stops a hang)."""
    async with asyncio.timeout(30):
        while q.committing or q.waiting:
            committed.clear()
            await committed.wait()


def test_the_queue_answers_each_submission_after_its_commit(store: Store) -> None:
    answers: dict[str, Accepted | Refusal] = {}
    commits: list[int] = []

    def answer(i: str) -> Callable[[Accepted | Refusal], None]:
        return lambda r: answers.__setitem__(i, r)

    async def main() -> None:
        committed = asyncio.Event()

        def on_commit(*_: object) -> None:  # (main passes the deployments committed)
            commits.append(len(answers))
            committed.set()

        q = IntakeQueue(store, on_commit=on_commit)
        for i, key in (("a", "k"), ("b", "k"), ("c", None), ("d", None)):
            q.submit(Submission(item(i, key=key), cfg(max_backlog=2), answer(i)))
        assert answers == {} and q.committing  # nothing answered before the commit
        await drained(q, committed)
        assert (q.accepted, q.refused) == (2, 1)  # the repeat is neither

    asyncio.run(main())
    assert summary([answers[i] for i in "abcd"]) == ["+a", "=a", "+c", "429 backlog_full"]
    assert commits == [4]  # one batch, answered before on_commit
    assert stored(store) == ["a", "c"]


def test_a_store_that_fails_answers_503_and_the_queue_carries_on(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Accepted | Refusal] = []

    def broken(notify: bool = True) -> None:
        raise OSError("disk full")

    async def main() -> IntakeQueue:
        committed = asyncio.Event()

        def on_commit(*_: object) -> None:
            committed.set()

        q = IntakeQueue(store, on_commit=on_commit)
        with monkeypatch.context() as m:
            m.setattr(store, "write", broken)
            q.submit(Submission(item("a"), cfg(), answers.append))
            await drained(q, committed)
        q.submit(Submission(item("b"), cfg(), answers.append))  # the store is back
        await drained(q, committed)
        return q

    q = asyncio.run(main())
    failed, ok = answers
    assert isinstance(failed, Refusal) and (failed.status, failed.code) == (
        503, "store_unavailable")
    assert "disk full" in failed.message
    assert ok == Accepted("b", True) and (q.accepted, q.refused) == (1, 1)
    assert stored(store) == ["b"]
