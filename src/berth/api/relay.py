"""The control API's HTTP client to the gateway, for the dialects that relay inference.

TIR's model API, Scale's `/v5/inference` and completions, and Foundry's `transformJson` take a
request on the control API and send it on to the deployment's gateway address. They share one
pooled client per event loop: its keep-alive connections are reused from call to call, and its
TLS context is built once. A client made per request cost ~30 ms of the API thread's CPU
(`python bench/relay.py`).

The relay never goes through a proxy from the environment: the gateway is Berth's own.
"""

from __future__ import annotations

import asyncio

import httpx

# The gateway queues, sheds and times out requests itself; the relay sets no pool limit of its
# own, and keeps enough idle connections for a burst of concurrent calls.
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30)


def timeout(seconds: float, connect: float = 10.0) -> httpx.Timeout:
    """`seconds` to read each piece of the answer (and to send the request)."""
    return httpx.Timeout(seconds, connect=min(seconds, connect), pool=None)


class GatewayRelay:
    """One `httpx.AsyncClient` per running event loop (the API's, or a test's)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._loop is not loop:
            # A client's connections belong to the loop that opened them; the old loop's
            # client is left to that loop (it has ended when a new one asks).
            self._client = httpx.AsyncClient(timeout=timeout(300.0), limits=LIMITS,
                                             trust_env=False)
            self._loop = loop
        return self._client
