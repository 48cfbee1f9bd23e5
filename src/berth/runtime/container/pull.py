"""Images: used from the host's store, or pulled as the pull policy says.

Registry credentials go only into the pull: a private auth file (0600, in a 0700 directory)
written for that one `podman pull --authfile` and deleted after it, never in an argument
list, a log line or an error (the password is scrubbed from whatever podman prints).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from berth.runtime.base import ImageUnavailable, PullPolicy
from berth.runtime.container.podman import Podman, PodmanError, error_text, kill

PullErrorKind = Literal["auth", "not_found", "network", "not_present", "failed"]
ProgressCallback = Callable[[str], None]
DEFAULT_PULL_TIMEOUT = 3600.0
_KEEP_STDERR = 64 * 1024

_AUTH = re.compile(
    r"unauthori[sz]ed|authentication required|invalid username/password|incorrect username"
    r"|requested access to the resource is denied|\bdenied\b|\b401\b|\b403\b", re.I)
_NOT_FOUND = re.compile(
    r"manifest unknown|name unknown|repository name not known|not found|no such image"
    r"|did not resolve to an alias|does not exist|\b404\b", re.I)
_NETWORK = re.compile(
    r"connection refused|no such host|i/o timeout|timed out|timeout|network is unreachable"
    r"|no route to host|connection reset|temporary failure in name resolution|dial tcp"
    r"|pinging container registry|server gave http response to https client|x509:|tls:"
    r"|\beof\b", re.I)


class ImagePullFailed(ImageUnavailable):
    """The image could not be had: `kind` says why (auth, not_found, network, not_present —
    absent under pull policy Never — or failed), `detail` is podman's own words."""

    def __init__(self, image: str, kind: PullErrorKind, detail: str = "") -> None:
        self.image = image
        self.kind: PullErrorKind = kind
        self.detail = detail
        super().__init__(_message(image, kind, detail))


def _message(image: str, kind: PullErrorKind, detail: str) -> str:
    head = {
        "auth": f"pulling image {image}: the registry refused access (wrong or missing "
                "registry credentials, or no such image)",
        "not_found": f"pulling image {image}: the registry has no such image",
        "network": f"pulling image {image}: the registry cannot be reached",
        "not_present": f"image {image} is not on this host and the pull policy is Never",
        "failed": f"pulling image {image} failed",
    }[kind]
    return f"{head}: {detail}" if detail else head


def classify_pull_error(stderr: str) -> PullErrorKind:
    text = error_text(stderr) or stderr
    for kind, pattern in (("auth", _AUTH), ("not_found", _NOT_FOUND), ("network", _NETWORK)):
        if pattern.search(text):
            return kind  # type: ignore[return-value]
    return "failed"


def registry_key(server: str) -> str:
    """The auth file's key for a registry: host[:port][/path], no scheme or trailing '/'."""
    key = re.sub(r"^[a-z]+://", "", server.strip(), flags=re.I).rstrip("/")
    host, _, path = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return "docker.io"
    return key if path not in ("v1", "v2") else host


def auth_file_content(server: str, username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry_key(server): {"auth": token}}})


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


async def image_present(podman: Podman, image: str) -> bool:
    return (await podman.run("image", "exists", image, check=False)).returncode == 0


async def ensure_image(
    podman: Podman, image: str, policy: PullPolicy,
    auth: tuple[str, str, str] | None, *, auth_dir: Path,
    on_progress: ProgressCallback | None = None, tls_verify: bool = True,
    limit_s: float = DEFAULT_PULL_TIMEOUT,
) -> bool:
    """Make `image` present; True when it was pulled. ImagePullFailed when it cannot be."""
    if policy != "Always" and await image_present(podman, image):
        return False
    if policy == "Never":
        raise ImagePullFailed(image, "not_present")
    await pull(podman, image, auth, auth_dir=auth_dir, on_progress=on_progress,
               tls_verify=tls_verify, limit_s=limit_s)
    return True


async def pull(
    podman: Podman, image: str, auth: tuple[str, str, str] | None, *, auth_dir: Path,
    on_progress: ProgressCallback | None = None, tls_verify: bool = True,
    limit_s: float = DEFAULT_PULL_TIMEOUT,
) -> None:
    secret = auth[2] if auth else None
    private = None
    args = ["pull"] if tls_verify else ["pull", "--tls-verify=false"]
    try:
        if auth is not None:
            private = _private_dir(auth_dir)
            args += ["--authfile", str(_write_auth_file(private, auth))]
        proc = await podman.spawn(*args, image)
        try:
            async with asyncio.timeout(limit_s):
                stderr = await _pump_progress(proc, secret, on_progress)
                code = await proc.wait()
        except TimeoutError:
            raise ImagePullFailed(image, "network", f"no end after {limit_s:g}s") from None
        finally:
            await kill(proc)
    except PodmanError as exc:
        raise ImagePullFailed(image, "failed", scrub(exc.detail, secret)) from None
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    if code != 0:
        detail = scrub(error_text(stderr), secret) or f"podman pull exited {code}"
        raise ImagePullFailed(image, classify_pull_error(stderr), detail)


def _private_dir(parent: Path) -> Path:
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="pull-", dir=parent))  # 0700


def _write_auth_file(directory: Path, auth: tuple[str, str, str]) -> Path:
    path = directory / "auth.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(auth_file_content(*auth))
    return path


async def _pump_progress(proc: asyncio.subprocess.Process, secret: str | None,
                         on_progress: ProgressCallback | None) -> str:
    """Read podman's stderr (its progress, then any error) until it closes; hand each line
    to on_progress; return the tail of it."""
    assert proc.stderr is not None
    kept = ""
    pending = ""
    drain = asyncio.create_task(_discard(proc.stdout))
    try:
        while chunk := await proc.stderr.read(4096):
            text = scrub(pending + chunk.decode(errors="replace"), secret)
            *lines, pending = re.split(r"[\r\n]", text)
            kept = (kept + "\n".join(lines) + "\n")[-_KEEP_STDERR:]
            for line in lines:
                _progress(line, on_progress)
        if pending.strip():
            kept += pending
            _progress(pending, on_progress)
        await drain
    except BaseException:
        drain.cancel()
        raise
    return kept


def _progress(line: str, on_progress: ProgressCallback | None) -> None:
    """Podman's progress lines ("Copying blob sha256:..."); its error is the exception's."""
    text = line.strip()
    if text and not text.startswith("Error: ") and on_progress is not None:
        on_progress(text)


async def _discard(stream: asyncio.StreamReader | None) -> None:
    if stream is not None:
        while await stream.read(4096):
            pass
