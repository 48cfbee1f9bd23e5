"""Replica supervisor, in the style of conmon / containerd-shim.

    python -m berth.runtime.shim --log FILE --exit-file FILE -- CMD ARGS...

Runs CMD in its own process group (the shim is the group leader), appends each line the
command prints to FILE as JSON `{"ts", "stream", "line"}`, survives the group's SIGTERM so
it can record how the command ended, then writes the exit file atomically and exits with
the command's code (128 + signal for a signal death). It follows the deployment's log
policy (`.policy.json` beside FILE, re-read when it changes): lines are discarded while
logging is off, and FILE is pruned of lines older than the retention period. Stdlib and
`berth.runtime.logfiles` only: it must start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from berth.runtime.base import LogPolicy
from berth.runtime.logfiles import POLICY_FILE, open_log, prune, prune_every, read_policy

MAX_LINE = 16 * 1024
READ_SIZE = 64 * 1024
DRAIN_SECONDS = 1.0  # after the command exits, how long a daemonized child may hold the pipes
POLICY_CHECK_SECONDS = 1.0  # how often the policy file's mtime is looked at


def _ignore(signum: int, frame: object) -> None:
    """A handler rather than SIG_IGN: handlers reset on exec, so the command gets defaults."""


class _LogWriter:
    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._file: IO[str] = open_log(path)
        self._policy = LogPolicy()
        self._policy_mtime: int | None = None
        self._next_check = 0.0
        self._next_prune = 0.0
        self._follow_policy(time.monotonic())

    def write(self, stream: str, line: str) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._follow_policy(now)
        if not self._policy.enabled:
            return
        record = {"ts": time.time(), "stream": stream, "line": line}
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
            self._file.close()  # this shim is the file's one writer: prune, then reopen
            with contextlib.suppress(OSError):  # a failed prune keeps the lines; no more
                prune(self._path, time.time() - retention)
            self._file = open_log(self._path)

    def close(self) -> None:
        self._file.close()


class _LineSplitter:
    """Cuts a byte stream into lines; a line longer than MAX_LINE is cut there, the rest
    of it up to its newline is dropped."""

    def __init__(self, stream: str, log: _LogWriter) -> None:
        self.stream = stream
        self._log = log
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
        self._log.write(self.stream, text.removesuffix("\r"))


def write_exit_file(path: str, code: int, error: str) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump({"code": code, "error": error, "ts": time.time()}, f)
    os.replace(tmp, path)


def _pump(child: subprocess.Popen[bytes], log: _LogWriter) -> int:
    assert child.stdout is not None and child.stderr is not None
    sel = selectors.DefaultSelector()
    for pipe, name in ((child.stdout, "stdout"), (child.stderr, "stderr")):
        sel.register(pipe, selectors.EVENT_READ, _LineSplitter(name, log))
    deadline: float | None = None
    try:
        while sel.get_map():
            log.tick()
            for key, _ in sel.select(timeout=0.2):
                splitter: _LineSplitter = key.data
                data = os.read(key.fd, READ_SIZE)
                if data:
                    splitter.feed(data)
                else:
                    splitter.finish()
                    sel.unregister(key.fileobj)
            if deadline is None and child.poll() is not None:
                deadline = time.monotonic() + DRAIN_SECONDS
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        for key in list(sel.get_map().values()):
            key.data.finish()
        sel.close()
        child.stdout.close()
        child.stderr.close()
    return child.wait()


def run(log_path: str, exit_path: str, command: list[str]) -> int:
    log = _LogWriter(log_path)
    try:
        try:
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            code, error = 127, f"command not found: {command[0]!r}"
        except PermissionError:
            code, error = 126, f"permission denied: {command[0]!r}"
        except OSError as exc:
            code, error = 126, f"cannot execute {command[0]!r}: {exc.strerror or exc}"
        else:
            returncode = _pump(child, log)
            code = 128 - returncode if returncode < 0 else returncode
            write_exit_file(exit_path, code, "")
            return code
        log.write("berth", error)
        write_exit_file(exit_path, code, error)
        return code
    finally:
        log.close()


def _parse(argv: list[str]) -> tuple[str, str, list[str]]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] in ("--log", "--exit-file") and i + 1 < len(argv):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            raise SystemExit(f"shim: unexpected argument {argv[i]!r}")
    command = argv[i + 1:]
    if "--log" not in opts or "--exit-file" not in opts or not command:
        raise SystemExit("usage: shim --log FILE --exit-file FILE -- CMD [ARGS...]")
    return opts["--log"], opts["--exit-file"], command


def main() -> None:
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    log_path, exit_path, command = _parse(sys.argv[1:])
    sys.exit(run(log_path, exit_path, command))


if __name__ == "__main__":
    main()
