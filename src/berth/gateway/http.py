"""HTTP/1.1 pieces the proxy writes itself."""

from __future__ import annotations

import json
from http import HTTPStatus

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection",
})
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


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
