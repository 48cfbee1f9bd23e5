"""A prober always stops when told to: the controller awaits it inside its tick.

Python 3.11's `asyncio.wait_for` loses a cancellation that arrives as the awaited connect
completes; a prober polling a replica's port every 20 ms then ran on, and the controller,
awaiting its end, stopped ticking for good (replicas stuck draining, orphans at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import random

import httpx
import pytest

from berth.domain.spec import Probe, Probes, TcpSocketAction
from berth.probes import prober as prober_module
from berth.probes.checks import ProbeTarget, tcp_connect
from berth.probes.prober import ReplicaProber

ROUNDS = 60


async def _accept_and_close(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def test_a_port_poll_cancelled_as_its_connect_completes_still_ends() -> None:
    async def scenario() -> int:
        server = await asyncio.start_server(_accept_and_close, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rng = random.Random(7)
        ran_on = 0

        async def poll() -> None:
            while True:  # as ReplicaProber._port_opens_within does
                await tcp_connect("127.0.0.1", port, 1.0)

        try:
            for _ in range(ROUNDS):
                task = asyncio.get_running_loop().create_task(poll())
                await asyncio.sleep(rng.random() * 0.002)  # somewhere inside a connect
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=1.0)
                if not done:
                    ran_on += 1
                    while not task.done():
                        task.cancel()
                        await asyncio.wait([task], timeout=0.1)
        finally:
            server.close()
            await server.wait_closed()
        return ran_on

    assert asyncio.run(scenario()) == 0


def _prober(http: httpx.AsyncClient) -> ReplicaProber:
    probes = Probes(startup=Probe(tcp_socket=TcpSocketAction(port=8080)))
    return ReplicaProber(probes, ProbeTarget("127.0.0.1", 9, 8080), http)


def test_stop_sends_a_lost_cancellation_again() -> None:
    async def scenario() -> tuple[bool, int]:
        lost = [0]

        async def loses_the_first_cancel() -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if lost[0]:
                        raise
                    lost[0] += 1  # what wait_for did: the cancellation is gone

        async with httpx.AsyncClient() as http:
            p = _prober(http)
            p._task = asyncio.get_running_loop().create_task(loses_the_first_cancel())
            await asyncio.sleep(0)
            task = p._task
            await asyncio.wait_for(p.stop(), 2.0)
            return task.done(), lost[0]

    assert asyncio.run(scenario()) == (True, 1)


def test_stop_returns_even_if_the_probing_never_ends(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(prober_module, "STOP_SECONDS", 0.3)

    async def scenario() -> float:
        holding = [True]

        async def never_ends() -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if not holding[0]:
                        raise

        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient() as http:
            p = _prober(http)
            task = loop.create_task(never_ends())
            p._task = task
            await asyncio.sleep(0)
            started = loop.time()
            await p.stop()
            took = loop.time() - started
            holding[0] = False  # let it end now, so the loop can close
            task.cancel()
            await asyncio.wait([task])
        return took

    with caplog.at_level(logging.WARNING, logger="berth.probes"):
        took = asyncio.run(scenario())
    assert 0.3 <= took < 1.5
    assert "did not stop" in caplog.text
