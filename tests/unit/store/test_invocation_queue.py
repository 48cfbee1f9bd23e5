"""The async queue on a real (migrated SQLite) store: intake with idempotency keys, the
backlog, leases (order, the workers bound, lapsing, fencing), ends, expiry, and reading."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from berth.domain.invocations import InvocationStatus
from berth.store.engine import Store
from berth.store.invocations import Accepted, Backlog, Ending, Invocation, Leased, NewInvocation

S = InvocationStatus
D1, D2 = "dep-1", "dep-2"
VIS = 10.0  # lease visibility


def new(i: str, at: float = 0.0, *, d: str = D1, key: str | None = None, body: bytes = b"{}",
        ttl: float = 100.0, tries: int = 3) -> NewInvocation:
    return NewInvocation(id=i, deployment_id=d, project="p", route="predict", path="/predict",
                         content_type="application/json", body=body, max_attempts=tries,
                         attempt_timeout=30.0, result_ttl=ttl, created_at=at,
                         idempotency_key=key)


def enqueue(store: Store, items: Iterable[NewInvocation]) -> list[Accepted]:
    with store.write() as tx:
        return tx.invocations.enqueue(list(items))


def lease(store: Store, now: float, *, d: str = D1, limit: int = 10, holder: str = "gw-a"
          ) -> list[Leased]:
    with store.write() as tx:
        return tx.invocations.lease(d, limit, now, holder, VIS)


def end(store: Store, *endings: Ending) -> set[str]:
    with store.write() as tx:
        return tx.invocations.end(list(endings))


def get(store: Store, i: str, d: str = D1) -> Invocation:
    with store.read() as tx:
        inv = tx.invocations.get(d, i)
    assert inv is not None, i
    return inv


def body(store: Store, i: str) -> bytes | None:
    with store.read() as tx:
        return tx.invocations.body(i)


def backlog(store: Store, ids: Iterable[str] | None = None) -> dict[str, Backlog]:
    with store.read() as tx:
        return tx.invocations.backlog(ids)


def succeeded(lz: Leased, at: float, ttl: float = 100.0) -> Ending:
    return Ending(lz.id, lz.token, S.SUCCEEDED, at, reason="the replica answered 200",
                  status_code=200, dataset="default", result_path=f"echo/{lz.id}.json",
                  result_size=2, expires_at=at + ttl)


# -- intake -------------------------------------------------------------------------------


def test_enqueue_stores_each_request_queued_with_its_body(store: Store) -> None:
    got = enqueue(store, [new("a", 1.0, body=b'{"x":1}'), new("b", 2.0)])
    assert got == [Accepted("a", True), Accepted("b", True)]
    a = get(store, "a")
    assert (a.status, a.reason, a.attempts, a.lease_token) == (S.QUEUED, "accepted", 0, 0)
    assert (a.created_at, a.next_at, a.body_size, a.idempotency_key) == (1.0, 1.0, 7, None)
    assert (a.started_at, a.finished_at, a.lease_until, a.expires_at) == (None,) * 4
    assert body(store, "a") == b'{"x":1}'


def test_requests_without_keys_are_never_merged(store: Store) -> None:
    got = enqueue(store, [new("a"), new("b")]) + enqueue(store, [new("c")])
    assert all(g.created for g in got)
    assert backlog(store)[D1].queued == 3


# (batches of (id, deployment, key)) -> what each item is answered, in order
IDEMPOTENCY: dict[str, tuple[list[list[tuple[str, str, str | None]]], list[Accepted]]] = {
    "duplicates in one batch": (
        [[("a", D1, "k"), ("b", D1, "k"), ("c", D1, None), ("d", D1, "k")]],
        [Accepted("a", True), Accepted("a", False), Accepted("c", True),
         Accepted("a", False)]),
    "duplicates across batches": (
        [[("a", D1, "k1"), ("b", D1, "k2")], [("c", D1, "k2"), ("d", D1, "k3"),
                                              ("e", D1, "k1")]],
        [Accepted("a", True), Accepted("b", True), Accepted("b", False),
         Accepted("d", True), Accepted("a", False)]),
    "same key on different deployments": (
        [[("a", D1, "k"), ("b", D2, "k")], [("c", D2, "k"), ("d", D1, "k")]],
        [Accepted("a", True), Accepted("b", True), Accepted("b", False),
         Accepted("a", False)]),
    "two keys of one batch on two deployments": (
        [[("a", D1, "x"), ("b", D2, "y"), ("c", D2, "x"), ("d", D1, "y"), ("e", D2, "y")]],
        [Accepted("a", True), Accepted("b", True), Accepted("c", True), Accepted("d", True),
         Accepted("b", False)]),
}


@pytest.mark.parametrize("name", list(IDEMPOTENCY))
def test_idempotency_keys(store: Store, name: str) -> None:
    batches, want = IDEMPOTENCY[name]
    got: list[Accepted] = []
    for batch in batches:
        got += enqueue(store, [new(i, d=d, key=k) for i, d, k in batch])
    assert got == want
    created = {a.id for a in want if a.created}
    stored = {i for batch in batches for i, _, _ in batch}
    for i in stored:
        with store.read() as tx:
            found = tx.invocations.get(D1, i) or tx.invocations.get(D2, i)
        assert (found is not None) == (i in created), i


def test_many_keys_in_one_batch_are_looked_up_in_chunks(store: Store) -> None:
    enqueue(store, [new(f"a{n}", key=f"k{n}") for n in range(1200)])
    again = enqueue(store, [new(f"b{n}", key=f"k{n}") for n in range(1200)] + [new("c", key="new")])
    assert [a.id for a in again[:1200]] == [f"a{n}" for n in range(1200)]
    assert not any(a.created for a in again[:1200]) and again[-1] == Accepted("c", True)


# -- backlog --------------------------------------------------------------------------------


def test_backlog_counts_queued_and_running_and_the_oldest_pending(store: Store) -> None:
    assert backlog(store) == {}
    enqueue(store, [new("a", 5.0), new("b", 7.0), new("c", 9.0), new("z", 3.0, d=D2)])
    assert backlog(store) == {D1: Backlog(3, 0, 5.0), D2: Backlog(1, 0, 3.0)}
    [a] = lease(store, 10.0, limit=1)
    assert a.id == "a"
    assert backlog(store, [D1]) == {D1: Backlog(2, 1, 5.0)}  # the running one is oldest
    end(store, succeeded(a, 11.0))
    assert backlog(store, [D1]) == {D1: Backlog(2, 0, 7.0)}
    assert backlog(store, [D1])[D1].pending == 2
    assert backlog(store, []) == {}
    assert backlog(store, ["nobody"]) == {}


def test_finished_requests_leave_the_backlog(store: Store) -> None:
    enqueue(store, [new("a")])
    for lz in lease(store, 1.0):
        end(store, succeeded(lz, 2.0))
    assert backlog(store) == {}


# -- leases -----------------------------------------------------------------------------------


def test_lease_takes_the_oldest_first_up_to_the_limit(store: Store) -> None:
    # inserted out of creation order: the lease orders by created_at, not by id or insert
    enqueue(store, [new("c", 3.0), new("a", 1.0), new("d", 4.0), new("b", 2.0)])
    first = lease(store, 10.0, limit=2)
    assert [x.id for x in first] == ["a", "b"]
    assert [(x.attempt, x.token, x.body) for x in first] == [(1, 1, b"{}")] * 2
    a = get(store, "a")
    assert (a.status, a.attempts, a.started_at, a.leased_by) == (S.RUNNING, 1, 10.0, "gw-a")
    assert (a.lease_until, a.reason) == (10.0 + VIS, "try 1 running")


def test_lease_never_holds_more_than_the_limit_across_holders(store: Store) -> None:
    enqueue(store, [new(f"r{n}", float(n)) for n in range(10)])
    a = lease(store, 20.0, limit=3, holder="gw-a")
    b = lease(store, 20.0, limit=3, holder="gw-b")  # gw-a holds 3: no room
    assert (len(a), b) == (3, [])
    end(store, succeeded(a[0], 21.0))
    b = lease(store, 21.0, limit=3, holder="gw-b")
    assert [x.id for x in b] == ["r3"]  # one came free
    assert lease(store, 21.0, limit=3, holder="gw-a") == []
    assert backlog(store)[D1] == Backlog(queued=6, running=3, oldest_at=1.0)
    # the bound is per deployment: another deployment has its own
    enqueue(store, [new("other", d=D2)])
    assert [x.id for x in lease(store, 21.0, d=D2, limit=1)] == ["other"]


def test_a_retry_waits_for_next_at(store: Store) -> None:
    enqueue(store, [new("a")])
    [lz] = lease(store, 1.0)
    assert end(store, Ending("a", lz.token, S.QUEUED, 2.0, reason="retrying", status_code=503,
                             error="the replica answered 503", next_at=6.0)) == {"a"}
    a = get(store, "a")
    assert (a.status, a.next_at, a.lease_until, a.leased_by, a.status_code) == (
        S.QUEUED, 6.0, None, None, 503)
    assert lease(store, 5.9) == []
    [again] = lease(store, 6.0)
    assert (again.attempt, again.token) == (2, 2)
    assert get(store, "a").started_at == 1.0  # the first try's time is kept


def test_a_request_created_in_the_future_is_not_due(store: Store) -> None:
    enqueue(store, [new("a", 50.0)])
    assert lease(store, 49.0) == []
    assert [x.id for x in lease(store, 50.0)] == ["a"]


def test_a_lapsed_lease_is_leased_again_by_another_holder_with_a_new_token(
        store: Store) -> None:
    enqueue(store, [new("a")])
    [old] = lease(store, 1.0, holder="gw-a", limit=1)
    assert lease(store, 1.0 + VIS, holder="gw-b", limit=1) == []  # held until lease_until
    [new_lease] = lease(store, 1.0 + VIS + 0.1, holder="gw-b", limit=1)
    assert (new_lease.id, new_lease.token, new_lease.attempt) == ("a", old.token + 1, 2)
    a = get(store, "a")
    assert (a.leased_by, a.lease_until, a.status) == ("gw-b", 11.1 + VIS, S.RUNNING)


def test_a_late_end_from_the_old_holder_changes_nothing(store: Store) -> None:
    enqueue(store, [new("a")])
    [old] = lease(store, 1.0, holder="gw-a")
    [cur] = lease(store, 20.0, holder="gw-b")
    before = get(store, "a")
    assert end(store, succeeded(old, 21.0)) == set()
    assert end(store, Ending("a", old.token, S.QUEUED, 21.0, next_at=22.0)) == set()
    assert get(store, "a") == before
    assert body(store, "a") == b"{}"
    assert end(store, succeeded(cur, 22.0)) == {"a"}
    assert get(store, "a").status is S.SUCCEEDED
    # and once finished, even the right token ends nothing again
    assert end(store, Ending("a", cur.token, S.FAILED, 23.0)) == set()
    assert get(store, "a").status is S.SUCCEEDED


def test_end_records_only_the_endings_whose_lease_holds(store: Store) -> None:
    enqueue(store, [new("a"), new("b"), new("c")])
    a, b, c = lease(store, 1.0)
    got = end(store, succeeded(a, 2.0), Ending("b", b.token + 5, S.FAILED, 2.0),
              Ending("nobody", 1, S.FAILED, 2.0), Ending("c", c.token, S.FAILED, 2.0))
    assert got == {"a", "c"}
    assert get(store, "b").status is S.RUNNING


def test_renew_extends_only_the_leases_still_held(store: Store) -> None:
    enqueue(store, [new("a"), new("b")])
    a, b = lease(store, 1.0, holder="gw-a")
    with store.write() as tx:
        tx.invocations.renew([("a", a.token), ("b", b.token + 1)], 30.0)
        tx.invocations.renew([], 99.0)  # nothing held: no statement
    assert (get(store, "a").lease_until, get(store, "b").lease_until) == (30.0, 1.0 + VIS)
    # renewed: not lapsed at 20, so no one else takes it, and the bound counts it
    assert [x.id for x in lease(store, 20.0, holder="gw-b")] == ["b"]
    assert get(store, "a").leased_by == "gw-a"
    with store.write() as tx:  # a finished request is not renewed back to life
        tx.invocations.end([succeeded(a, 21.0)])
        tx.invocations.renew([("a", a.token)], 99.0)
    assert get(store, "a").lease_until is None


def test_end_of_succeeded_clears_the_body_and_keeps_the_result_fields(store: Store) -> None:
    enqueue(store, [new("a", body=b"x" * 100)])
    [lz] = lease(store, 1.0)
    end(store, succeeded(lz, 5.0, ttl=100.0))
    a = get(store, "a")
    assert (a.status, a.finished_at, a.expires_at, a.status_code) == (S.SUCCEEDED, 5.0, 105.0,
                                                                     200)
    assert (a.dataset, a.result_path, a.result_size) == ("default", "echo/a.json", 2)
    assert (a.lease_until, a.leased_by, a.body_size) == (None, None, 100)
    assert body(store, "a") is None


def test_end_of_failed_clears_the_body_too(store: Store) -> None:
    enqueue(store, [new("a")])
    [lz] = lease(store, 1.0)
    end(store, Ending("a", lz.token, S.FAILED, 2.0, reason="refused", status_code=400,
                      error="the replica answered 400", expires_at=50.0))
    a = get(store, "a")
    assert (a.status, a.error, a.expires_at) == (S.FAILED, "the replica answered 400", 50.0)
    assert body(store, "a") is None


# -- expiry and deletion ------------------------------------------------------------------------


def test_expire_marks_finished_results_past_their_time_and_frees_the_key(store: Store) -> None:
    enqueue(store, [new("a", key="k"), new("b", key="j"), new("c")])
    a, b, _c = lease(store, 1.0)
    end(store, succeeded(a, 2.0, ttl=10.0), succeeded(b, 2.0, ttl=50.0))
    with store.write() as tx:
        assert tx.invocations.expire(12.0) == []  # expires_at 12 is not past at 12
        gone = tx.invocations.expire(12.5)
    assert [g.id for g in gone] == ["a"]
    # returned as they were, for their results to be removed
    assert (gone[0].status, gone[0].result_path, gone[0].idempotency_key) == (
        S.SUCCEEDED, "echo/a.json", "k")
    a_now = get(store, "a")
    assert (a_now.status, a_now.idempotency_key) == (S.EXPIRED, None)
    assert a_now.reason == "the result outlived result_ttl"
    assert get(store, "b").status is S.SUCCEEDED
    # the key is free: a new request with it is a new request; the other key still holds
    assert enqueue(store, [new("a2", key="k"), new("b2", key="j")]) == [
        Accepted("a2", True), Accepted("b", False)]
    with store.write() as tx:  # pending requests never expire
        assert [g.id for g in tx.invocations.expire(1e9)] == ["b"]
    assert get(store, "c").status is S.RUNNING
    assert get(store, "a2").status is S.QUEUED


def test_expire_takes_the_oldest_first_up_to_its_limit(store: Store) -> None:
    enqueue(store, [new(f"r{n}") for n in range(4)])
    leased = lease(store, 1.0)
    end(store, *(succeeded(lz, 2.0, ttl=float(10 - n)) for n, lz in enumerate(leased)))
    with store.write() as tx:
        assert [g.id for g in tx.invocations.expire(100.0, limit=2)] == ["r3", "r2"]
        assert [g.id for g in tx.invocations.expire(100.0, limit=2)] == ["r1", "r0"]
        assert tx.invocations.expire(100.0) == []


def test_fail_pending_fails_the_queued_requests_of_one_deployment(store: Store) -> None:
    enqueue(store, [new("running", 0.0), new("q1", 1.0, ttl=30.0), new("q2", 2.0),
                    new("other", d=D2)])
    assert [x.id for x in lease(store, 0.0, limit=1)] == ["running"]  # left to its try
    with store.write() as tx:
        assert tx.invocations.fail_pending(D1, 5.0, "the deployment was deleted") == 2
    q2 = get(store, "q2")
    assert (q2.status, q2.reason, q2.error) == (S.FAILED, "the deployment was deleted",
                                                "the deployment was deleted")
    assert (q2.finished_at, q2.expires_at) == (5.0, 105.0)
    assert get(store, "q1").expires_at == 35.0  # each by its own result_ttl
    assert get(store, "running").status is S.RUNNING
    assert get(store, "other", D2).status is S.QUEUED
    assert body(store, "q2") is None
    with store.write() as tx:  # they expire like any finished request
        assert [g.id for g in tx.invocations.expire(106.0)] == ["q1", "q2"]
        assert tx.invocations.fail_pending(D1, 6.0, "again") == 0


# -- reading ---------------------------------------------------------------------------------


def test_get_is_scoped_to_the_deployment(store: Store) -> None:
    enqueue(store, [new("a")])
    with store.read() as tx:
        assert tx.invocations.get(D2, "a") is None
        assert tx.invocations.get(D1, "nobody") is None
        assert tx.invocations.body("nobody") is None


@pytest.fixture
def paged(store: Store) -> Store:
    """r0..r9 created at 0..9; r0, r1 leased; r0 succeeded; r9 on another deployment."""
    enqueue(store, [new(f"r{n}", float(n)) for n in range(9)] + [new("r9", 9.0, d=D2)])
    r0, _r1 = lease(store, 100.0, limit=2)
    end(store, succeeded(r0, 101.0))
    return store


# (statuses, since, until, offset, limit) -> (total, ids)
PAGES: list[tuple[list[S], float | None, float | None, int, int, int, list[str]]] = [
    ([], None, None, 0, 100, 9, [f"r{n}" for n in range(8, -1, -1)]),  # newest first
    ([], None, None, 0, 3, 9, ["r8", "r7", "r6"]),
    ([], None, None, 3, 3, 9, ["r5", "r4", "r3"]),
    ([], None, None, 8, 3, 9, ["r0"]),
    ([], None, None, 20, 3, 9, []),
    ([S.QUEUED], None, None, 0, 100, 7, ["r8", "r7", "r6", "r5", "r4", "r3", "r2"]),
    ([S.RUNNING], None, None, 0, 100, 1, ["r1"]),
    ([S.SUCCEEDED, S.RUNNING], None, None, 0, 100, 2, ["r1", "r0"]),
    ([S.FAILED, S.EXPIRED], None, None, 0, 100, 0, []),
    ([], 3.0, None, 0, 100, 6, ["r8", "r7", "r6", "r5", "r4", "r3"]),  # since: included
    ([], None, 3.0, 0, 100, 3, ["r2", "r1", "r0"]),  # until: left out
    ([], 2.0, 5.0, 0, 100, 3, ["r4", "r3", "r2"]),
    ([], 2.0, 5.0, 1, 1, 3, ["r3"]),
    ([S.QUEUED], 0.0, 4.0, 0, 100, 2, ["r3", "r2"]),
    ([], 5.0, 5.0, 0, 100, 0, []),
]


@pytest.mark.parametrize(("statuses", "since", "until", "offset", "limit", "total", "ids"),
                         PAGES)
def test_page(paged: Store, statuses: list[S], since: float | None, until: float | None,
              offset: int, limit: int, total: int, ids: list[str]) -> None:
    with paged.read() as tx:
        got_total, rows = tx.invocations.page(D1, statuses=statuses, since=since,
                                              until=until, offset=offset, limit=limit)
    assert (got_total, [r.id for r in rows]) == (total, ids)


def test_page_breaks_ties_of_creation_time_by_id(store: Store) -> None:
    enqueue(store, [new("b", 1.0), new("c", 1.0), new("a", 1.0)])
    with store.read() as tx:
        assert [r.id for r in tx.invocations.page(D1)[1]] == ["a", "b", "c"]


def test_counts_by_status(paged: Store) -> None:
    with paged.read() as tx:
        assert tx.invocations.counts(D1) == {S.QUEUED: 7, S.RUNNING: 1, S.SUCCEEDED: 1}
        assert tx.invocations.counts(D2) == {S.QUEUED: 1}
        assert tx.invocations.counts("nobody") == {}
