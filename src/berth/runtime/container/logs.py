"""A container's output, followed into Berth's log file (the `logfiles` format).

Containers run with podman's `k8s-file` log driver: conmon writes each piece of output it
reads as a line "<RFC3339Nano time> <stdout|stderr> <P|F> <text>" to the container's log
file, P marking a part of a line, F its final part. The follower reads that file as it grows
(`podman logs --timestamps` prints the same file but drops the P/F marks, so a line the
program wrote in pieces, as an unbuffered `print` does, comes out run together with the
times of its pieces). Each line keeps the time conmon read its last piece, its stream, and
the deployment's log policy (a `LogWriter`). A follower started again (after a server
restart) skips what the Berth file already holds. conmon replacing the file when it reaches
its size limit (`--log-opt max-size`) is followed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from berth.runtime.container.exits import exec_failure
from berth.runtime.logfiles import MAX_LINE, LogWriter, read_logs

READ_SIZE = 256 * 1024
BURST = 4 * 1024 * 1024  # read at most this much before letting others run
POLL_MIN, POLL_MAX = 0.05, 0.5  # seconds between looks at a quiet file
_SEEK_ABOVE = 8 * 1024 * 1024  # a file this large is searched for where to resume
_SEEK_MARGIN = 256 * 1024  # resume this far before that place: partial lines are whole


def parse_stamp(text: bytes) -> float | None:
    try:
        return datetime.fromisoformat(text.decode("ascii")).timestamp()
    except (ValueError, UnicodeDecodeError):
        return None


def parse_record(raw: bytes) -> tuple[float, str, bool, bytes] | None:
    """(time, stream, final, text) of one k8s-file line; None for anything else."""
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    ts = parse_stamp(parts[0])
    if ts is None:
        return None
    return ts, parts[1].decode(), parts[2] != b"P", parts[3] if len(parts) > 3 else b""


def last_stamps(path: Path) -> tuple[float | None, float]:
    """(the time of the container's last line in the file, of the file's last line)."""
    lines = read_logs(path.parent, since=None, limit=200, replica_id=path.stem)
    stamps = [line.ts for line in lines if line.stream != "berth"]
    return (max(stamps) if stamps else None), max((line.ts for line in lines), default=0.0)


class LogFollower:
    def __init__(self, source: Path | None, path: Path) -> None:
        """`source`: podman's log file for the container; `path`: Berth's."""
        self.source = source
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # lines up to `after` are in the file already; `_written`: the newest line's ts,
        # which a line never goes below, so the file stays in time order
        self.after, self._written = last_stamps(path)
        self.writer = LogWriter(str(path))
        self.exec_error: str | None = None  # catatonit could not exec the command: why
        self._last_container: float | None = None  # the time of the last line recorded
        self._file: BinaryIO | None = None
        self._rest = b""  # the start of a line not yet complete
        self._pieces: dict[str, bytearray] = {}  # per stream: a line in parts
        self._skipping: set[str] = set()  # streams whose current line was recorded before
        self._finishing = False
        self._wake: asyncio.Event | None = None  # set to end a wait between looks
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._finishing = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._follow())

    def finish(self) -> None:
        """The container has exited: read what is left, then stop."""
        self._finishing = True
        if self._wake is not None:
            self._wake.set()

    def note(self, line: str) -> None:
        """A line from Berth itself (e.g. why the container ended)."""
        self._write("berth", line, time.time())

    async def wait(self, seconds: float) -> None:
        """Until the follower has stopped (or `seconds` pass)."""
        task = self._task
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(seconds):
                    await asyncio.shield(task)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:
        self._close_source()
        self.writer.close()

    async def _follow(self) -> None:
        delay = POLL_MIN
        try:
            while True:
                self.writer.tick()
                if self.read_available():
                    delay = POLL_MIN
                    await asyncio.sleep(0)
                    continue
                if self._finishing or not self._reopen_if_replaced():
                    break
                if self._wake is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                delay = min(delay * 2, POLL_MAX)
        finally:
            self._flush_pieces()

    def read_available(self) -> bool:
        """Read and record what the source holds beyond what was read; whether any was."""
        if self._file is None and not self._open_source():
            return False
        assert self._file is not None
        got = 0
        while got < BURST and (data := self._file.read(READ_SIZE)):
            got += len(data)
            *lines, self._rest = (self._rest + data).split(b"\n")
            for raw in lines:
                self._record(raw)
        return got > 0

    def _open_source(self) -> bool:
        if self.source is None:
            return False
        try:
            self._file = self.source.open("rb")
        except OSError:
            return False
        if self.after is not None:
            _seek_near(self._file, self.after)
        return True

    def _reopen_if_replaced(self) -> bool:
        """False when the source is gone; a source replaced (rotated) is read anew."""
        if self.source is None:
            return False
        try:
            current = os.stat(self.source)
        except OSError:
            return not self._finishing and self._file is None  # not made yet, or gone
        if self._file is not None:
            mine = os.fstat(self._file.fileno())
            if (mine.st_ino, mine.st_dev) != (current.st_ino, current.st_dev) or (
                    current.st_size < self._file.tell()):
                self._close_source()
                self._rest = b""
                self.after = self._last_container or self.after
        return True

    def _close_source(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _record(self, raw: bytes) -> None:
        record = parse_record(raw)
        if record is None:
            return
        ts, stream, final, text = record
        if stream not in self._pieces and stream not in self._skipping and (
                self.after is not None and ts <= self.after):
            self._skipping.add(stream)  # recorded before a restart
        if stream in self._skipping:
            if final:
                self._skipping.discard(stream)
            return
        pieces = self._pieces.setdefault(stream, bytearray())
        pieces += text[: MAX_LINE - len(pieces)]
        if final:
            del self._pieces[stream]
            self._emit(stream, ts, pieces)

    def _flush_pieces(self) -> None:
        for stream, pieces in list(self._pieces.items()):
            self._emit(stream, self._written, pieces)
        self._pieces.clear()

    def _emit(self, stream: str, ts: float, data: bytearray) -> None:
        line = data.decode("utf-8", errors="replace").removesuffix("\r")
        self._last_container = ts
        if stream == "stderr" and (strerror := exec_failure(line)) is not None:
            self.exec_error = strerror
        self._write(stream, line, ts)

    def _write(self, stream: str, line: str, ts: float) -> None:
        self._written = max(self._written, ts)
        self.writer.write(stream, line, self._written)


def _seek_near(f: BinaryIO, after: float) -> None:
    """Start a large file a little before its first line newer than `after` (its lines are
    in time order); a small one from its start. Older lines are skipped as they are read."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size <= _SEEK_ABOVE:
        return
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()
        record = parse_record(f.readline().rstrip(b"\n"))
        if record is None or record[0] > after:
            hi = mid
        else:
            lo = mid + 1
    start = max(0, lo - _SEEK_MARGIN)
    f.seek(start)
    if start:
        f.readline()  # to a line's start
