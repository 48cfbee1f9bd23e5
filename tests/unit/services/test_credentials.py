"""CredentialService over a real SQLite store and a real key file: values sealed at rest,
never shown, usable again for a pull."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from berth.domain.errors import Conflict, NotFound, SpecInvalid
from berth.services.credentials import MASK, CredentialService, shown_data
from berth.services.vault import Vault, VaultError
from berth.store.engine import Store
from tests.fakes.builders import T0

PASSWORD = "hunter2-registry-pa55"
AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
REGISTRY = {"name": "dockerhub", "registry_url": "registry.example.com:5000",
            "username": "robot", "password": PASSWORD}
AWS: dict[str, Any] = {
    "name": "aws-dev", "type": "aws-iam",
    "data": {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": AWS_SECRET}}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(store: Store, tmp_path: Path, clock: Clock) -> CredentialService:
    return CredentialService(store, Vault(tmp_path / "data" / "credentials.key"), clock)


def fields_of(exc: pytest.ExceptionInfo[SpecInvalid]) -> set[str]:
    return {v.field for v in exc.value.violations}


def on_disk(tmp_path: Path) -> bytes:
    """Every byte the store wrote (the database and its write-ahead log)."""
    return b"".join(p.read_bytes() for p in tmp_path.glob("b.db*"))


def test_registry_password_is_sealed_at_rest_and_opens_for_a_pull(
    svc: CredentialService, store: Store, tmp_path: Path
) -> None:
    cred = svc.create_registry("7", REGISTRY)
    assert (cred.name, cred.registry_url, cred.username) == (
        "dockerhub", "registry.example.com:5000", "robot")
    assert cred.created_at == cred.updated_at == T0
    assert PASSWORD not in cred.sealed_password and PASSWORD not in repr(cred)
    with store.read() as tx:
        stored = tx.registry_credentials.get("7", "dockerhub")
    assert stored is not None and stored.sealed_password == cred.sealed_password
    assert PASSWORD.encode() not in on_disk(tmp_path)
    auth = svc.pull_auth("7", "dockerhub")
    assert (auth.registry_url, auth.username, auth.password) == (
        "registry.example.com:5000", "robot", PASSWORD)
    key = tmp_path / "data" / "credentials.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_registry_names_are_unique_per_project_and_listed_in_order(
    svc: CredentialService, clock: Clock
) -> None:
    svc.create_registry("7", REGISTRY)
    with pytest.raises(Conflict, match="already exists"):
        svc.create_registry("7", {**REGISTRY, "password": "other"})
    clock.now = T0 + timedelta(seconds=1)
    svc.create_registry("7", {**REGISTRY, "name": "ghcr"})
    svc.create_registry("8", REGISTRY)  # another project, same name
    assert [c.name for c in svc.list_registries("7")] == ["dockerhub", "ghcr"]
    assert [c.name for c in svc.list_registries("8")] == ["dockerhub"]
    assert svc.list_registries("9") == []


@pytest.mark.parametrize(("body", "fields"), [
    ({**REGISTRY, "name": "Has_Caps"}, {"name"}),
    ({**REGISTRY, "name": "-lead"}, {"name"}),
    ({**REGISTRY, "name": "x" * 64}, {"name"}),
    ({k: v for k, v in REGISTRY.items() if k != "name"}, {"name"}),
    ({k: v for k, v in REGISTRY.items() if k != "password"}, {"password"}),
    ({**REGISTRY, "password": ""}, {"password"}),
    ({**REGISTRY, "registry_url": "not a url"}, {"registry_url"}),
    ({**REGISTRY, "registry_url": "ftp://host"}, {"registry_url"}),
    ({**REGISTRY, "username": 5}, {"username"}),
    ({**REGISTRY, "token": "x"}, {"token"}),
    (["not", "an", "object"], {"body"}),
])
def test_registry_validation_names_the_field(svc: CredentialService, body: Any,
                                             fields: set[str]) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create_registry("7", body)
    assert fields_of(exc) == fields
    assert svc.list_registries("7") == []


@pytest.mark.parametrize("url", ["ghcr.io", "registry.example.com:5000/team",
                                 "https://index.docker.io/v1/", "localhost:5000"])
def test_registry_urls_accepted(svc: CredentialService, url: str) -> None:
    assert svc.create_registry("7", {**REGISTRY, "registry_url": url}).registry_url == url


def test_project_must_be_a_project_name(svc: CredentialService) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create_registry("bad project", REGISTRY)
    assert fields_of(exc) == {"project"}


def test_replace_registry_changes_all_and_keeps_created_at(
    svc: CredentialService, clock: Clock
) -> None:
    svc.create_registry("7", REGISTRY)
    clock.now = T0 + timedelta(minutes=5)
    body = {"registry_url": "ghcr.io", "username": "bot", "password": "new-pass"}
    cred = svc.replace_registry("7", "dockerhub", body)
    assert (cred.registry_url, cred.username) == ("ghcr.io", "bot")
    assert (cred.created_at, cred.updated_at) == (T0, clock.now)
    assert svc.get_registry("7", "dockerhub") == cred
    assert svc.pull_auth("7", "dockerhub").password == "new-pass"
    # The body GET-like clients send back, with the same name, is accepted; a rename is not.
    svc.replace_registry("7", "dockerhub", {**body, "name": "dockerhub"})
    with pytest.raises(SpecInvalid) as renamed:
        svc.replace_registry("7", "dockerhub", {**body, "name": "other"})
    assert fields_of(renamed) == {"name"}
    with pytest.raises(SpecInvalid) as partial:
        svc.replace_registry("7", "dockerhub", {"username": "only"})
    assert fields_of(partial) == {"registry_url", "password"}
    with pytest.raises(NotFound):
        svc.replace_registry("7", "nowhere", body)


def test_delete_registry_and_missing_ones(svc: CredentialService) -> None:
    svc.create_registry("7", REGISTRY)
    svc.delete_registry("7", "dockerhub")
    with pytest.raises(NotFound, match="not found"):
        svc.get_registry("7", "dockerhub")
    with pytest.raises(NotFound):
        svc.delete_registry("7", "dockerhub")
    with pytest.raises(NotFound):
        svc.pull_auth("7", "dockerhub")
    svc.create_registry("7", REGISTRY)  # the name is free again


def test_require_registry_names_the_spec_field(svc: CredentialService) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.require_registry("7", "dockerhub")
    assert fields_of(exc) == {"credentials_name"}
    assert exc.value.violations[0].rule == "exists"
    svc.create_registry("7", REGISTRY)
    svc.require_registry("7", "dockerhub")
    with pytest.raises(SpecInvalid):
        svc.require_registry("8", "dockerhub")


def test_secret_hidden_values_are_sealed_masked_and_revealable(
    svc: CredentialService, tmp_path: Path
) -> None:
    secret = svc.create_secret("7", AWS)
    assert (secret.name, secret.type) == ("aws-dev", "aws-iam")
    assert secret.public == {"aws_access_key_id": "AKIAEXAMPLE"}
    assert shown_data(secret) == {"aws_access_key_id": "AKIAEXAMPLE",
                                  "aws_secret_access_key": MASK}
    assert AWS_SECRET not in secret.sealed_data and AWS_SECRET not in repr(secret)
    assert AWS_SECRET.encode() not in on_disk(tmp_path)
    assert svc.reveal_secret("7", "aws-dev") == AWS["data"]
    assert [s.name for s in svc.list_secrets("7")] == ["aws-dev"]
    with pytest.raises(Conflict):
        svc.create_secret("7", AWS)


@pytest.mark.parametrize(("body", "fields"), [
    ({**AWS, "type": "gcp-sa"}, {"type"}),
    ({**AWS, "data": {"aws_access_key_id": "AKIA"}}, {"data.aws_secret_access_key"}),
    ({**AWS, "data": {**AWS["data"], "region": "eu"}}, {"data.region"}),
    ({**AWS, "data": {**AWS["data"], "aws_secret_access_key": MASK}},
     {"data.aws_secret_access_key"}),
    ({**AWS, "data": {**AWS["data"], "aws_secret_access_key": ""}},
     {"data.aws_secret_access_key"}),
    ({**AWS, "data": {**AWS["data"], "aws_access_key_id": 1}}, {"data.aws_access_key_id"}),
    ({k: v for k, v in AWS.items() if k != "type"}, {"type"}),
    ({**AWS, "name": "UPPER"}, {"name"}),
])
def test_secret_validation_names_the_field(svc: CredentialService, body: Any,
                                           fields: set[str]) -> None:
    with pytest.raises(SpecInvalid) as exc:
        svc.create_secret("7", body)
    assert fields_of(exc) == fields
    assert svc.list_secrets("7") == []


def test_replace_and_delete_secret(svc: CredentialService, clock: Clock) -> None:
    svc.create_secret("7", AWS)
    clock.now = T0 + timedelta(hours=1)
    data = {"aws_access_key_id": "AKIANEW", "aws_secret_access_key": "new-secret"}
    secret = svc.replace_secret("7", "aws-dev", {"type": "aws-iam", "data": data})
    assert secret.public == {"aws_access_key_id": "AKIANEW"}
    assert (secret.created_at, secret.updated_at) == (T0, clock.now)
    assert svc.reveal_secret("7", "aws-dev") == data
    with pytest.raises(NotFound):
        svc.replace_secret("7", "nope", {"type": "aws-iam", "data": data})
    svc.delete_secret("7", "aws-dev")
    with pytest.raises(NotFound):
        svc.get_secret("7", "aws-dev")
    with pytest.raises(NotFound):
        svc.delete_secret("7", "aws-dev")


def test_a_sealed_value_opens_only_for_its_own_record(svc: CredentialService,
                                                      store: Store) -> None:
    """A sealed password copied onto another row (by someone who can write the database)
    does not open there."""
    svc.create_registry("7", REGISTRY)
    svc.create_registry("7", {**REGISTRY, "name": "other", "password": "other-pass"})
    stolen = svc.get_registry("7", "dockerhub").sealed_password
    with store.write() as tx:
        row = tx.registry_credentials.get("7", "other")
        assert row is not None
        tx.registry_credentials.update(replace(row, sealed_password=stolen))
    with pytest.raises(VaultError, match="another record"):
        svc.pull_auth("7", "other")


def test_another_key_cannot_open_and_a_broken_key_file_is_named(
    svc: CredentialService, store: Store, tmp_path: Path, clock: Clock
) -> None:
    svc.create_registry("7", REGISTRY)
    elsewhere = CredentialService(store, Vault(tmp_path / "other.key"), clock)
    with pytest.raises(VaultError, match="another key"):
        elsewhere.pull_auth("7", "dockerhub")
    broken = tmp_path / "broken.key"
    broken.write_text("not a key\n")
    with pytest.raises(VaultError, match=str(broken)):
        Vault(broken).seal("x", "y")


def test_two_vaults_on_one_key_file_share_the_key(tmp_path: Path) -> None:
    first, second = Vault(tmp_path / "k"), Vault(tmp_path / "k")
    sealed = first.seal("registry:7/a", "pw")
    assert second.open("registry:7/a", sealed) == "pw"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no draft left behind
