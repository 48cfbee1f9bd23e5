"""ApiKeyService over a real SQLite store: secrets shown once, stored as digests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from berth.domain.errors import Conflict, NotFound, SpecInvalid
from berth.services.api_keys import ApiKeyService, digest, verify
from berth.store.engine import Store
from tests.fakes.builders import T0


@pytest.fixture
def svc(store: Store) -> ApiKeyService:
    return ApiKeyService(store, lambda: T0)


def routing_version(store: Store) -> int:
    with store.read() as tx:
        return tx.routing.version()


def fields_of(exc: pytest.ExceptionInfo[SpecInvalid]) -> set[str]:
    return {v.field for v in exc.value.violations}


def test_create_returns_secret_once_and_stores_only_its_digest(
    svc: ApiKeyService, store: Store
) -> None:
    key, secret = svc.create("p", {"name": "ci", "description": "for CI"})
    assert secret.startswith("bk_") and len(secret) > 40
    assert key.prefix == secret[:10]
    assert key.digest == digest(secret) != secret
    assert key.created_at == T0 and key.expires_at is None
    with store.read() as tx:
        stored = tx.api_keys.get("p", "ci")
        assert stored is not None and stored.digest == digest(secret)
        assert tx.api_keys.by_digest(digest(secret)) == stored
        assert tx.api_keys.all() == [stored]
        raw = tx.conn.exec_driver_sql("SELECT * FROM api_keys").all()
    assert secret not in repr(raw)
    assert key.digest not in repr(key)


def test_secrets_differ_per_key(svc: ApiKeyService) -> None:
    _, first = svc.create("p", {"name": "a"})
    _, second = svc.create("p", {"name": "b"})
    assert first != second


def test_list_and_get_never_expose_the_secret(svc: ApiKeyService) -> None:
    _, secret = svc.create("p", {"name": "ci"})
    svc.create("p", {"name": "web", "expires_at": (T0 + timedelta(days=1)).isoformat()})
    svc.create("other", {"name": "ci"})
    listed = svc.list("p")
    assert [k.name for k in listed] == ["ci", "web"]
    assert listed[1].expires_at == T0 + timedelta(days=1)
    got = svc.get("p", "ci")
    assert got.name == "ci" and got.project == "p"
    assert all(secret not in repr(vars(k)) for k in [*listed, got])


def test_duplicate_name_conflicts_in_the_same_project_only(svc: ApiKeyService) -> None:
    svc.create("p", {"name": "ci"})
    with pytest.raises(Conflict) as exc:
        svc.create("p", {"name": "ci"})
    assert exc.value.status == 409
    svc.create("q", {"name": "ci"})


@pytest.mark.parametrize("name", [
    "", "CI", "1st", "ends-", "has space", "a.b", "x" * 65, 7,
])
def test_bad_names_name_the_field(svc: ApiKeyService, name: Any) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create("p", {"name": name})
    assert exc.value.status == 422
    assert fields_of(exc) == {"name"}


@pytest.mark.parametrize("name", ["a", "ci", "ci_runner-2", "x" * 64])
def test_good_names(svc: ApiKeyService, name: str) -> None:
    assert svc.create("p", {"name": name})[0].name == name


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": "ci", "expires_at": T0.isoformat()}, "expires_at"),
    ({"name": "ci", "expires_at": (T0 - timedelta(hours=1)).isoformat()}, "expires_at"),
    ({"name": "ci", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "ci", "description": 3}, "description"),
    ({"name": "ci", "secret": "bk_mine"}, "secret"),
])
def test_bad_bodies_name_the_field(svc: ApiKeyService, body: dict[str, Any],
                                   field: str) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create("p", body)
    assert field in fields_of(exc)


def test_body_must_be_an_object_and_project_valid(svc: ApiKeyService) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create("p", ["ci"])
    assert fields_of(exc) == {"body"}
    with pytest.raises(SpecInvalid) as exc:
        svc.create("bad project", {"name": "ci"})
    assert fields_of(exc) == {"project"}


def test_naive_expiry_is_utc(svc: ApiKeyService) -> None:
    key, _ = svc.create("p", {"name": "ci", "expires_at": "2030-01-01T00:00:00"})
    assert key.expires_at is not None and key.expires_at.utcoffset() == timedelta(0)
    assert svc.get("p", "ci").expires_at == key.expires_at


def test_create_and_delete_bump_the_routing_version(svc: ApiKeyService, store: Store) -> None:
    before = routing_version(store)
    svc.create("p", {"name": "ci"})
    assert routing_version(store) == before + 1
    with pytest.raises(Conflict):
        svc.create("p", {"name": "ci"})
    assert routing_version(store) == before + 1  # a refused change bumps nothing
    svc.delete("p", "ci")
    assert routing_version(store) == before + 2
    assert svc.list("p") == []


def test_changes_notify_listeners(svc: ApiKeyService, store: Store) -> None:
    heard: list[int] = []
    store.subscribe(lambda: heard.append(1))
    svc.create("p", {"name": "ci"})
    svc.delete("p", "ci")
    assert len(heard) == 2


def test_unknown_keys_are_not_found(svc: ApiKeyService, store: Store) -> None:
    before = routing_version(store)
    with pytest.raises(NotFound):
        svc.get("p", "nope")
    with pytest.raises(NotFound) as exc:
        svc.delete("p", "nope")
    assert exc.value.status == 404
    assert routing_version(store) == before


def test_verify_accepts_its_secret_and_rejects_others(svc: ApiKeyService) -> None:
    key, secret = svc.create("p", {"name": "ci"})
    other, other_secret = svc.create("p", {"name": "web"})
    assert verify(secret, key)
    assert verify(other_secret, other)
    assert not verify(other_secret, key)
    assert not verify(secret[:-1], key)
    assert not verify("", key)
    assert not verify(key.digest, key)
