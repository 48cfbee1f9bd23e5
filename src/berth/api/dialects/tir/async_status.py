"""TIR's `…/serving/inference/{id}/async_status/`: the query, its date filters, and one
request in TIR's shape. Pure: the route reads the requests through InvocationService.

The SDK asks `?request_id=R&` (`get_async_invocation_request_status`: a list with that one
request, empty when unknown) or `?date_filter=F&page_no=N&per_page=M&`
(`get_async_invocation_requests_list`), optionally with `queue_name` (a route name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from berth.domain.errors import SpecInvalid, Violation
from berth.domain.invocations import InvocationStatus
from berth.store.invocations import Invocation

# The SDK's DATE_FILTER_TYPES, each a window ending now; months are UTC calendar months.
DATE_FILTERS = ("last_hour", "last_24_hours", "last_7_days", "current_month", "previous_month")
STATUS = {
    InvocationStatus.QUEUED: "queued", InvocationStatus.RUNNING: "in_progress",
    InvocationStatus.SUCCEEDED: "completed", InvocationStatus.FAILED: "failed",
    InvocationStatus.EXPIRED: "expired",
}
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000
DEFAULT_PER_PAGE = 10


def _bad(param: str, rule: str, message: str) -> SpecInvalid:
    return SpecInvalid([Violation(param, rule, message)])


def _month_start(t: datetime) -> datetime:
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def date_range(date_filter: str, now: float) -> tuple[float, float | None]:
    """The window `[since, until)` of creation times a date filter keeps (`until` None: up
    to now)."""
    spans = {"last_hour": timedelta(hours=1), "last_24_hours": timedelta(days=1),
             "last_7_days": timedelta(days=7)}
    if date_filter in spans:
        return now - spans[date_filter].total_seconds(), None
    this_month = _month_start(datetime.fromtimestamp(now, UTC))
    if date_filter == "current_month":
        return this_month.timestamp(), None
    if date_filter == "previous_month":
        previous = _month_start(this_month - timedelta(days=1))
        return previous.timestamp(), this_month.timestamp()
    raise _bad("date_filter", "one_of", f"must be one of {', '.join(DATE_FILTERS)}; "
               f"got {date_filter!r}")


@dataclass(frozen=True)
class ListQuery:
    since: float | None
    until: float | None
    offset: int
    limit: int
    route: str | None


def _positive(param: str, value: str | None, default: int, most: int) -> int:
    if value is None or not value.strip():
        return default
    text = value.strip()
    if not text.isdigit() or len(text) > 12 or not 1 <= int(text) <= most:
        raise _bad(param, "range", f"must be an integer 1..{most}; got {value[:50]!r}")
    return int(text)


def list_query(now: float, date_filter: str | None, page_no: str | None,
               per_page: str | None, queue_name: str | None) -> ListQuery:
    """The list form's parameters, checked (a bad one is a 400 naming it). No date filter
    lists every request kept."""
    since, until = (None, None)
    if date_filter is not None and date_filter.strip():
        since, until = date_range(date_filter.strip(), now)
    page = _positive("page_no", page_no, 1, MAX_PAGE)
    size = _positive("per_page", per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)
    route = queue_name.strip() if queue_name is not None and queue_name.strip() else None
    return ListQuery(since, until, (page - 1) * size, size, route)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def item(inv: Invocation, response_path: str, dataset_id: int | None) -> dict[str, Any]:
    """One request as TIR shows it; `response_path` is its result object's path in the
    dataset `dataset_id` (where it is, or will be, written)."""
    expired = inv.expires_at if inv.status is InvocationStatus.EXPIRED else None
    updated = max(t for t in (inv.created_at, inv.started_at, inv.finished_at, expired)
                  if t is not None)
    return {
        "request_id": inv.id, "status": STATUS[inv.status], "status_reason": inv.reason,
        "status_code": inv.status_code, "attempts": inv.attempts,
        "max_attempts": inv.max_attempts, "error": inv.error, "queue_name": inv.route,
        "created_at": _iso(inv.created_at), "started_at": _iso(inv.started_at),
        "completed_at": _iso(inv.finished_at), "updated_at": _iso(updated),
        "response_path": response_path, "dataset_id": dataset_id,
    }
