"""Sealing for values Berth must read back later (registry passwords for image pulls, secret
values), unlike API keys and tokens, which are only ever compared and so are kept as digests.

Fernet (AES-128-CBC with an HMAC-SHA256 tag) under one key in `<data-dir>/credentials.key`,
made on first use with mode 0600 beside the admin token. Each sealed value names what it was
sealed for (`registry:<project>/<name>`), and opening checks that name, so a sealed value
copied onto another row in the database does not open there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class VaultError(RuntimeError):
    """A sealed value cannot be opened: the key file is missing, malformed or another one."""


class Vault:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    def seal(self, purpose: str, value: Any) -> str:
        """`value` (anything JSON can hold) encrypted and bound to `purpose`."""
        plain = json.dumps({"for": purpose, "value": value}, separators=(",", ":"))
        return self._cipher().encrypt(plain.encode()).decode("ascii")

    def open(self, purpose: str, sealed: str) -> Any:
        """The value sealed for `purpose`; VaultError when it cannot be opened."""
        try:
            plain = json.loads(self._cipher().decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise VaultError(f"cannot open a sealed value for {purpose}: it was sealed under "
                             f"another key than {self.key_file}") from exc
        if not isinstance(plain, dict) or plain.get("for") != purpose:
            raise VaultError(f"the sealed value stored for {purpose} was sealed for another "
                             "record")
        return plain["value"]

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = Fernet(self._load_or_create())
            return self._fernet

    def _load_or_create(self) -> bytes:
        path = self.key_file
        if not path.exists():
            _create_key_file(path)
        os.chmod(path, 0o600)
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError as exc:
            raise VaultError(f"{path} is not a credentials key (32 url-safe base64 bytes); "
                             "restore the original file") from exc
        return key


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: a second process starting at the same moment either wins
    or reads the winner's complete file, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
