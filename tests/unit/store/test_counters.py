"""Counters (the routing version, dialect ids) advance atomically: concurrent writers on a
SQLite file never get the same value, the values are consecutive, and the statement is one
INSERT ... ON CONFLICT ... RETURNING on PostgreSQL too."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite

from berth.store.counters import increment_statement
from berth.store.dialect_records import DialectRecordRepo
from berth.store.engine import Store
from berth.store.routing import RoutingRepo

THREADS, EACH = 4, 25
Bump = Callable[[Connection], int]
BUMPS: dict[str, Bump] = {
    "routing": lambda conn: RoutingRepo(conn).bump(),
    "dialect": lambda conn: DialectRecordRepo(conn).next_number("tir", "endpoint"),
}


def test_values_are_consecutive_and_counters_independent(store: Store) -> None:
    with store.write() as tx:
        assert tx.routing.version() == 0
        assert [tx.routing.bump() for _ in range(3)] == [1, 2, 3]
        assert [tx.dialect_records.next_number("tir", "a") for _ in range(2)] == [1, 2]
        assert tx.dialect_records.next_number("tir", "b") == 1
        assert tx.routing.version() == 3
    with store.read() as tx:
        assert tx.routing.version() == 3


def _slow_reads(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """Widen any read-then-write window on a counter, as a busy disk or host would."""
    if statement.lstrip().upper().startswith("SELECT") and "counters" in statement:
        time.sleep(0.02)


@pytest.mark.parametrize("kind", list(BUMPS))
@pytest.mark.parametrize("begin", ["deferred", "immediate"])
def test_concurrent_bumps_never_repeat_a_value(store: Store, kind: str, begin: str) -> None:
    """`deferred`: plain BEGIN, so nothing but the statement itself keeps it atomic (as on
    PostgreSQL, where no writer lock is taken up front); `immediate`: the store's writers."""
    event.listen(store.engine, "after_cursor_execute", _slow_reads)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS, timeout=30)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(EACH):
                if begin == "immediate":
                    with store.write(notify=False) as tx:
                        value = BUMPS[kind](tx.conn)
                else:
                    with store.engine.connect() as conn, conn.begin():
                        value = BUMPS[kind](conn)
                with lock:
                    got.append(value)
        except BaseException as exc:  # reported below, with the values seen
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    event.remove(store.engine, "after_cursor_execute", _slow_reads)
    assert not errors, errors[0]
    assert sorted(got) == list(range(1, THREADS * EACH + 1))


DIALECTS = [sqlite.dialect(), postgresql.dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", DIALECTS, ids=["sqlite", "postgresql"])
def test_one_atomic_statement_on_each_backend(dialect: Any) -> None:
    sql = " ".join(str(increment_statement(dialect.name, "routing").compile(
        dialect=dialect)).split())
    assert sql.startswith("INSERT INTO counters (name, value) VALUES")
    assert "ON CONFLICT (name) DO UPDATE SET value = (counters.value +" in sql
    assert re.search(r"RETURNING (counters\.)?value$", sql), sql


def test_an_unsupported_backend_is_refused() -> None:
    with pytest.raises(RuntimeError, match="SQLite and PostgreSQL, not mysql"):
        increment_statement("mysql", "routing")
