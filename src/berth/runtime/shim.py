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

import json
import os
import selectors
import signal
import subprocess
import sys
import time

from berth.runtime.logfiles import LineSplitter, LogWriter

READ_SIZE = 64 * 1024
DRAIN_SECONDS = 1.0  # after the command exits, how long a daemonized child may hold the pipes


def _ignore(signum: int, frame: object) -> None:
    """A handler rather than SIG_IGN: handlers reset on exec, so the command gets defaults."""


def write_exit_file(path: str, code: int, error: str) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump({"code": code, "error": error, "ts": time.time()}, f)
    os.replace(tmp, path)


def _pump(child: subprocess.Popen[bytes], log: LogWriter) -> int:
    assert child.stdout is not None and child.stderr is not None
    sel = selectors.DefaultSelector()
    for pipe, name in ((child.stdout, "stdout"), (child.stderr, "stderr")):
        sel.register(pipe, selectors.EVENT_READ, LineSplitter(name, log.write))
    deadline: float | None = None
    try:
        while sel.get_map():
            log.tick()
            for key, _ in sel.select(timeout=0.2):
                splitter: LineSplitter = key.data
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
    log = LogWriter(log_path)
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
