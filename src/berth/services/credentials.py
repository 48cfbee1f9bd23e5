"""Registry credentials and secrets of a project: created, listed, replaced and deleted by name.

Passwords and secret values are sealed with the data directory's key (services/vault.py)
before they reach the store, are never returned by any call here but `pull_auth` and
`reveal_secret` (for the runtime that pulls images or starts replicas), and never logged.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError

from berth.domain.errors import Conflict, NotFound, SpecInvalid, Violation
from berth.domain.records import RegistryCredential, Secret
from berth.domain.validation import violations_from
from berth.services.deployments import check_project
from berth.services.vault import Vault
from berth.store.engine import Store, Tx

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
NAME_RULE = ("must be lowercase letters, digits and '-', starting and ending with a letter "
             "or digit")
REGISTRY_RE = re.compile(
    r"^(https?://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[^\s/][^\s]*)?/?$")
MASK = "********"  # what answers show in place of a secret value
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", RegistryCredential, Secret)


@dataclass(frozen=True)
class SecretType:
    """Which data fields a secret type has, and which of them answers may show."""

    shown: tuple[str, ...]
    hidden: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.shown + self.hidden


SECRET_TYPES = {"aws-iam": SecretType(shown=("aws_access_key_id",),
                                      hidden=("aws_secret_access_key",))}


@dataclass(frozen=True)
class RegistryAuth:
    """What an image pull needs; only `pull_auth` makes one."""

    registry_url: str
    username: str
    password: str


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=63,
                             description="Unique in the project; required on create.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(NAME_RULE)
        return value


class RegistryCredentialRequest(_Named):
    """The body of a registry credential create or replace."""

    registry_url: str = Field(min_length=1, max_length=255,
                              description="Registry host, with an optional port and path.")
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=4096, description="Never returned.")

    @field_validator("registry_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not REGISTRY_RE.match(value):
            raise ValueError("must be a registry host such as 'registry.example.com', "
                             "'ghcr.io' or 'https://host:5000/path'")
        return value


class SecretRequest(_Named):
    """The body of a secret create or replace."""

    type: str = Field(description=f"One of {', '.join(SECRET_TYPES)}.")
    data: dict[str, str] = Field(description="The type's fields; hidden ones never returned.")


def _parse(model: type[M], data: Any, what: str, *, create: bool) -> M:
    if not isinstance(data, dict):
        raise SpecInvalid([Violation("body", "type", f"the {what} must be a JSON object")])
    try:
        request = model.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(violations_from(exc)) from None
    if create and getattr(request, "name", None) is None:
        raise SpecInvalid([Violation("name", "missing", "Field required")])
    return request


def _check_secret_data(request: SecretRequest) -> SecretType:
    kind = SECRET_TYPES.get(request.type)
    if kind is None:
        raise SpecInvalid([Violation("type", "one_of", f"unknown secret type "
                                     f"{request.type!r}; supported: {', '.join(SECRET_TYPES)}")])
    found = [Violation(f"data.{k}", "missing", "Field required")
             for k in kind.fields if k not in request.data]
    found += [Violation(f"data.{k}", "extra_forbidden", f"not a field of {request.type!r}")
              for k in sorted(set(request.data) - set(kind.fields))]
    for k, value in request.data.items():
        if k in kind.fields and not 1 <= len(value) <= 4096:
            found.append(Violation(f"data.{k}", "length", "must be 1-4096 characters"))
        elif k in kind.hidden and value == MASK:
            found.append(Violation(f"data.{k}", "not_mask", f"{MASK!r} is what answers show "
                                   "in place of the value; send the value itself"))
    if found:
        raise SpecInvalid(found)
    return kind


def shown_data(secret: Secret) -> dict[str, str]:
    """A secret's data as answers show it: shown fields as stored, hidden ones masked."""
    kind = SECRET_TYPES.get(secret.type)
    hidden = kind.hidden if kind is not None else ()
    return {**secret.public, **dict.fromkeys(hidden, MASK)}


def _registry_purpose(project: str, name: str) -> str:
    return f"registry:{project}/{name}"


def _secret_purpose(project: str, name: str) -> str:
    return f"secret:{project}/{name}"


class _NamedRepo(Protocol[R]):
    """What the store offers for each kind of named, project-scoped record."""

    def insert(self, record: R, /) -> None: ...
    def update(self, record: R, /) -> bool: ...
    def get(self, project: str, name: str) -> R | None: ...
    def of_project(self, project: str) -> builtins.list[R]: ...
    def delete(self, project: str, name: str) -> bool: ...


@dataclass(frozen=True)
class _Kind(Generic[R]):
    what: str  # as errors name it
    repo: Callable[[Tx], _NamedRepo[R]]


REGISTRIES: _Kind[RegistryCredential] = _Kind("registry credential",
                                               lambda tx: tx.registry_credentials)
SECRETS: _Kind[Secret] = _Kind("secret", lambda tx: tx.secrets)


class CredentialService:
    def __init__(self, store: Store, vault: Vault, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock

    # Registry credentials

    def create_registry(self, project: str, data: Any) -> RegistryCredential:
        check_project(project)
        req = _parse(RegistryCredentialRequest, data, "registry credential", create=True)
        assert req.name is not None
        now = self.clock()
        return self._insert(REGISTRIES, RegistryCredential(
            id=str(uuid.uuid4()), project=project, name=req.name,
            registry_url=req.registry_url, username=req.username,
            sealed_password=self.vault.seal(_registry_purpose(project, req.name), req.password),
            created_at=now, updated_at=now))

    def list_registries(self, project: str) -> builtins.list[RegistryCredential]:
        return self._list(REGISTRIES, project)

    def get_registry(self, project: str, name: str) -> RegistryCredential:
        return self._get(REGISTRIES, project, name)

    def replace_registry(self, project: str, name: str, data: Any) -> RegistryCredential:
        """Replace the URL, username and password (all required) of existing credentials."""
        check_project(project)
        req = _parse(RegistryCredentialRequest, data, "registry credential", create=False)
        _no_rename(req.name, name)
        sealed = self.vault.seal(_registry_purpose(project, name), req.password)
        return self._replace(REGISTRIES, project, name, lambda current: RegistryCredential(
            id=current.id, project=project, name=name, registry_url=req.registry_url,
            username=req.username, sealed_password=sealed, created_at=current.created_at,
            updated_at=self.clock()))

    def delete_registry(self, project: str, name: str) -> None:
        self._delete(REGISTRIES, project, name)

    def require_registry(self, project: str, name: str,
                         field: str = "credentials_name") -> None:
        """SpecInvalid naming `field` unless the project has a registry credential `name`."""
        with self.store.read() as tx:
            found = tx.registry_credentials.get(project, name)
        if found is None:
            raise SpecInvalid([Violation(field, "exists", f"no registry credential named "
                                         f"{name!r} in project {project!r}; create them first")])

    def pull_auth(self, project: str, name: str) -> RegistryAuth:
        """The opened credentials, for the runtime pulling an image; never for an answer."""
        cred = self.get_registry(project, name)
        password = self.vault.open(_registry_purpose(project, name), cred.sealed_password)
        return RegistryAuth(cred.registry_url, cred.username, str(password))

    # Secrets

    def create_secret(self, project: str, data: Any) -> Secret:
        check_project(project)
        req = _parse(SecretRequest, data, "secret", create=True)
        assert req.name is not None
        now = self.clock()
        return self._insert(SECRETS, self._secret(project, req.name, req, str(uuid.uuid4()),
                                                  now, now))

    def list_secrets(self, project: str) -> builtins.list[Secret]:
        return self._list(SECRETS, project)

    def get_secret(self, project: str, name: str) -> Secret:
        return self._get(SECRETS, project, name)

    def replace_secret(self, project: str, name: str, data: Any) -> Secret:
        """Replace the type and the whole data of an existing secret."""
        check_project(project)
        req = _parse(SecretRequest, data, "secret", create=False)
        _no_rename(req.name, name)
        return self._replace(SECRETS, project, name, lambda current: self._secret(
            project, name, req, current.id, current.created_at, self.clock()))

    def delete_secret(self, project: str, name: str) -> None:
        self._delete(SECRETS, project, name)

    def reveal_secret(self, project: str, name: str) -> dict[str, str]:
        """The opened data, for the part that uses it; never for an answer."""
        secret = self.get_secret(project, name)
        return dict(self.vault.open(_secret_purpose(project, name), secret.sealed_data))

    def _secret(self, project: str, name: str, req: SecretRequest, id_: str,
                created_at: datetime, now: datetime) -> Secret:
        kind = _check_secret_data(req)
        return Secret(id=id_, project=project, name=name, type=req.type,
                      public={k: req.data[k] for k in kind.shown},
                      sealed_data=self.vault.seal(_secret_purpose(project, name), req.data),
                      created_at=created_at, updated_at=now)

    # One set of operations for both kinds of named record

    def _insert(self, kind: _Kind[R], record: R) -> R:
        try:
            with self.store.write(notify=False) as tx:
                if kind.repo(tx).get(record.project, record.name) is not None:
                    raise _exists(kind.what, record.project, record.name)
                kind.repo(tx).insert(record)
        except IntegrityError:  # a concurrent create of the same name won the race
            raise _exists(kind.what, record.project, record.name) from None
        return record

    def _list(self, kind: _Kind[R], project: str) -> builtins.list[R]:
        check_project(project)
        with self.store.read() as tx:
            return kind.repo(tx).of_project(project)

    def _get(self, kind: _Kind[R], project: str, name: str) -> R:
        check_project(project)
        with self.store.read() as tx:
            found = kind.repo(tx).get(project, name)
        if found is None:
            raise _missing(kind.what, project, name)
        return found

    def _replace(self, kind: _Kind[R], project: str, name: str,
                 build: Callable[[R], R]) -> R:
        """The record `build` makes from the current one, written in its place."""
        with self.store.write(notify=False) as tx:
            current = kind.repo(tx).get(project, name)
            if current is None:
                raise _missing(kind.what, project, name)
            record = build(current)
            kind.repo(tx).update(record)
        return record

    def _delete(self, kind: _Kind[R], project: str, name: str) -> None:
        check_project(project)
        with self.store.write(notify=False) as tx:
            if not kind.repo(tx).delete(project, name):
                raise _missing(kind.what, project, name)


def _no_rename(given: str | None, name: str) -> None:
    if given is not None and given != name:
        raise SpecInvalid([Violation("name", "immutable", f"renaming is not supported: the "
                                     f"path names {name!r}, the body {given!r}")])


def _exists(what: str, project: str, name: str) -> Conflict:
    return Conflict(f"{what} {name!r} already exists in project {project!r}",
                    name=name, project=project)


def _missing(what: str, project: str, name: str) -> NotFound:
    return NotFound(f"{what} {name!r} not found in project {project!r}",
                    name=name, project=project)
