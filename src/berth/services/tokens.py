"""Control-plane tokens: the admin token lives in a 0600 file; the store keeps its hash."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from datetime import datetime
from pathlib import Path

from berth.store.engine import Store

ADMIN = "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, store: Store) -> None:
        self.store = store

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
            if tx.tokens.digest_of(ADMIN) != digest(token):
                tx.tokens.put(str(uuid.uuid4()), ADMIN, ADMIN, digest(token), now)
        return created

    def verify(self, token: str) -> bool:
        wanted = digest(token)
        with self.store.read() as tx:
            known = tx.tokens.digests(ADMIN)
        return any(hmac.compare_digest(wanted, k) for k in known)
