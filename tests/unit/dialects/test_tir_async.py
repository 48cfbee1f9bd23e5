"""TIR's async invocation, without a server: `update_async_configuration` as a native patch,
the async_status date filters and query, and one request in TIR's shape."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.api.dialects.tir import async_status, requests, shapes
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.invocations import InvocationStatus
from berth.domain.spec import AsyncConfig
from berth.store.invocations import Invocation
from tests.unit.dialects.test_tir_shapes import action


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def patch(body: dict[str, Any], current: AsyncConfig | None = None,
          dataset: str | None = "results") -> dict[str, Any]:
    return requests.async_patch(action({"action": "update_async_configuration"} | body),
                                current or AsyncConfig(), dataset, 7)


def violation(body: dict[str, Any], dataset: str | None = "results") -> Violation:
    with pytest.raises(SpecInvalid) as err:
        patch(body, dataset=dataset)
    (v,) = err.value.violations
    return v


def test_enabling_sets_every_native_async_field() -> None:
    out = patch({"async_enabled": True, "async_concurrent_workers": 3,
                 "async_dataset_id": 9, "async_destination_type": "dataset",
                 "async_target_routes": [
                     {"route_name": "QUEUE_1", "route_value": "api/v1/chat/completions"},
                     {"route_name": "predict", "route_value": "/predict"}]})
    assert out == {"async": {
        "enabled": True, "workers": 3, "dataset": "results", "destination_type": "dataset",
        "result_prefix": "api/is-7/response/",
        "target_routes": {"QUEUE_1": "/api/v1/chat/completions", "predict": "/predict"}}}


def test_the_sdks_strings_are_read_and_a_missing_destination_is_a_dataset() -> None:
    out = patch({"async_enabled": "true", "async_concurrent_workers": "2"})["async"]
    assert (out["enabled"], out["workers"], out["destination_type"]) == (True, 2, "dataset")
    assert "target_routes" not in out  # absent: the routes stay as they are


def test_a_route_list_replaces_the_routes_whole() -> None:
    current = AsyncConfig(target_routes={"old": "/old", "keep": "/x"})
    out = patch({"async_enabled": True, "async_concurrent_workers": 1,
                 "async_target_routes": [{"route_name": "keep", "route_value": "y"}]},
                current)
    assert out["async"]["target_routes"] == {"old": None, "keep": "/y"}
    cleared = patch({"async_enabled": True, "async_concurrent_workers": 1,
                     "async_target_routes": []}, current)
    assert cleared["async"]["target_routes"] == {"old": None, "keep": None}


def test_disabling_only_turns_intake_off() -> None:
    assert patch({"async_enabled": False, "async_concurrent_workers": 0}, dataset=None) == {
        "async": {"enabled": False}}


@pytest.mark.parametrize("body, dataset, field", [
    ({}, "results", "async_enabled"),
    ({"async_enabled": True}, "results", "async_concurrent_workers"),
    ({"async_enabled": True, "async_concurrent_workers": 0}, "results",
     "async_concurrent_workers"),
    ({"async_enabled": True, "async_concurrent_workers": 1}, None, "async_dataset_id"),
    ({"async_enabled": True, "async_concurrent_workers": 1,
      "async_destination_type": "queue"}, "results", "async_destination_type"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_target_routes": [
        {"route_name": "a", "route_value": "x"}, {"route_name": "a", "route_value": "y"}]},
     "results", "async_target_routes[1].route_name"),
    ({"async_enabled": True, "async_concurrent_workers": 1, "async_target_routes": [
        {"route_name": "a", "route_value": "two words"}]},
     "results", "async_target_routes[0].route_value"),
])
def test_a_bad_setting_is_refused_naming_the_tir_field(
        body: dict[str, Any], dataset: str | None, field: str) -> None:
    assert violation(body, dataset).field == field


@pytest.mark.parametrize("given, number", [(None, None), (4, 4), ("12", 12), (" 3 ", 3)])
def test_the_dataset_id_is_a_number(given: Any, number: int | None) -> None:
    assert requests.async_dataset_number(action({"async_dataset_id": given})) == number


def test_a_dataset_id_that_is_no_number_is_refused() -> None:
    with pytest.raises(SpecInvalid) as err:
        requests.async_dataset_number(action({"async_dataset_id": "ds-1"}))
    assert err.value.violations[0].field == "async_dataset_id"


def test_native_async_errors_are_named_in_tir_terms() -> None:
    native = SpecInvalid([Violation("async.workers", "less_than_equal", "<= 10000"),
                          Violation("async.target_routes.bad name.[key]", "pattern", "p"),
                          Violation("image", "required", "i")])
    assert [v.field for v in requests.in_tir_terms(native).violations] == [
        "async_concurrent_workers", "async_target_routes", "image"]


def test_the_spec_reads_back_in_tirs_fields() -> None:
    never = shapes.async_fields(AsyncConfig(), None)
    assert never == {"async_enabled": False, "async_concurrent_workers": None,
                     "async_dataset_id": None, "async_destination_type": None,
                     "async_target_routes": []}
    cfg = AsyncConfig(enabled=True, workers=4, dataset="results",
                      target_routes={"QUEUE_1": "/predict"})
    assert shapes.async_fields(cfg, 3) == {
        "async_enabled": True, "async_concurrent_workers": 4, "async_dataset_id": 3,
        "async_destination_type": "dataset",
        "async_target_routes": [{"route_name": "QUEUE_1", "route_value": "/predict"}]}
    off = shapes.async_fields(cfg.model_copy(update={"enabled": False}), 3)
    assert off["async_enabled"] is False and off["async_dataset_id"] == 3


# ---- async_status ---------------------------------------------------------------------------

NOW = ts(2025, 3, 15, 12, 30)
DATE_FILTERS = [  # filter, now, since, until
    ("last_hour", NOW, NOW - 3600, None),
    ("last_24_hours", NOW, NOW - 86400, None),
    ("last_7_days", NOW, NOW - 7 * 86400, None),
    ("current_month", NOW, ts(2025, 3, 1), None),
    ("previous_month", NOW, ts(2025, 2, 1), ts(2025, 3, 1)),
    ("previous_month", ts(2025, 1, 10), ts(2024, 12, 1), ts(2025, 1, 1)),
    ("current_month", ts(2025, 1, 1), ts(2025, 1, 1), None),  # the month's first instant
    ("previous_month", ts(2024, 3, 1), ts(2024, 2, 1), ts(2024, 3, 1)),
]


@pytest.mark.parametrize("date_filter, now, since, until", DATE_FILTERS)
def test_date_filters(date_filter: str, now: float, since: float, until: float | None) -> None:
    assert async_status.date_range(date_filter, now) == (since, until)


def test_the_date_filters_are_the_sdks() -> None:
    from e2enetworks.constants import DATE_FILTER_TYPES
    assert set(async_status.DATE_FILTERS) == set(DATE_FILTER_TYPES)
    assert {f for f, *_ in DATE_FILTERS} == set(DATE_FILTER_TYPES)


def test_the_list_query() -> None:
    q = async_status.list_query(NOW, "last_hour", "3", "20", "QUEUE_1")
    assert (q.since, q.until, q.offset, q.limit, q.route) == (NOW - 3600, None, 40, 20,
                                                              "QUEUE_1")
    every = async_status.list_query(NOW, None, None, None, "")
    assert (every.since, every.until, every.offset, every.limit, every.route) == (
        None, None, 0, async_status.DEFAULT_PER_PAGE, None)


@pytest.mark.parametrize("args, param", [
    (("last_year", None, None), "date_filter"), ((None, "0", None), "page_no"),
    ((None, "x", None), "page_no"), ((None, None, "0"), "per_page"),
    ((None, None, "1001"), "per_page"), ((None, None, "-3"), "per_page"),
    ((None, "9" * 30, None), "page_no"), ((None, "1000001", None), "page_no"),
])
def test_a_bad_list_parameter_is_refused_naming_it(
        args: tuple[str | None, str | None, str | None], param: str) -> None:
    date_filter, page_no, per_page = args
    with pytest.raises(SpecInvalid) as err:
        async_status.list_query(NOW, date_filter, page_no, per_page, None)
    assert err.value.violations[0].field == param


def test_every_status_has_tirs_name() -> None:
    assert async_status.STATUS == {
        InvocationStatus.QUEUED: "queued", InvocationStatus.RUNNING: "in_progress",
        InvocationStatus.SUCCEEDED: "completed", InvocationStatus.FAILED: "failed",
        InvocationStatus.EXPIRED: "expired"}


QUEUED = Invocation(
    id="r1", deployment_id="d1", project="tir-1-2", idempotency_key=None, route="QUEUE_1",
    path="/predict", content_type="application/json", body_size=2,
    status=InvocationStatus.QUEUED, reason="accepted", attempts=0, max_attempts=3,
    attempt_timeout=300, result_ttl=600, created_at=NOW, started_at=None, finished_at=None,
    next_at=NOW, lease_until=None, leased_by=None, lease_token=0, status_code=None,
    error=None, dataset=None, result_path=None, result_size=None, expires_at=None)


def test_one_request_in_tirs_shape() -> None:
    queued = async_status.item(QUEUED, "api/is-7/response/r1.json", 3)
    assert queued == {
        "request_id": "r1", "status": "queued", "status_reason": "accepted",
        "status_code": None, "attempts": 0, "max_attempts": 3, "error": None,
        "queue_name": "QUEUE_1", "created_at": "2025-03-15T12:30:00Z", "started_at": None,
        "completed_at": None, "updated_at": "2025-03-15T12:30:00Z",
        "response_path": "api/is-7/response/r1.json", "dataset_id": 3}
    done = replace(QUEUED, status=InvocationStatus.FAILED, attempts=3, status_code=503,
                   error="the replica answered 503", started_at=NOW + 1, finished_at=NOW + 9)
    out = async_status.item(done, "p", 3)
    assert (out["status"], out["status_code"], out["attempts"], out["error"]) == (
        "failed", 503, 3, "the replica answered 503")
    assert out["completed_at"] == out["updated_at"] == "2025-03-15T12:30:09Z"
    expired = replace(done, status=InvocationStatus.EXPIRED, expires_at=NOW + 600)
    assert async_status.item(expired, "p", 3)["updated_at"] == "2025-03-15T12:40:00Z"
