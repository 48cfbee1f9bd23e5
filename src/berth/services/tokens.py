"""Control tokens: the admin token lives in a 0600 file; named tokens are scoped to projects
and to read or write access. The store keeps only SHA-256 digests."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from berth.domain.errors import Conflict, NotFound, SpecInvalid, Violation
from berth.domain.records import ControlToken
from berth.domain.validation import violations_from
from berth.services.deployments import PROJECT_RE
from berth.store.engine import Store

ADMIN = "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z]([a-z0-9_-]*[a-z0-9])?$")
    access: Literal["read", "write"] = "write"
    projects: list[str] | None = Field(default=None, description="None: every project")


class TokenService:
    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.clock = clock

    def ensure_admin_token(self, path: Path, now: datetime) -> bool:
        """Create the admin token file on first start; keep the store's hash in step.
        Returns True when a new token was made."""
        created = False
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            token = "berth_" + secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")
            created = True
        os.chmod(path, 0o600)
        token = path.read_text().strip()
        with self.store.write(notify=False) as tx:
            current = tx.tokens.by_name(ADMIN)
            if current is None or current.digest != digest(token):
                tx.tokens.put(ControlToken(id=str(uuid.uuid4()), name=ADMIN, kind=ADMIN,
                                           digest=digest(token), access=ADMIN, projects=None,
                                           created_at=now))
        return created

    def authenticate(self, token: str) -> ControlToken | None:
        """The token's record, found by its digest (no secret is compared byte by byte)."""
        with self.store.read() as tx:
            return tx.tokens.by_digest(digest(token))

    def verify(self, token: str) -> bool:
        return self.authenticate(token) is not None

    def create(self, data: Any, now: datetime) -> tuple[ControlToken, str]:
        try:
            request = TokenRequest.model_validate(data)
        except ValidationError as exc:
            raise SpecInvalid(violations_from(exc)) from None
        if request.name == ADMIN:
            raise SpecInvalid([Violation("name", "reserved", "'admin' is the data directory's "
                                         "token")])
        for i, project in enumerate(request.projects or []):
            if not PROJECT_RE.match(project):
                raise SpecInvalid([Violation(f"projects[{i}]", "pattern",
                                             f"{project!r} is not a project name")])
        secret = "bt_" + secrets.token_urlsafe(32)
        token = ControlToken(id=str(uuid.uuid4()), name=request.name, kind="control",
                             digest=digest(secret), access=request.access,
                             projects=request.projects, created_at=now)
        with self.store.write(notify=False) as tx:
            if tx.tokens.by_name(request.name) is not None:
                raise Conflict(f"token {request.name!r} already exists", name=request.name)
            tx.tokens.put(token)
        return token, secret

    def list(self) -> list[ControlToken]:
        with self.store.read() as tx:
            return tx.tokens.all()

    def delete(self, name: str) -> None:
        if name == ADMIN:
            raise Conflict("the admin token is the data directory's admin-token file; "
                           "delete that file and restart to rotate it", name=name)
        with self.store.write(notify=False) as tx:
            if not tx.tokens.delete(name):
                raise NotFound(f"token {name!r} not found", name=name)
