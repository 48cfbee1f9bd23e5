"""The autoscaler's records: save_all (the loop's one write per poll) inserts and updates."""

from __future__ import annotations

from typing import Any

from berth.store.autoscaler import ScaleRecord
from berth.store.engine import Store


def record(d_id: str, desired: int, region: str = "local", **extra: Any) -> ScaleRecord:
    return ScaleRecord(deployment_id=d_id, region=region, desired=desired, current=1,
                       panic=False, decided_at=100.0, **extra)


def test_save_all_inserts_new_regions_and_replaces_known_ones(store: Store) -> None:
    with store.write() as tx:
        tx.autoscaler.save(record("d1", 1))
        tx.autoscaler.save(record("d2", 2, region="eu"))
    metrics = {"concurrency": {"value": 7.5, "target": 2.0, "age_seconds": 0.3, "wants": 4,
                               "status": "ok"}}
    with store.write() as tx:
        tx.autoscaler.save_all([
            record("d1", 4, reasons=["panic"], metrics=metrics, last_scale_at=99.0),
            record("d2", 3, region="local"),  # a new region of a known deployment
            record("d3", 1),
            record("d3", 2),  # the same region twice: the last wins
        ])
        tx.autoscaler.save_all([])
    with store.read() as tx:
        got = {(r.deployment_id, r.region): r for r in tx.autoscaler.all()}
    assert {k: r.desired for k, r in got.items()} == {
        ("d1", "local"): 4, ("d2", "eu"): 2, ("d2", "local"): 3, ("d3", "local"): 2}
    assert got[("d1", "local")] == record("d1", 4, reasons=["panic"], metrics=metrics,
                                          last_scale_at=99.0)


def test_save_all_of_a_thousand_records_is_one_write(store: Store) -> None:
    with store.write() as tx:
        tx.autoscaler.save_all(record(f"d{i}", 1) for i in range(1000))
    with store.write() as tx:
        tx.autoscaler.save_all(record(f"d{i}", i % 4 + 1) for i in range(1000))
    with store.read() as tx:
        rows = tx.autoscaler.all()
    assert len(rows) == 1000
    assert {r.deployment_id: r.desired for r in rows} == {f"d{i}": i % 4 + 1
                                                         for i in range(1000)}
