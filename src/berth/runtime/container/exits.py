"""How a container ended, where podman does not say.

OOM kills: `podman inspect`'s State.OOMKilled is read first, but with podman 4.3 and conmon
2.1 it stays false (exit 137, no event): conmon sees the kill and writes its `oom` file into
its working directory, not where podman looks. So the runtime runs `podman run` (whose
conmon keeps its directory) in a directory of the replica's own and looks for `oom` there.
Last, the kernel logs each kill naming the memory cgroup, which for a podman container ends
in `libpod-<container id>`: an exit 137 is an OOM kill when /dev/kmsg holds an `oom-kill:`
record naming that cgroup (for containers whose conmon ran elsewhere).

Commands that cannot run: with `--init`, catatonit runs the command, and when the exec
fails it prints "failed to exec pid1: <strerror>" and exits 1. That becomes exit 127
(not found) or 126 (cannot execute), as a shell and the process runtime report it.
"""

from __future__ import annotations

import contextlib
import os
import re

KMSG = "/dev/kmsg"
_READ = 8192
_EXEC_FAILED = re.compile(r"^ERROR \(catatonit:\d+\): failed to exec pid1: (.+)$")


def kernel_logged_oom_kill(container_id: str, kmsg: str = KMSG) -> bool:
    """Whether the kernel's log holds an OOM kill in the container's memory cgroup."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", container_id):
        return False
    needle = f"libpod-{container_id}".encode()
    try:
        fd = os.open(kmsg, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        while True:
            try:
                record = os.read(fd, _READ)  # from /dev/kmsg: one record per read
            except BlockingIOError:
                return False  # read to the end
            except BrokenPipeError:
                continue  # that record was overwritten meanwhile: the next one
            except OSError:
                return False
            if not record:
                return False
            for line in record.splitlines():  # "prio,seq,usec,flags;message" (+ " KEY=v")
                _, _, message = line.partition(b";")
                if message.startswith(b"oom-kill:") and needle in message:
                    return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def exec_failure(line: str) -> str | None:
    """The strerror in catatonit's "failed to exec pid1" line, else None."""
    found = _EXEC_FAILED.match(line.strip())
    return found.group(1) if found else None


def exec_exit(strerror: str, command: str) -> tuple[int, str]:
    """(exit code, error) for a command catatonit could not exec."""
    if "No such file or directory" in strerror:
        return 127, f"command not found: {command}"
    if "Permission denied" in strerror:
        return 126, f"permission denied: {command}"
    return 126, f"cannot execute {command}: {strerror}"
