"""Gateway.authorize and resolve remember what they found, per routing table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from berth.domain.records import ApiKey
from berth.gateway.exchange import Exchange
from berth.gateway.proxy import ClientConnection
from berth.gateway.service import Gateway
from berth.gateway.table import build_table
from berth.services.api_keys import digest
from tests.fakes.builders import T0, deployment, replica

SECRET = b"bk_unit-secret"


@pytest.fixture(autouse=True)
def loop() -> Iterator[None]:
    """A Gateway takes the current loop when made; each test gets its own, closed after."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


def key(name: str, secret: bytes, **kw: Any) -> ApiKey:
    return ApiKey(id=name, project="p", name=name, description="", digest=digest(secret.decode()),
                  prefix="bk_", created_at=T0, expires_at=kw.get("expires_at"))


def gateway(keys: list[ApiKey], version: int = 1) -> Gateway:
    gw = Gateway(store=None)  # type: ignore[arg-type]
    d = deployment(1, api_keys=["k1"])
    gw.table = build_table(version, [d], [replica(d, "a")], keys, None)
    return gw


def check(gw: Gateway, auth: bytes = b"", api_key: bytes = b"") -> int:
    route = gw.table.routes[("p", "echo")]
    refusal = gw.authorize(route, auth, api_key, Exchange(ClientConnection(gw)))
    return 200 if refusal is None else refusal[0]


def test_a_cached_key_is_forgotten_with_its_table() -> None:
    gw = gateway([key("k1", SECRET)])
    route = gw.table.routes[("p", "echo")]
    ex = Exchange(ClientConnection(gw))
    assert gw.authorize(route, b"Bearer " + SECRET, b"", ex) is None
    assert ex.key_log == '"k1"'
    assert gw.table.by_auth == {b"Bearer " + SECRET: gw.table.keys[digest(SECRET.decode())]}
    assert check(gw, api_key=SECRET) == 200 and SECRET in gw.table.by_api_key
    gw.table = build_table(2, [deployment(1, api_keys=["k1"])], [], [], gw.table)  # deleted
    assert check(gw, auth=b"Bearer " + SECRET) == 401
    assert check(gw, api_key=SECRET) == 401


def test_unknown_and_missing_keys_are_refused_and_never_cached() -> None:
    gw = gateway([key("k1", SECRET), key("other", b"bk_other")])
    assert check(gw) == 401
    assert check(gw, auth=b"Bearer bk_nope") == 401 and check(gw, api_key=b"bk_nope") == 401
    assert check(gw, auth=b"Bearer bk_other") == 403
    assert check(gw, auth=b"Basic abc") == 401
    assert gw.table.by_auth.keys() == {b"Bearer bk_other"} and not gw.table.by_api_key


def test_a_blank_api_key_header_falls_back_to_authorization_every_time() -> None:
    gw = gateway([key("k1", SECRET)])
    assert check(gw, auth=b"Bearer " + SECRET, api_key=b"  ") == 200
    assert not gw.table.by_api_key  # the blank X-Api-Key did not name the key
    assert check(gw, auth=b"Bearer bk_wrong", api_key=b"  ") == 401


def test_an_expired_key_is_refused_even_when_cached() -> None:
    gw = gateway([key("k1", SECRET, expires_at=T0 + timedelta(days=36500))])
    assert check(gw, api_key=SECRET) == 200
    entry = gw.table.by_api_key[SECRET]
    gw.table.by_api_key[SECRET] = type(entry)(entry.project, entry.name, 0.0, entry.log_name)
    assert check(gw, api_key=SECRET) == 401


def test_resolve_caches_found_paths_only() -> None:
    gw = gateway([])
    route = gw.table.routes[("p", "echo")]
    assert gw.resolve(b"", b"/p/echo/predict") == (route, b"/predict")
    assert gw.resolve(b"", b"/p/echo") == (route, b"/")
    assert gw.resolve(b"", b"/p/nope/x") is None and gw.resolve(b"", b"/") is None
    assert set(gw.table.by_path) == {b"/p/echo/predict", b"/p/echo"}
    assert gw.resolve(b"", b"/p/echo/predict") == (route, b"/predict")
