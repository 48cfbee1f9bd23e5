import asyncio

import pytest

from berth.gateway.balancer import Balancer, Shed

REPLICAS = [("a", "127.0.0.1", 1), ("b", "127.0.0.1", 2), ("c", "127.0.0.1", 3)]


def balancer(cap: int | None = None, max_queued: int = 10) -> Balancer:
    b = Balancer(seed=7)
    b.update(REPLICAS, cap, max_queued)
    return b


def test_power_of_two_choices_prefers_the_less_loaded() -> None:
    b = balancer()
    b.backends[0].inflight = 5
    b.backends[1].inflight = 5
    picks = [b.try_acquire() for _ in range(30)]
    assert all(p is not None for p in picks)
    # c started empty; it takes the load until it catches up with a and b
    assert max(x.inflight for x in b.backends) - min(x.inflight for x in b.backends) <= 2


def test_pick_and_count_are_one_step_and_cap_is_hard() -> None:
    b = balancer(cap=1)
    got = [b.try_acquire() for _ in range(3)]
    assert {g.replica_id for g in got if g} == {"a", "b", "c"}
    assert b.try_acquire() is None
    assert all(x.inflight == 1 for x in b.backends)


def test_queue_is_fifo_bounded_and_released_slots_go_to_waiters() -> None:
    async def run() -> None:
        b = balancer(cap=1, max_queued=2)
        slots = [b.try_acquire() for _ in range(3)]
        first, second = b.enqueue(), b.enqueue()
        with pytest.raises(Shed) as info:
            b.enqueue()
        assert info.value.reason == "queue_full"
        assert b.try_acquire() is None  # waiters come first
        assert slots[1] is not None
        b.release(slots[1])
        assert (await first.future).replica_id == slots[1].replica_id
        assert not second.future.done()
        b.abandon(second)
        assert not b.waiters
    asyncio.run(run())


def test_abandoning_a_served_waiter_returns_its_slot() -> None:
    async def run() -> None:
        b = balancer(cap=1)
        slots = [b.try_acquire() for _ in range(3)]
        waiter = b.enqueue()
        assert slots[0] is not None
        b.release(slots[0])
        assert waiter.future.done()
        b.abandon(waiter)  # e.g. the client left just as it was served
        assert sum(x.inflight for x in b.backends) == 2
    asyncio.run(run())


def test_update_keeps_counters_and_remembers_leaving_replicas_until_idle() -> None:
    b = balancer()
    slot = b.try_acquire(frozenset({"b", "c"}))
    assert slot is not None and slot.replica_id == "a"
    b.update(REPLICAS[1:], None, 10)  # a leaves the table while busy
    assert [x.replica_id for x in b.backends] == ["b", "c"]
    assert b.inflight_by_replica() == {"a": 1}
    assert all(b.try_acquire().replica_id != "a" for _ in range(5))  # type: ignore[union-attr]
    b.release(slot)
    assert "a" not in b.leaving


def test_exclude_skips_a_failed_replica() -> None:
    b = balancer()
    for _ in range(10):
        got = b.try_acquire(frozenset({"a", "b"}))
        assert got is not None and got.replica_id == "c"
        b.release(got)
    assert b.try_acquire(frozenset({"a", "b", "c"})) is None


def test_no_replicas_means_no_slot() -> None:
    b = Balancer()
    assert b.try_acquire() is None and b.inflight() == 0


def test_picks_spread_evenly_over_equally_loaded_replicas() -> None:
    for seed in (0, 1, 7, 2**31 - 1):
        b = Balancer(seed=seed)
        b.update(REPLICAS, None, 10)
        counts = {r[0]: 0 for r in REPLICAS}
        for _ in range(3000):
            picked = b.try_acquire()
            assert picked is not None
            counts[picked.replica_id] += 1
            b.release(picked)
        assert all(800 < n < 1200 for n in counts.values()), (seed, counts)
