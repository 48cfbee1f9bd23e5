"""Enough of asyncio.Transport for the gateway's protocols, in memory: writes are kept."""

from __future__ import annotations

from typing import Any


class MemoryTransport:
    def __init__(self, keep: bool = True) -> None:
        self.keep = keep  # False: count writes only (the hot-path bench)
        self.writes = 0
        self.last = b""
        self.data: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data
        if self.keep:
            self.data.append(data)

    def take(self) -> bytes:
        out, self.data = b"".join(self.data), []
        return out

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
