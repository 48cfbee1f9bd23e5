"""Replica log files: one JSON line per output line, `{"ts", "stream", "line"}`.

Files grow large, so reads never scan a whole file: the newest lines are read backwards
from the end in blocks, and lines after a timestamp are found by binary search over byte
offsets (each file is written in time order by one shim).

A deployment's directory also holds `.policy.json`, its `LogPolicy`: each file's one writer
(a `LogWriter`: in the process runtime's shim, or the container runtime's log follower)
reads it, so a change reaches running replicas, and discards lines when logging is off;
lines older than the retention period are pruned by rewriting the file from the first line
to keep (found by the same binary search), by the writer for its own file while it runs,
else by the runtime.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, BinaryIO

from berth.runtime.base import LogLine, LogPolicy

BLOCK = 64 * 1024
POLICY_FILE = ".policy.json"
MAX_LINE = 16 * 1024  # longer output lines are cut here
POLICY_CHECK_SECONDS = 1.0  # how often a writer looks at the policy file's mtime


def write_policy(directory: Path, policy: LogPolicy) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{POLICY_FILE}.tmp"
    tmp.write_text(json.dumps({"enabled": policy.enabled,
                               "retention_seconds": policy.retention_seconds}))
    os.replace(tmp, directory / POLICY_FILE)


def read_policy(directory: Path) -> LogPolicy:
    """The directory's policy; the default (keep everything) when there is none."""
    try:
        data = json.loads((directory / POLICY_FILE).read_text())
        retention = data.get("retention_seconds")
        return LogPolicy(bool(data.get("enabled", True)),
                         int(retention) if retention is not None else None)
    except (OSError, ValueError, TypeError, AttributeError):
        return LogPolicy()


def prune_every(policy: LogPolicy) -> float:
    """Seconds between prunes: a tenth of the retention period, within 1 s .. 60 s."""
    return min(60.0, max(1.0, (policy.retention_seconds or 600) / 10))


class LogKeeper:
    """A runtime's side of each deployment's log policy: the policy file written when the
    policy changes, and the files no running writer holds pruned, at most every
    `prune_every` seconds (each running writer prunes its own)."""

    def __init__(self) -> None:
        self._policies: dict[str, LogPolicy] = {}
        self._next_prune: dict[str, float] = {}

    def keep(self, deployment_id: str, directory: Path, policy: LogPolicy,
             writing: Callable[[], set[str]]) -> None:
        """`writing`: the replica ids whose log file a running writer holds."""
        if self._policies.get(deployment_id) != policy:
            write_policy(directory, policy)
            self._policies[deployment_id] = policy
            self._next_prune[deployment_id] = 0.0
        if policy.retention_seconds is None:
            return
        now = time.monotonic()
        if now < self._next_prune.get(deployment_id, 0.0):
            return
        self._next_prune[deployment_id] = now + prune_every(policy)
        held = writing()
        for path in directory.glob("*.log"):
            if path.stem not in held:
                prune(path, time.time() - policy.retention_seconds)

    def forget(self, deployment_id: str) -> None:
        self._policies.pop(deployment_id, None)
        self._next_prune.pop(deployment_id, None)


def prune(path: Path, older_than: float) -> None:
    """Drop the lines with ts < older_than from the file (atomically: a reader sees the old
    file or the new). Only the file's one writer may prune it."""
    try:
        with path.open("rb") as f:
            lo, hi = 0, f.seek(0, os.SEEK_END)
            while lo < hi:  # smallest offset whose next record is not older (or absent)
                mid = (lo + hi) // 2
                record = _first_record_from(f, mid, "")
                if record is None or record.ts >= older_than:
                    hi = mid
                else:
                    lo = mid + 1
            start = _line_start(f, lo)
            if start == 0:
                return
            tmp = path.with_name(path.name + ".pruning")
            f.seek(start)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                while chunk := f.read(BLOCK):
                    out.write(chunk)
            os.replace(tmp, path)
    except FileNotFoundError:
        return


def _line_start(f: BinaryIO, offset: int) -> int:
    """Where the first line starting at or after `offset` starts."""
    if offset == 0:
        return 0
    f.seek(offset - 1)
    f.readline()
    return f.tell()


def open_log(path: Path | str) -> IO[str]:
    """A log file opened for appending, created private (0600) whatever the umask."""
    return open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a",
                encoding="utf-8")


def append_line(path: Path, stream: str, line: str) -> None:
    """One line from the runtime itself; the caller checks the policy."""
    record = {"ts": time.time(), "stream": stream, "line": line}
    with open_log(path) as f:
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


class LogWriter:
    """The one writer of a replica's log file, following the deployment's policy."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._file: IO[str] = open_log(path)
        self._policy = LogPolicy()
        self._policy_mtime: int | None = None
        self._next_check = 0.0
        self._next_prune = 0.0
        self._follow_policy(time.monotonic())

    def write(self, stream: str, line: str, ts: float | None = None) -> None:
        """Append a line stamped `ts` (now when None)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._follow_policy(now)
        if not self._policy.enabled:
            return
        record = {"ts": time.time() if ts is None else ts, "stream": stream, "line": line}
        try:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError:
            pass  # a full disk loses lines; it must not orphan the command

    def tick(self) -> None:
        """Called at least once a second: a policy change or a prune is not left waiting
        for the next line."""
        now = time.monotonic()
        if now >= self._next_check:
            self._follow_policy(now)

    def _follow_policy(self, now: float) -> None:
        self._next_check = now + POLICY_CHECK_SECONDS
        try:
            mtime: int | None = os.stat(self._path.parent / POLICY_FILE).st_mtime_ns
        except OSError:
            mtime = None
        if mtime != self._policy_mtime:
            self._policy_mtime = mtime
            self._policy = read_policy(self._path.parent)
            self._next_prune = now
        retention = self._policy.retention_seconds
        if retention is not None and now >= self._next_prune:
            self._next_prune = now + prune_every(self._policy)
            self._file.close()  # the file's one writer: prune, then reopen
            with contextlib.suppress(OSError):  # a failed prune keeps the lines; no more
                prune(self._path, time.time() - retention)
            self._file = open_log(self._path)

    def close(self) -> None:
        self._file.close()


class LineSplitter:
    """Cuts a byte stream into lines; a line longer than MAX_LINE is cut there, the rest
    of it up to its newline is dropped."""

    def __init__(self, stream: str, write: Callable[[str, str], None]) -> None:
        self.stream = stream
        self._write = write
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._skipping:
                self._buf += piece[: MAX_LINE - len(self._buf)]
                if len(self._buf) >= MAX_LINE:
                    self._emit()
                    self._skipping = True
            if end < 0:
                return
            if not self._skipping:
                self._emit()
            self._skipping = False
            start = end + 1

    def finish(self) -> None:
        if self._buf:
            self._emit()

    def _emit(self) -> None:
        text = self._buf.decode("utf-8", errors="replace")
        self._buf.clear()
        self._write(self.stream, text.removesuffix("\r"))
