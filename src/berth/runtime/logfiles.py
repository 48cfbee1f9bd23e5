"""Replica log files: one JSON line per output line, `{"ts", "stream", "line"}`.

Files grow large, so reads never scan a whole file: the newest lines are read backwards
from the end in blocks, and lines after a timestamp are found by binary search over byte
offsets (each file is written in time order by one shim).
"""

from __future__ import annotations

import heapq
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from berth.runtime.base import LogLine

BLOCK = 64 * 1024


def append_line(path: Path, stream: str, line: str) -> None:
    record = {"ts": time.time(), "stream": stream, "line": line}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # private, as the shim's
    with open(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_logs(
    directory: Path, *, since: float | None, limit: int, replica_id: str | None = None,
) -> list[LogLine]:
    """Oldest-first lines with ts > since; the newest `limit` when since is None."""
    if limit <= 0 or not directory.is_dir():
        return []
    if replica_id is not None:
        paths = [directory / f"{replica_id}.log"]
    else:
        paths = sorted(directory.glob("*.log"))
    per_file: list[list[LogLine]] = []
    for path in paths:
        try:
            with path.open("rb") as f:
                if since is None:
                    per_file.append(_tail(f, path.stem, limit))
                else:
                    per_file.append(_after(f, path.stem, since, limit))
        except FileNotFoundError:
            continue
    merged = list(heapq.merge(*per_file, key=lambda line: line.ts))
    return merged[-limit:] if since is None else merged[:limit]


def _parse(raw: bytes, replica_id: str) -> LogLine | None:
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
        return LogLine(
            ts=float(record["ts"]), replica_id=replica_id,
            stream=str(record["stream"]), line=str(record["line"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _tail(f: BinaryIO, replica_id: str, limit: int) -> list[LogLine]:
    """The last `limit` valid lines, reading backwards in blocks."""
    pos = f.seek(0, os.SEEK_END)
    newest_first: list[LogLine] = []
    head = b""  # the (possibly partial) first line of what has been read so far
    while pos > 0 and len(newest_first) < limit:
        size = min(BLOCK, pos)
        pos -= size
        f.seek(pos)
        parts = (f.read(size) + head).split(b"\n")
        head = parts[0]
        _collect(reversed(parts[1:]), replica_id, newest_first, limit)
    if pos == 0:
        _collect([head], replica_id, newest_first, limit)
    newest_first.reverse()
    return newest_first


def _collect(raws: Iterable[bytes], replica_id: str, out: list[LogLine], limit: int) -> None:
    for raw in raws:
        if len(out) >= limit:
            return
        line = _parse(raw, replica_id)
        if line is not None:
            out.append(line)


def _first_record_from(f: BinaryIO, offset: int, replica_id: str) -> LogLine | None:
    """The first valid record on a line that starts at or after `offset`."""
    if offset == 0:
        f.seek(0)
    else:
        f.seek(offset - 1)
        f.readline()  # to the start of the next line
    for raw in iter(f.readline, b""):
        line = _parse(raw, replica_id)
        if line is not None:
            return line
    return None


def _after(f: BinaryIO, replica_id: str, since: float, limit: int) -> list[LogLine]:
    """The first `limit` lines with ts > since, found by binary search over offsets."""
    lo, hi = 0, f.seek(0, os.SEEK_END)
    while lo < hi:  # smallest offset whose next record is newer than since (or absent)
        mid = (lo + hi) // 2
        record = _first_record_from(f, mid, replica_id)
        if record is None or record.ts > since:
            hi = mid
        else:
            lo = mid + 1
    out: list[LogLine] = []
    first = _first_record_from(f, lo, replica_id)
    if first is None:
        return out
    if first.ts > since:
        out.append(first)
    for raw in iter(f.readline, b""):
        if len(out) >= limit:
            break
        line = _parse(raw, replica_id)
        if line is not None and line.ts > since:
            out.append(line)
    return out
