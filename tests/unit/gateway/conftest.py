"""The in-memory rig the gateway's flow tests drive: the real ClientConnection, Exchange and
UpstreamConnection over MemoryTransports, one deployment with one replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from berth.gateway.proxy import ClientConnection
from berth.gateway.service import Gateway
from berth.gateway.table import build_table
from berth.gateway.upstream import UpstreamConnection
from tests.fakes.builders import deployment, replica
from tests.fakes.transport import MemoryTransport


@dataclass
class Rig:
    gw: Gateway
    loop: asyncio.AbstractEventLoop
    client: ClientConnection
    client_io: MemoryTransport
    upstream: UpstreamConnection
    upstream_io: MemoryTransport


@pytest.fixture
def rig() -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gw = Gateway(store=None)  # type: ignore[arg-type]
    d = deployment(1)
    gw.table = build_table(1, [d], [replica(d, "a")], [], None)
    client_io, upstream_io = MemoryTransport(), MemoryTransport()
    client = ClientConnection(gw)
    client.connection_made(client_io)  # type: ignore[arg-type]
    upstream = UpstreamConnection(gw.pool, ("127.0.0.1", 9000))
    upstream.connection_made(upstream_io)  # type: ignore[arg-type]
    gw.pool.give_back(upstream)
    yield Rig(gw, loop, client, client_io, upstream, upstream_io)
    asyncio.set_event_loop(None)
    loop.close()
