"""Errors the client raises, and how an HTTP error response becomes one."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import ValidationError

from berth.api.v1.models import DeploymentOut, ErrorDetail, ErrorOut


class BerthClientError(Exception):
    """Base of everything the client raises on purpose."""


class BerthAPIError(BerthClientError):
    """The server answered with a 4xx or 5xx status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.parameters = dict(parameters or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{self.message} (HTTP {self.status}, {self.code})"]
        lines += [f"  {d.field}: {d.message}" for d in self.details]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"BerthAPIError(status={self.status}, code={self.code!r}, message={self.message!r})"

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status < 500


class BerthConnectionError(BerthClientError):
    """The server could not be reached (refused, DNS, timeout, connection dropped)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach Berth at {url}: {reason}")


class BerthProtocolError(BerthClientError):
    """A 2xx answer that is not the shape the client expects."""


class DeploymentFailed(BerthClientError):
    """`wait_status` saw the deployment enter a broken status it was not waiting for."""

    def __init__(self, deployment: DeploymentOut) -> None:
        self.deployment = deployment
        reason = f": {deployment.status_reason}" if deployment.status_reason else ""
        super().__init__(f"deployment {deployment.name} is {deployment.status}{reason}")


def error_from_response(response: httpx.Response) -> BerthAPIError:
    """Build a BerthAPIError from any error response, JSON or not. The body must be read."""
    status = response.status_code
    fallback_code = f"http_{status}"
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        message = text[:500] if text else (response.reason_phrase or "error")
        return BerthAPIError(status, fallback_code, message)
    try:
        info = ErrorOut.model_validate(body).error
    except ValidationError:
        return _foreign_error(status, fallback_code, body, response.reason_phrase)
    return BerthAPIError(status, info.code, info.message, info.details, info.parameters)


def _foreign_error(status: int, code: str, body: Any, reason: str) -> BerthAPIError:
    """Error bodies not in Berth's shape, e.g. a framework's `{"detail": ...}`."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return BerthAPIError(status, code, detail)
    if isinstance(detail, list):
        details = [_detail_from_item(item) for item in detail if isinstance(item, dict)]
        return BerthAPIError(status, code, reason or "invalid request", details)
    return BerthAPIError(status, code, reason or json.dumps(body)[:500])


def _detail_from_item(item: dict[str, Any]) -> ErrorDetail:
    loc = item.get("loc") or []
    parts = [str(p) for p in loc if p != "body"] if isinstance(loc, list) else [str(loc)]
    return ErrorDetail(
        field=".".join(parts),
        rule=str(item.get("type", "")),
        message=str(item.get("msg", "")),
    )
