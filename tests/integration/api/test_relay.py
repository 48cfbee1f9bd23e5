"""The dialects' relay to the gateway keeps its connections: calls after the first reuse them."""

from __future__ import annotations

import asyncio

from berth.api.relay import GatewayRelay, timeout


async def counting_server(connections: list[int]) -> asyncio.Server:
    """A keep-alive HTTP server on loopback that answers each request with its connection's
    number."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        number = str(len(connections)).encode()
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(number), number))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_calls_on_one_loop_share_one_client_and_its_connections() -> None:
    relay = GatewayRelay()

    async def scenario() -> list[str]:
        connections: list[int] = []
        server = await counting_server(connections)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/predict"
        try:
            client = relay.client()
            assert relay.client() is client
            answers = [await relay.client().get(url, timeout=timeout(5)) for _ in range(5)]
            await client.aclose()
            return [a.text for a in answers]
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) == ["1"] * 5  # five calls, one connection


def test_a_new_loop_or_a_closed_client_gets_a_new_client() -> None:
    relay = GatewayRelay()

    async def first() -> object:
        client = relay.client()
        await client.aclose()
        replaced = relay.client()
        assert replaced is not client and not replaced.is_closed
        await replaced.aclose()
        return replaced

    old = asyncio.run(first())

    async def second() -> None:
        client = relay.client()
        assert client is not old
        await client.aclose()

    asyncio.run(second())


def test_a_relay_timeout_bounds_connect_by_the_read_timeout() -> None:
    assert timeout(300).connect == 10.0 and timeout(300).read == 300
    assert timeout(2).connect == 2 and timeout(2).pool is None
