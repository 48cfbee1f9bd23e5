"""The async queue on /metrics: AsyncCollector over a stand-in gateway (its routing table,
dispatcher and intake), through a real Prometheus registry."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from berth.domain.spec import AsyncConfig
from berth.invocations import metrics as m
from berth.invocations.dispatch import Counters
from berth.invocations.metrics import AsyncCollector
from berth.store.invocations import Backlog

if TYPE_CHECKING:
    from berth.gateway.service import Gateway

NOW = 1000.0


def route(project: str, name: str, enabled: bool | None) -> SimpleNamespace:
    cfg = None if enabled is None else AsyncConfig(enabled=enabled)
    return SimpleNamespace(project=project, name=name, invocations=cfg)


def scrape(by_id: dict[str, SimpleNamespace], backlog: dict[str, Backlog],
           counters: dict[str, Counters], accepted: int = 0, refused: int = 0) -> set[str]:
    gw = SimpleNamespace(table=SimpleNamespace(by_id=by_id),
                         dispatcher=SimpleNamespace(backlog=backlog, counters=counters),
                         intake=SimpleNamespace(accepted=accepted, refused=refused))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AsyncCollector(cast("Gateway", gw)))
    return {line for line in generate_latest(registry).decode().splitlines()
            if line and not line.startswith("#")}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "time", SimpleNamespace(time=lambda: NOW))


def test_backlog_gauges_and_this_gateways_counters() -> None:
    lines = scrape(
        {"d1": route("p", "echo", True), "d2": route("q", "other", True)},
        {"d1": Backlog(queued=3, running=2, oldest_at=NOW - 42.5)},
        {"d1": Counters(dispatched=7, retried=2, ended={"SUCCEEDED": 4, "FAILED": 1})},
        accepted=9, refused=1)
    d1 = 'deployment="echo",project="p"'
    d2 = 'deployment="other",project="q"'
    assert lines == {
        f"berth_async_queued_requests{{{d1}}} 3.0",
        f"berth_async_running_requests{{{d1}}} 2.0",
        f"berth_async_oldest_request_age_seconds{{{d1}}} 42.5",
        # enabled with nothing pending: zeros, and no age
        f"berth_async_queued_requests{{{d2}}} 0.0",
        f"berth_async_running_requests{{{d2}}} 0.0",
        f"berth_async_dispatched_total{{{d1}}} 7.0",
        f"berth_async_retried_total{{{d1}}} 2.0",
        f'berth_async_completed_total{{{d1},status="FAILED"}} 1.0',
        f'berth_async_completed_total{{{d1},status="SUCCEEDED"}} 4.0',
        "berth_async_accepted_total 9.0",
        "berth_async_refused_total 1.0",
    }


@pytest.mark.parametrize(("enabled", "pending", "shown"), [
    (None, False, False),  # no async config, nothing pending: left out
    (False, False, False),  # disabled, nothing pending
    (False, True, True),  # disabled, but accepted requests still run
    (None, True, True),
    (True, False, True),
])
def test_which_deployments_are_shown(enabled: bool | None, pending: bool, shown: bool) -> None:
    backlog = {"d1": Backlog(queued=1, oldest_at=NOW)} if pending else {}
    lines = scrape({"d1": route("p", "echo", enabled)}, backlog, {})
    assert any(line.startswith("berth_async_queued_requests{") for line in lines) is shown


def test_what_the_table_no_longer_routes_is_left_out() -> None:
    lines = scrape({}, {"gone": Backlog(queued=5, oldest_at=NOW)},
                   {"gone": Counters(dispatched=3)})
    assert lines == {"berth_async_accepted_total 0.0", "berth_async_refused_total 0.0"}


def test_an_oldest_request_from_the_future_is_age_zero() -> None:
    lines = scrape({"d1": route("p", "echo", True)},
                   {"d1": Backlog(queued=1, oldest_at=NOW + 5)}, {})
    assert 'berth_async_oldest_request_age_seconds{deployment="echo",project="p"} 0.0' in lines


def test_label_values_are_escaped() -> None:
    lines = scrape({"d1": route('p"x', "a\\b", True)}, {}, {})
    assert 'berth_async_queued_requests{deployment="a\\\\b",project="p\\"x"} 0.0' in lines
