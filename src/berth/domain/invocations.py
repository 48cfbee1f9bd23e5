"""Async invocations: the status machine, and the pure rules of a try's outcome.

A request is QUEUED when it is durably stored, RUNNING while a dispatcher holds its lease,
SUCCEEDED or FAILED once its one result is written, and EXPIRED when that result is removed
after the deployment's `result_ttl`. A RUNNING request goes back to QUEUED for a retry, or
when its lease lapses (the dispatcher holding it died): delivery is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from berth.domain.status import IllegalTransition


class InvocationStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @classmethod
    def pending(cls) -> frozenset[InvocationStatus]:
        """Not finished: the backlog."""
        return frozenset({cls.QUEUED, cls.RUNNING})

    @classmethod
    def finished(cls) -> frozenset[InvocationStatus]:
        """A result was written (and is kept until the TTL)."""
        return frozenset({cls.SUCCEEDED, cls.FAILED})


_I = InvocationStatus
# Each legal move, with the reason it is made.
INVOCATION_TRANSITIONS: dict[InvocationStatus, dict[InvocationStatus, str]] = {
    _I.QUEUED: {_I.RUNNING: "leased by a dispatcher",
                _I.FAILED: "the deployment was deleted before it ran"},
    _I.RUNNING: {_I.SUCCEEDED: "the replica answered 2xx",
                 _I.FAILED: "the replica refused it, or the last try failed",
                 _I.QUEUED: "a try failed and another is due, or the lease lapsed"},
    _I.SUCCEEDED: {_I.EXPIRED: "the result outlived result_ttl"},
    _I.FAILED: {_I.EXPIRED: "the result outlived result_ttl"},
    _I.EXPIRED: {},
}


def check_invocation_transition(old: InvocationStatus, new: InvocationStatus) -> str:
    """The reason for `old -> new`, or IllegalTransition."""
    reason = INVOCATION_TRANSITIONS[old].get(new)
    if reason is None:
        raise IllegalTransition(f"invocation status {old} -> {new} is not allowed")
    return reason


class TryError(StrEnum):
    """How a try ended without an answer from the replica."""

    CONNECT = "connect"  # no replica could be reached
    TIMEOUT = "timeout"  # attempt_timeout passed
    LOST = "lost"  # the connection broke mid-answer


@dataclass(frozen=True)
class Outcome:
    status: InvocationStatus  # QUEUED (retry), SUCCEEDED or FAILED
    retry_in: float = 0.0  # QUEUED: seconds until the next try


# The replica's answers worth another try: overload and server errors (429 as SQS and
# Knative's queue-proxy treat it), never a 4xx verdict on the request itself.
RETRIED_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential: base, 2·base, 4·base, … after tries 1, 2, 3, …, at most `cap`."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


def outcome(status_code: int | None, error: TryError | None, attempt: int, max_attempts: int,
            base: float = 1.0, cap: float = 60.0) -> Outcome:
    """What a try's end means: `status_code` of the replica's answer, or `error`."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(_I.SUCCEEDED)
    retriable = error is not None or (status_code is not None and status_code in RETRIED_STATUS)
    if retriable and attempt < max_attempts:
        return Outcome(_I.QUEUED, backoff_seconds(attempt, base, cap))
    return Outcome(_I.FAILED)
