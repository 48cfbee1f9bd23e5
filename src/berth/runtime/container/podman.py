"""The podman CLI, run as asyncio subprocesses: one call, its exit code and its output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class PodmanResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """What podman said went wrong: its last `Error:` line, else its last line."""
        return error_text(self.stderr)


class PodmanError(RuntimeError):
    def __init__(self, verb: str, detail: str, returncode: int | None = None) -> None:
        code = f" (exit {returncode})" if returncode is not None else ""
        super().__init__(f"podman {verb} failed{code}: {detail}")
        self.verb = verb
        self.detail = detail
        self.returncode = returncode


def error_text(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("Error: "):
            return line.removeprefix("Error: ")
    return lines[-1] if lines else ""


class Podman:
    """Runs `podman ARGS...` with a fixed environment (the server's, less Berth's own
    settings, plus `env`: e.g. CONTAINERS_CONF)."""

    def __init__(self, binary: str = "podman", env: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, cwd: Path | None = None) -> None:
        """`cwd`: where podman runs when a call names no directory (default: the root, so
        nothing it or conmon writes lands in the server's directory)."""
        self.binary = shutil.which(binary) or binary
        self.cwd = cwd or Path("/")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        self.env.update(env or {})
        self.timeout = timeout

    @property
    def available(self) -> bool:
        return os.path.isabs(self.binary) and os.access(self.binary, os.X_OK)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    async def spawn(self, *args: str, extra_env: Mapping[str, str] | None = None,
                    cwd: Path | None = None, stdout: int | None = asyncio.subprocess.PIPE,
                    stderr: int | None = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
        """`cwd`: podman's working directory, which conmon (spawned by `podman run`) keeps
        and drops files in (an `oom` file on an OOM kill, conmon 2.1)."""
        env = {**self.env, **extra_env} if extra_env else self.env
        try:
            return await asyncio.create_subprocess_exec(
                *self.argv(*args), env=env, cwd=cwd or self.cwd,
                stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        except OSError as exc:
            raise PodmanError(args[0] if args else "", f"cannot run {self.binary}: {exc}") from exc

    async def run(self, *args: str, check: bool = True, limit_s: float | None = None,
                  extra_env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> PodmanResult:
        """Run to completion; PodmanError when it fails (check) or runs past `limit_s`
        (the instance's timeout when None)."""
        proc = await self.spawn(*args, extra_env=extra_env, cwd=cwd)
        limit = self.timeout if limit_s is None else limit_s
        try:
            async with asyncio.timeout(limit):
                out, err = await proc.communicate()
        except TimeoutError:
            await kill(proc)
            raise PodmanError(args[0], f"timed out after {limit:g}s") from None
        except asyncio.CancelledError:
            await kill(proc)
            raise
        result = PodmanResult(proc.returncode if proc.returncode is not None else -1,
                              out.decode(errors="replace"), err.decode(errors="replace"))
        if check and result.returncode != 0:
            raise PodmanError(args[0], result.error or "no output", result.returncode)
        return result


async def kill(proc: asyncio.subprocess.Process) -> None:
    """Kill a podman child and reap it (it never outlives its caller)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
