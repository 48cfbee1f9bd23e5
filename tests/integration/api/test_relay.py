"""The dialects' relay to the gateway keeps its connections: calls after the first reuse them;
and it only ever reaches the deployment it was asked for (relay_url)."""

from __future__ import annotations

import asyncio

import pytest

from berth.api.relay import GatewayRelay, UnsafePath, relay_url, route_url, timeout


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


ADDRESS = "http://127.0.0.1:8001/tir-1-2/echo"


@pytest.mark.parametrize(("path", "url"), [
    ("/predict", ADDRESS + "/predict"),
    ("", ADDRESS + "/"),
    ("/v2/models/m/infer", ADDRESS + "/v2/models/m/infer"),
    ("/a b/c%d", ADDRESS + "/a%20b/c%25d"),  # decoded: each segment encoded again
    ("/x?y#z", ADDRESS + "/x%3Fy%23z"),  # no segment adds a query or a fragment
    ("/.well-known/x", ADDRESS + "/.well-known/x"),
])
def test_a_relayed_path_stays_under_the_deployment(path: str, url: str) -> None:
    assert relay_url(ADDRESS, path) == url


def test_the_query_goes_on_as_it_came() -> None:
    assert relay_url(ADDRESS, "/p", "a=1&b=%2F") == ADDRESS + "/p?a=1&b=%2F"


@pytest.mark.parametrize("path", [
    "/../../gw/echo/predict", "/x/../../..", "/./predict", "/%2e%2e/%2e%2e/gw/echo",
    "/%252e%252e/x", "/..\\..\\gw", "/..;/x", "/v2/models/m/../../../../gw/echo",
])
def test_a_path_with_dot_segments_is_refused(path: str) -> None:
    with pytest.raises(UnsafePath) as refused:
        relay_url(ADDRESS, path)
    assert refused.value.status == 400 and "'..' segment" in refused.value.message


def test_a_deployments_own_routes_are_kept_as_written() -> None:
    assert route_url(ADDRESS, "/v1/x%20y") == ADDRESS + "/v1/x%20y"
    assert route_url(ADDRESS, "/predict?mode=fast") == ADDRESS + "/predict?mode=fast"
    with pytest.raises(UnsafePath):
        route_url(ADDRESS, "/../../gw/echo/predict")
    with pytest.raises(UnsafePath):
        route_url(ADDRESS, "/%2e%2e/%2e%2e/gw/echo/predict")
