"""Native v1: a deployment's async requests (intake is the gateway's `POST {address}/async/…`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError

from berth.api import state
from berth.api.body import api_router, parse_json
from berth.api.v1.models import AsyncRequestOut, AsyncRequestPage
from berth.domain.errors import SpecInvalid
from berth.domain.invocations import InvocationStatus
from berth.services.invocations import InvocationService
from berth.store.invocations import Invocation

router = api_router(prefix="/v1/projects/{project}/deployments/{name}/async", tags=["async"])

INLINE_RESULT_BYTES = 1024 * 1024  # a larger result is read from its dataset
STATUS_NAMES = ", ".join(s.value for s in InvocationStatus)


def _invalid(param: str, rule: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", param), "type": rule, "msg": message}])


def parse_statuses(values: list[str]) -> list[InvocationStatus]:
    """`status=QUEUED&status=failed` or `status=QUEUED,FAILED`, any case."""
    out: list[InvocationStatus] = []
    for value in values:
        for name in value.split(","):
            try:
                status = InvocationStatus(name.strip().upper())
            except ValueError:
                raise _invalid("status", "enum", f"{name.strip()[:40]!r} is not a status; "
                               f"expected one of {STATUS_NAMES}") from None
            if status not in out:
                out.append(status)
    return out


def parse_time(param: str, value: str | None) -> float | None:
    """Unix seconds, or an ISO 8601 time (UTC when it names no offset)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _invalid(param, "datetime", "must be an ISO 8601 time "
                           "(2024-05-01T12:00:00Z) or unix seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise _invalid(param, "datetime", "unix seconds must be a finite number >= 0")
    return seconds


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def inline_result(svc: InvocationService, inv: Invocation) -> Any:
    """The result as JSON data when it is JSON of at most INLINE_RESULT_BYTES, else None."""
    if inv.status not in InvocationStatus.finished() or inv.result_path is None:
        return None
    if inv.result_size is not None and inv.result_size > INLINE_RESULT_BYTES:
        return None
    data = svc.result(inv)
    if data is None or len(data) > INLINE_RESULT_BYTES or not data.strip():
        return None
    try:
        return parse_json(data)
    except SpecInvalid:  # not JSON (or JSON the API would not answer: NaN, deep, ...)
        return None


def request_out(inv: Invocation, deployment: str, result: Any = None) -> AsyncRequestOut:
    return AsyncRequestOut(
        id=inv.id, deployment=deployment, status=inv.status, reason=inv.reason,
        attempts=inv.attempts, max_attempts=inv.max_attempts,
        created_at=datetime.fromtimestamp(inv.created_at, UTC),
        started_at=_moment(inv.started_at), finished_at=_moment(inv.finished_at),
        status_code=inv.status_code, error=inv.error, route=inv.route,
        body_size=inv.body_size, dataset=inv.dataset, result_path=inv.result_path,
        result_size=inv.result_size, expires_at=_moment(inv.expires_at), result=result)


StatusQuery = Annotated[list[str], Query(
    description=f"Only these statuses ({STATUS_NAMES}); repeat it or separate by commas.")]
TimeQuery = Annotated[str | None, Query(
    description="Created at or after (since) / before (until): ISO 8601 or unix seconds.")]


@router.get("", response_model=AsyncRequestPage,
            summary="List a deployment's async requests, newest first, with counts per status")
def list_(
    project: str, name: str, request: Request,
    status: StatusQuery = [],  # noqa: B006 - FastAPI copies a list default per request
    since: TimeQuery = None,
    until: TimeQuery = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> AsyncRequestPage:
    statuses = parse_statuses(status)
    start, end = parse_time("since", since), parse_time("until", until)
    svc = state.invocations(request)
    found = svc.page(project, name, statuses=statuses, since=start, until=end,
                     offset=(page - 1) * per_page, limit=per_page)
    if start is None and end is None:
        held = svc.counts(project, name)
        counts = {s: held.get(s, 0) for s in InvocationStatus}
    else:
        counts = {s: svc.page(project, name, statuses=[s], since=start, until=end,
                              limit=0).total for s in InvocationStatus}
    return AsyncRequestPage(total=found.total, page=page, per_page=per_page, counts=counts,
                            items=[request_out(inv, name) for inv in found.items])


@router.get("/{request_id}", response_model=AsyncRequestOut,
            summary="One async request: status, attempts, times, and its result (inline when "
                    "it is JSON of at most 1 MiB)")
def get(project: str, name: str, request_id: str, request: Request) -> AsyncRequestOut:
    svc = state.invocations(request)
    inv = svc.get(project, name, request_id)
    return request_out(inv, name, inline_result(svc, inv))
