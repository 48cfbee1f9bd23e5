"""API keys for inference endpoints: created with a secret shown once, stored as a digest.

The gateway checks callers against these keys; every change bumps the routing version in the
same transaction so gateways pick it up.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError

from berth.domain.errors import Conflict, NotFound, SpecInvalid, Violation
from berth.domain.records import ApiKey
from berth.domain.validation import violations_from
from berth.services.deployments import check_project
from berth.store.engine import Store

SECRET_PREFIX = "bk_"
PREFIX_CHARS = 10  # of the secret, kept for display
KEY_NAME_RE = re.compile(r"^[a-z]([a-z0-9_-]*[a-z0-9])?$")


class ApiKeyRequest(BaseModel):
    """The body of `POST /v1/projects/{project}/api-keys`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=1000)
    expires_at: datetime | None = Field(
        default=None, description="When the key stops working (ISO 8601; UTC if no offset).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not KEY_NAME_RE.match(value):
            raise ValueError("must be lowercase letters, digits, '-' and '_', start with a "
                             "letter and end with a letter or digit")
        return value

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def digest(secret: str) -> str:
    """The SHA-256 hex digest the store keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(secret: str, key: ApiKey) -> bool:
    """Whether `secret` is `key`'s secret, compared in constant time."""
    return hmac.compare_digest(digest(secret), key.digest)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def parse_request(data: Any, now: datetime) -> ApiKeyRequest:
    """Validate a create body; SpecInvalid names every broken field."""
    if not isinstance(data, dict):
        raise SpecInvalid([Violation("body", "type", "the API key must be a JSON object")])
    try:
        req = ApiKeyRequest.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(violations_from(exc)) from None
    if req.expires_at is not None and req.expires_at <= now:
        raise SpecInvalid([Violation("expires_at", "future", "must be in the future")])
    return req


class ApiKeyService:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def create(self, project: str, data: Any) -> tuple[ApiKey, str]:
        """Store a new key; returns it with its secret, which is never available again."""
        check_project(project)
        now = self.clock()
        req = parse_request(data, now)
        secret = new_secret()
        key = ApiKey(id=str(uuid.uuid4()), project=project, name=req.name,
                     description=req.description, digest=digest(secret),
                     prefix=secret[:PREFIX_CHARS], created_at=now, expires_at=req.expires_at)
        try:
            with self.store.write() as tx:
                if tx.api_keys.get(project, req.name) is not None:
                    raise self._exists(project, req.name)
                tx.api_keys.insert(key)
                tx.routing.bump()
        except IntegrityError:  # a concurrent create of the same name won the race
            raise self._exists(project, req.name) from None
        return key, secret

    def list(self, project: str) -> builtins.list[ApiKey]:
        check_project(project)
        with self.store.read() as tx:
            return tx.api_keys.of_project(project)

    def get(self, project: str, name: str) -> ApiKey:
        check_project(project)
        with self.store.read() as tx:
            key = tx.api_keys.get(project, name)
        if key is None:
            raise self._missing(project, name)
        return key

    def describe(self, project: str, name: str, description: str | None) -> ApiKey:
        """Change a key's description (nothing else about a key changes after creation)."""
        check_project(project)
        if description is not None and (not isinstance(description, str)
                                        or len(description) > 1000):
            raise SpecInvalid([Violation("description", "string",
                                         "must be a string of at most 1000 characters")])
        with self.store.write(notify=False) as tx:
            if not tx.api_keys.describe(project, name, description or ""):
                raise self._missing(project, name)
            key = tx.api_keys.get(project, name)
        assert key is not None
        return key

    def delete(self, project: str, name: str) -> None:
        check_project(project)
        with self.store.write() as tx:
            if not tx.api_keys.delete(project, name):
                raise self._missing(project, name)
            tx.routing.bump()

    @staticmethod
    def _exists(project: str, name: str) -> Conflict:
        return Conflict(f"API key {name!r} already exists in project {project!r}",
                        name=name, project=project)

    @staticmethod
    def _missing(project: str, name: str) -> NotFound:
        return NotFound(f"API key {name!r} not found in project {project!r}",
                        name=name, project=project)
