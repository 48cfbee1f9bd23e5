"""HTTP/1.1 pieces the proxy writes itself."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Final, NamedTuple

HOP_BY_HOP: Final = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection",
})
_STATUS_LINES: Final = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode())
                        for s in HTTPStatus}
_LOWER: Final[dict[bytes, bytes]] = {}  # header names as sent -> lowercased (bounded)
MAX_CACHED_NAMES: Final = 1024

# What client_head does with a replica's header (by its lowercased name); 0: pass it on.
_DROP: Final = 1
_DROP_CHUNKED: Final = 2
_LENGTH: Final = 3
_TYPE: Final = 4
_CACHE: Final = 5
_RESPONSE_KIND: Final[dict[bytes, int]] = {
    **dict.fromkeys(HOP_BY_HOP, _DROP), b"transfer-encoding": _DROP_CHUNKED,
    b"content-length": _LENGTH, b"content-type": _TYPE, b"cache-control": _CACHE}


def lower(name: bytes) -> bytes:
    """A header name lowercased. The same few names come again and again: the lowercased
    object is kept, so this is a lookup, and its hash is already computed for later ones."""
    low = _LOWER.get(name)
    if low is None:
        low = name.lower()
        if len(_LOWER) < MAX_CACHED_NAMES:
            low = _LOWER.setdefault(low, low)
            _LOWER[name] = low
    return low


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


def gateway_error(status: int, code: str, message: str, *, keep_alive: bool,
                  request_id: bytes = b"", extra: dict[str, str] | None = None) -> bytes:
    """A response the gateway makes itself, marked as such."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [status_line(status), b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body), b"x-berth-error-source: gateway\r\n",
            b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n"]
    if request_id:
        head.append(b"x-request-id: " + request_id + b"\r\n")
    for name, value in (extra or {}).items():
        head.append(f"{name}: {value}\r\n".encode("latin-1"))
    head.append(b"\r\n")
    return b"".join(head) + body


def plain_response(status: int, content_type: bytes, body: bytes, *, keep_alive: bool) -> bytes:
    return b"".join([status_line(status), b"content-type: ", content_type, b"\r\n",
                     b"content-length: %d\r\n" % len(body),
                     b"connection: keep-alive\r\n\r\n" if keep_alive else
                     b"connection: close\r\n\r\n", body])


SKIP_UPSTREAM: Final = HOP_BY_HOP | {b"host", b"content-length", b"x-forwarded-for",
                                     b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
                                     b"expect"}
SKIP_WITH_AUTH: Final = SKIP_UPSTREAM | {b"authorization", b"x-api-key"}


def upstream_head(method: str, target: bytes, headers: list[tuple[bytes, bytes]], *,
                  host: bytes, forwarded: bytes, client: bytes, request_id: bytes,
                  chunked: bool, strip_auth: bool) -> bytes:
    """The request head for a replica, without its `host:` line and the blank line (added
    per upstream): hop-by-hop headers (and those `Connection` names) dropped, the key header
    dropped when the gateway used it, X-Forwarded-* and X-Request-Id set."""
    drop = SKIP_WITH_AUTH if strip_auth else SKIP_UPSTREAM
    length = b""
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode(), target or b"/")]
    for name, value in headers:
        if name not in drop:
            lines.append(b"%s: %s\r\n" % (name, value))
        elif name == b"content-length":
            length = value
        elif name == b"connection":  # it names more hop-by-hop headers
            named = {t.strip().lower() for t in value.split(b",")}
            lines = [ln for ln in lines if ln.split(b":", 1)[0] not in named]
            drop = drop | named
    lines.append(b"x-forwarded-for: %s\r\nx-forwarded-proto: http\r\n"
                 b"x-forwarded-host: %s\r\nx-request-id: %s\r\n" % (
                     forwarded + b", " + client if forwarded else client, host, request_id))
    if chunked:
        lines.append(b"transfer-encoding: chunked\r\n")
    elif length:
        lines.append(b"content-length: %s\r\n" % length)
    return b"".join(lines)


class ResponseHead(NamedTuple):
    data: bytes  # what the client gets
    chunked: bool  # the gateway frames the body in chunks
    until_eof: bool  # the replica's body ends when it closes (HTTP/1.0 style)
    keep_alive: bool


def client_head(status: int, headers: list[tuple[bytes, bytes]], *, method: str,
                http11: bool, keep_alive: bool, request_id: bytes) -> ResponseHead:
    """The response head for the client: hop-by-hop headers dropped, the body framed (chunked
    for HTTP/1.1 when the replica gave no length; else the connection closes), event streams
    marked unbuffered, the request id added."""
    out = [status_line(status)]
    framed = event_stream = cache_control = chunked = False
    for name, value in headers:
        kind = _RESPONSE_KIND.get(lower(name), 0)
        if kind:
            if kind == _DROP:
                continue
            if kind == _DROP_CHUNKED:
                chunked = True
                continue
            if kind == _LENGTH:
                framed = True
            elif kind == _TYPE:
                event_stream = value.startswith(b"text/event-stream")
            else:
                cache_control = True
        out.append(b"%s: %s\r\n" % (name, value))
    bodiless = status in (204, 304) or status < 200 or method == "HEAD"
    rechunk = not framed and not bodiless and http11
    keep_alive = keep_alive and (framed or bodiless or http11)
    if rechunk:
        out.append(b"transfer-encoding: chunked\r\n")
    if event_stream:
        out.append(b"x-accel-buffering: no\r\n")
        if not cache_control:
            out.append(b"cache-control: no-cache\r\n")
    out.append(b"x-request-id: %s\r\nconnection: %s\r\n\r\n" % (
        request_id, b"keep-alive" if keep_alive else b"close"))
    return ResponseHead(b"".join(out), rechunk, not (framed or chunked or bodiless), keep_alive)
