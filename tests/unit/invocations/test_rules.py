"""Async intake's pure rules: the replica path a call names, the refusals, where its result
goes."""

from __future__ import annotations

from typing import Any

import pytest

from berth.domain.spec import AsyncConfig
from berth.invocations.rules import (
    DEFAULT_DATASET,
    Refusal,
    Target,
    backlog_full,
    dataset_name,
    result_path,
    target,
    too_large,
)

ON = AsyncConfig(enabled=True)
ROUTED = AsyncConfig(enabled=True, target_routes={"gen": "/v1/generate", "embed": "/embed"})
LONG = "x" * 80

# (config, rest after /async/, query) -> target, or the refusal's (status, code)
TARGETS: list[tuple[AsyncConfig, str, str, Target | tuple[int, str]]] = [
    # no target routes: the rest is the replica's path
    (ON, "predict", "", Target("predict", "/predict")),
    (ON, "predict", "a=1&b=2", Target("predict", "/predict?a=1&b=2")),
    (ON, "v1/chat/completions", "", Target("v1/chat/completions", "/v1/chat/completions")),
    (ON, LONG, "", Target(LONG[:64], f"/{LONG}")),  # the stored route name is bounded
    (ON, "", "", (404, "no_route")),
    (ON, "/predict", "", (404, "no_route")),  # /async//predict
    # target routes: only the names configured
    (ROUTED, "gen", "", Target("gen", "/v1/generate")),
    (ROUTED, "gen", "n=2", Target("gen", "/v1/generate?n=2")),
    (ROUTED, "embed", "", Target("embed", "/embed")),
    (ROUTED, "v1/generate", "", (404, "no_route")),  # the path is not a name
    (ROUTED, "gen/x", "", (404, "no_route")),
    (ROUTED, "other", "", (404, "no_route")),
    (ROUTED, "", "", (404, "no_route")),
    # disabled: refused before anything else
    (AsyncConfig(), "predict", "", (409, "async_disabled")),
    (AsyncConfig(), "", "", (409, "async_disabled")),
    (ROUTED.model_copy(update={"enabled": False}), "gen", "", (409, "async_disabled")),
]


@pytest.mark.parametrize(("cfg", "rest", "query", "want"), TARGETS,
                         ids=[f"{i}-{r[:12]!r}" for i, (_, r, _, _) in enumerate(TARGETS)])
def test_target(cfg: AsyncConfig, rest: str, query: str,
                want: Target | tuple[int, str]) -> None:
    got = target(cfg, rest, query)
    if isinstance(want, Target):
        assert got == want
    else:
        assert isinstance(got, Refusal) and (got.status, got.code) == want
        assert got.message


def test_an_unknown_route_names_the_routes_there_are() -> None:
    got = target(ROUTED, "other")
    assert isinstance(got, Refusal) and "'other'" in got.message
    assert "embed, gen" in got.message


def test_the_query_joins_a_target_route_that_has_one() -> None:
    cfg = AsyncConfig(enabled=True, target_routes={"gen": "/v1/generate?mode=async"})
    assert target(cfg, "gen") == Target("gen", "/v1/generate?mode=async")
    assert target(cfg, "gen", "n=2") == Target("gen", "/v1/generate?mode=async&n=2")


SIZES = [(0, None), (99, None), (100, None), (101, (413, "body_too_large"))]


@pytest.mark.parametrize(("size", "want"), SIZES)
def test_too_large(size: int, want: tuple[int, str] | None) -> None:
    got = too_large(AsyncConfig(max_body_bytes=100), size)
    assert (got and (got.status, got.code)) == want
    if got is not None:
        assert f"({size} bytes)" in got.message and "max_body_bytes (100)" in got.message


BACKLOGS = [(0, None), (9, None), (10, (429, "backlog_full")), (11, (429, "backlog_full"))]


@pytest.mark.parametrize(("pending", "want"), BACKLOGS)
def test_backlog_full(pending: int, want: tuple[int, str] | None) -> None:
    got = backlog_full(AsyncConfig(max_backlog=10), pending)
    assert (got and (got.status, got.code)) == want
    if got is not None:
        assert "max_backlog 10" in got.message


@pytest.mark.parametrize(("cfg", "want"), [
    ({}, DEFAULT_DATASET),
    ({"dataset": "results"}, "results"),
])
def test_dataset_name(cfg: dict[str, Any], want: str) -> None:
    assert dataset_name(AsyncConfig(**cfg)) == want


@pytest.mark.parametrize(("prefix", "want"), [
    (None, "echo/r1.json"),
    ("out/", "out/r1.json"),
    ("a/b/", "a/b/r1.json"),
])
def test_result_path(prefix: str | None, want: str) -> None:
    assert result_path(AsyncConfig(result_prefix=prefix), "echo", "r1") == want
