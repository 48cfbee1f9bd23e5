"""The gateway's access log: one JSON line per request, formatted on the hot path, written in
batches.

Formatting is the costly part (a `%`-format of a dozen fields took longer than routing the
request), so a line is one concatenation of ready strings: numbers go through integer
arithmetic and a table of zero-padded thousandths, the wall-clock stamp is reused within the
same millisecond, and the quoted forms of paths are kept (bounded) since a deployment sees the
same few paths again and again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Final

_THOUSANDTHS: Final = tuple(f"{i:03d}" for i in range(1000))
MAX_CACHED_PATHS: Final = 4096
FLUSH_LINES: Final = 1024


def quoted(raw: bytes) -> str:
    """A JSON string of bytes from the wire (escaped: paths and ids are client input)."""
    if raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable() and '"' not in text and "\\" not in text:
            return '"' + text + '"'  # the common case needs no escaping
    return json.dumps(raw.decode("utf-8", "replace"))


def millis(seconds: float) -> str:
    """Seconds as milliseconds with three decimals (microseconds), without float formatting."""
    us = int(seconds * 1_000_000)
    return str(us // 1000) + "." + _THOUSANDTHS[us % 1000]


class AccessLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = []
        self._paths: dict[bytes, str] = {}
        self._stamp = ""
        self._stamp_at = -1.0  # monotonic time of _stamp

    def add(self, now: float, request_id: str, client: str, method: str, path: bytes,
            names: str, replica: str, status: int, duration: float, ttfb: float | None,
            key: str, source: str) -> None:
        """One line. `request_id`, `names`, `replica` and `key` come as JSON already."""
        if self.path is None:
            return
        if now - self._stamp_at >= 0.001:
            self._stamp_at = now
            ms = int(time.time() * 1000)
            self._stamp = str(ms // 1000) + "." + _THOUSANDTHS[ms % 1000]
        path_json = self._paths.get(path)
        if path_json is None:
            path_json = quoted(path)
            if len(self._paths) < MAX_CACHED_PATHS:
                self._paths[path] = path_json
        ttfb_ms = "null" if ttfb is None else millis(ttfb)
        self.lines.append(
            f'{{"ts":{self._stamp},"id":{request_id},"client":"{client}","method":"{method}",'
            f'"path":{path_json},{names},"replica":{replica},"status":{status},'
            f'"ms":{millis(duration)},"ttfb_ms":{ttfb_ms},"key":{key},"source":"{source}"}}')
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.lines or self.path is None:
            return
        lines, self.lines = self.lines, []
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # private
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
