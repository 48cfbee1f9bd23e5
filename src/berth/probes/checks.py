"""The three probe actions, run for real: HTTP GET, TCP connect, exec."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from berth.domain.spec import Probe


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    port: int  # where the replica really listens
    listening_port: int  # the port the spec talks about; probes naming it mean `port`
    env: dict[str, str] = field(default_factory=dict)
    # A replica in a container: the argv that runs an exec probe's command inside it
    # (`podman exec <container> ...`); an empty prefix runs it on the host.
    exec_prefix: tuple[str, ...] = ()

    def map_port(self, port: int | None) -> int:
        return self.port if port is None or port == self.listening_port else port


async def run_check(probe: Probe, target: ProbeTarget, http: httpx.AsyncClient) -> tuple[bool, str]:
    timeout = probe.timeout_seconds
    try:
        if probe.http_get is not None:
            action = probe.http_get
            host = action.host or target.host
            url = f"{action.schema_.lower()}://{host}:{target.map_port(action.port)}{action.path}"
            response = await http.get(url, headers=action.headers, timeout=timeout)
            ok = 200 <= response.status_code < 400
            return ok, f"GET {action.path} -> {response.status_code}"
        if probe.tcp_socket is not None:
            port = target.map_port(probe.tcp_socket.port)
            await tcp_connect(target.host, port, timeout)
            return True, f"tcp {port} open"
        if probe.exec is not None:
            return await _exec([*target.exec_prefix, *probe.exec.command], target.env,
                               timeout, shown=probe.exec.command[0])
    except (httpx.HTTPError, OSError) as exc:
        return False, f"{type(exc).__name__}: {exc}".rstrip(": ")
    except TimeoutError:
        return False, f"timed out after {timeout}s"
    return False, "probe has no action"


async def tcp_connect(host: str, port: int, limit_s: float) -> None:
    """Open and close a TCP connection; OSError or TimeoutError when it cannot be made.

    Timed with `asyncio.timeout`, never `asyncio.wait_for`: on Python 3.11, `wait_for` loses
    a cancellation that arrives as the connection completes (on loopback, often), and a
    cancelled prober then runs on, with whoever awaits it waiting forever."""
    async with asyncio.timeout(limit_s):
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()


async def _exec(command: list[str], env: dict[str, str], limit_s: float,
                shown: str | None = None) -> tuple[bool, str]:
    shown = shown or command[0]
    proc = await asyncio.create_subprocess_exec(
        *command, env=env or None, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        async with asyncio.timeout(limit_s):  # not wait_for: see tcp_connect
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"exec {shown} timed out after {limit_s}s"
    text = out.decode(errors="replace").strip()[-200:]
    return proc.returncode == 0, f"exec {shown} exited {proc.returncode}" + (
        f": {text}" if text and proc.returncode else "")
