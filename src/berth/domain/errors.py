"""The error catalogue: every failure a caller can see, with a code, a name and parameters.

Dialects translate these into their own shapes; nothing here knows about HTTP bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Violation:
    """One broken rule: the dotted field path, the rule's short name and a sentence."""

    field: str
    rule: str
    message: str


class BerthError(Exception):
    """Base of all errors the services raise on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, **parameters: Any) -> None:
        super().__init__(message)
        self.message = message
        self.parameters = parameters


class SpecInvalid(BerthError):
    code = "invalid_spec"
    status = 422

    def __init__(self, violations: list[Violation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"{first.field}: {first.message}{more}")
        self.violations = violations


class MalformedBody(SpecInvalid):
    """The request is not well-formed (not JSON, not UTF-8, nested too deep...): 400."""

    code = "invalid_request"
    status = 400


class PayloadTooLarge(BerthError):
    code = "payload_too_large"
    status = 413


class NotFound(BerthError):
    code = "not_found"
    status = 404


class Conflict(BerthError):
    code = "conflict"
    status = 409


class PreconditionFailed(BerthError):
    code = "precondition_failed"
    status = 412


class Unauthorized(BerthError):
    code = "unauthorized"
    status = 401


class Forbidden(BerthError):
    code = "forbidden"
    status = 403


@dataclass
class ErrorBody:
    """A rendered native error, used by the API layer."""

    code: str
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
