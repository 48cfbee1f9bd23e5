"""Pure rules of async intake: which replica path a call names, where its result goes, and
why intake refuses it."""

from __future__ import annotations

from dataclasses import dataclass

from berth.domain.spec import AsyncConfig

DEFAULT_DATASET = "default"
ASYNC_PREFIX = "/async/"


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Target:
    route: str  # the name the caller used
    path: str  # on the replica, with the query


def target(cfg: AsyncConfig, rest: str, query: str = "") -> Target | Refusal:
    """The replica path of `POST {address}/async/{rest}`: a named target route, or with none
    configured the path `/{rest}` itself."""
    if not cfg.enabled:
        return Refusal(409, "async_disabled", "async invocation is not enabled for this "
                       "deployment; enable it with async.enabled")
    if not rest or rest.startswith("/"):
        return Refusal(404, "no_route", "name a route: POST {address}/async/{route}")
    if cfg.target_routes:
        path = cfg.target_routes.get(rest)
        if path is None:
            names = ", ".join(sorted(cfg.target_routes))
            return Refusal(404, "no_route", f"no async route {rest!r}; the routes are: {names}")
        # a target route may carry its own query: the caller's joins it
        return Target(rest, path + (("&" if "?" in path else "?") + query if query else ""))
    return Target(rest[:64], f"/{rest}" + (f"?{query}" if query else ""))


def too_large(cfg: AsyncConfig, size: int) -> Refusal | None:
    if size > cfg.max_body_bytes:
        return Refusal(413, "body_too_large", f"the request body ({size} bytes) is over "
                       f"async.max_body_bytes ({cfg.max_body_bytes})")
    return None


def backlog_full(cfg: AsyncConfig, pending: int) -> Refusal | None:
    if pending >= cfg.max_backlog:
        return Refusal(429, "backlog_full", f"{pending} async requests are waiting or running "
                       f"(async.max_backlog {cfg.max_backlog}); retry later")
    return None


def dataset_name(cfg: AsyncConfig) -> str:
    return cfg.dataset or DEFAULT_DATASET


def result_path(cfg: AsyncConfig, deployment: str, request_id: str) -> str:
    return f"{cfg.result_prefix or deployment + '/'}{request_id}.json"
