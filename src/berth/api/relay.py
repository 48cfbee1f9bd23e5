"""The control API's HTTP client to the gateway, for the dialects that relay inference.

TIR's model API, Scale's `/v5/inference` and completions, and Foundry's `transformJson` take a
request on the control API and send it on to the deployment's gateway address. They share one
pooled client per event loop: its keep-alive connections are reused from call to call, and its
TLS context is built once. A client made per request cost ~30 ms of the API thread's CPU
(`python bench/relay.py`).

The relay never goes through a proxy from the environment: the gateway is Berth's own. It only
ever reaches the deployment it was asked for: `relay_url` refuses a path with dot segments and
keeps every other one under the deployment's address.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx

from berth.domain.errors import BerthError
from berth.gateway.paths import DOT_SEGMENT, has_dot_segment

# The gateway queues, sheds and times out requests itself; the relay sets no pool limit of its
# own, and keeps enough idle connections for a burst of concurrent calls.
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30)


# Characters a path segment may hold as they are (RFC 3986 pchar); others are percent-encoded.
SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class UnsafePath(BerthError):
    code = "invalid_path"
    status = 400


def relay_url(address: str, path: str, query: str = "", *, encoded: bool = False) -> str:
    """The URL of `path` under a deployment's gateway `address`.

    `path` is decoded (as a route read it from the request), or with `encoded` already in URL
    form (a spec's routes). Each segment is percent-encoded (a decoded one again, so the
    gateway and the replica see the path the caller sent), so no segment can add a `/`, a `?`
    or a `#`. A `.` or `..` segment, also one that decodes to it, is refused: the URL could
    leave the deployment."""
    if has_dot_segment(path.encode("utf-8", errors="replace")):
        raise UnsafePath(f"path: {DOT_SEGMENT}", path=path)
    safe = SEGMENT_SAFE + ("%" if encoded else "")
    quoted = "/".join(quote(segment, safe=safe, errors="replace")
                      for segment in path.split("/"))
    base = address.rstrip("/")
    url = base + ("" if quoted.startswith("/") else "/") + quoted + (f"?{query}" if query else "")
    parsed, home = httpx.URL(url), httpx.URL(base + "/")
    if (parsed.scheme, parsed.host, parsed.port) != (home.scheme, home.host, home.port) or \
            not parsed.raw_path.startswith(home.raw_path):
        raise UnsafePath(f"path: {path!r} leaves the deployment's address", path=path)
    return url


def route_url(address: str, route: str) -> str:
    """The URL of one of a deployment's own routes (`routes.predict`, …) under `address`."""
    path, _, query = route.partition("?")
    return relay_url(address, path, query, encoded=True)


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
