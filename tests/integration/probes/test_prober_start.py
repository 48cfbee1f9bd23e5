"""A replica's start is noticed when its port opens, not a startup period later."""

from __future__ import annotations

import asyncio
import socket

import httpx

from berth.domain.spec import HttpGetAction, Probe, Probes
from berth.probes.checks import ProbeTarget
from berth.probes.prober import ReplicaProber


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


def prober(port: int, http: httpx.AsyncClient, period: float, changed: asyncio.Event,
           path: str = "/healthz") -> ReplicaProber:
    probes = Probes(startup=Probe(http_get=HttpGetAction(path=path), period_seconds=period,
                                  failure_threshold=100))
    return ReplicaProber(probes, ProbeTarget("127.0.0.1", port, 8080), http,
                         on_change=changed.set)


def test_the_startup_check_runs_as_soon_as_the_port_opens() -> None:
    async def scenario() -> float:
        port, changed = free_port(), asyncio.Event()
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient() as http:
            p = prober(port, http, period=5.0, changed=changed)  # a check every 5 s
            p.start()
            await asyncio.sleep(0.2)  # the first check failed: the next is 5 s away
            assert not p.verdict().started
            opened = loop.time()
            server = await asyncio.start_server(healthz, "127.0.0.1", port)
            try:
                await asyncio.wait_for(changed.wait(), 3)
                noticed = loop.time() - opened
                assert p.verdict().started
            finally:
                await p.stop()
                server.close()
                await server.wait_closed()
        return noticed

    assert asyncio.run(scenario()) < 1.0


def test_once_the_port_has_opened_probes_keep_their_period() -> None:
    """An open port whose checks fail (wrong path) is not checked again and again."""
    async def scenario() -> int:
        port, changed = free_port(), asyncio.Event()
        hits = 0

        async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal hits
            hits += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n"
                         b"connection: close\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(not_found, "127.0.0.1", port)
        async with httpx.AsyncClient() as http:
            p = prober(port, http, period=5.0, changed=changed, path="/missing")
            p.start()
            await asyncio.sleep(0.5)
            await p.stop()
        server.close()
        await server.wait_closed()
        return hits

    # The first check, then at most the one early check the opened port allows.
    assert asyncio.run(scenario()) <= 3


def test_with_no_startup_probe_liveness_counts_only_once_the_port_has_opened() -> None:
    """A server still loading is not a dead one: liveness failing before the replica ever
    listened would kill every slow start (a crash loop of replicas that never got to listen)."""
    async def scenario() -> tuple[bool, bool, bool]:
        port, changed = free_port(), asyncio.Event()
        live = Probe(http_get=HttpGetAction(path="/healthz"), period_seconds=0.1,
                     failure_threshold=2)
        async with httpx.AsyncClient() as http:
            p = ReplicaProber(Probes(liveness=live), ProbeTarget("127.0.0.1", port, 8080), http,
                              on_change=changed.set)
            p.start()
            await asyncio.sleep(0.6)  # six liveness periods with nothing listening
            failed_before = p.verdict().liveness_failed
            server = await asyncio.start_server(healthz, "127.0.0.1", port)
            try:
                await asyncio.sleep(0.3)
                failed_while_up = p.verdict().liveness_failed
                server.close()
                await server.wait_closed()
                await asyncio.sleep(0.5)  # it listened once: now a closed port is a failure
                failed_after = p.verdict().liveness_failed
            finally:
                await p.stop()
        return failed_before, failed_while_up, failed_after

    assert asyncio.run(scenario()) == (False, False, True)
