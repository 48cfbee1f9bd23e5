"""Named counters, advanced in one atomic SQL statement.

`INSERT ... ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`:
the first use creates the row, every later one increments it in place, and the value comes
back from the same statement. No read-then-write window, so two writers never get the same
value — without relying on SQLite's BEGIN IMMEDIATE, and under PostgreSQL's READ COMMITTED
(the second writer waits on the row lock and then increments the committed value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from berth.store.schema import counters as c

_UPSERTS: dict[str, Callable[[Any], Any]] = {"sqlite": sqlite.insert,
                                             "postgresql": postgresql.insert}


def increment_statement(dialect: str, name: str) -> Any:
    """The one statement that adds one to the counter `name` and returns the new value."""
    insert = _UPSERTS.get(dialect)
    if insert is None:
        raise RuntimeError(f"counters need INSERT ... ON CONFLICT; the store supports SQLite "
                           f"and PostgreSQL, not {dialect}")
    return (insert(c).values(name=name, value=1)
            .on_conflict_do_update(index_elements=[c.c.name], set_={"value": c.c.value + 1})
            .returning(c.c.value))


def increment(conn: Connection, name: str) -> int:
    """Add one to the counter `name` (created at 1) and return its new value."""
    return int(conn.execute(increment_statement(conn.dialect.name, name)).scalar_one())


def value(conn: Connection, name: str) -> int:
    """The counter's current value (0 before its first use)."""
    row = conn.execute(select(c.c.value).where(c.c.name == name)).first()
    return int(row.value) if row else 0
