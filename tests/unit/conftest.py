"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.store.engine import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in the test's own directory."""
    s = Store(f"sqlite:///{tmp_path / 'b.db'}")
    s.migrate()
    yield s
    s.close()
