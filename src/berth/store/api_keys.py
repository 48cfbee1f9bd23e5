"""API key rows (secrets stored as SHA-256 digests)."""

from __future__ import annotations

from sqlalchemy import Connection


class ApiKeyRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
