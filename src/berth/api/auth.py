"""Control-plane authentication and authorization.

Credentials are `Authorization: Bearer <token>` (also `apikey`/`token` schemes, any case), or
where a dialect's SDK sends them (Scale's `x-api-key`). GET and HEAD need read access; every
other method needs write.

Every route declares how it is authorized: exactly one `Authorization` among its dependencies
(tests/unit/api/test_route_authorization.py walks every route of the app). Its rule for a
route is one of `Rule`, decided by `Authorization.rule_for` from the route alone:

- OWNER: the route names a resource by id alone (a task, a Gcore v2 instance, a TIR endpoint
  URL) and its endpoint is marked `@owned_by(owner, missing)`. The resource is looked up, and
  the project that owns it must be one the token may use. A resource of a project the token
  may not use answers exactly as a missing one (`missing`, a 404): a token cannot learn what
  exists outside its scope.
- PLATFORM: the endpoint is marked `@platform_fact`: read-only facts of this installation that
  belong to no project (flavors, regions, SKUs, capacity). Any valid token may read them.
- PROJECT: the request names a project (a path's `project` / `project_id`, TIR's team and
  project, Scale's account header, Foundry's one project): it must be one the token may use,
  else 403 (the check comes first, so nothing about the project's resources is revealed).
- ADMIN: anything else. A route whose authorization cannot name a project is for the admin
  token only: the default for a route added without a thought for it is to deny.
- PUBLIC: `public`, for the health check alone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from berth.api import state
from berth.domain.errors import BerthError, Forbidden, NotFound, Unauthorized
from berth.domain.records import ControlToken
from berth.services.tokens import ADMIN

SCHEMES = {"bearer", "apikey", "token"}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
PROJECT_PARAMS = ("project", "project_id")
OWNED_BY = "__berth_owned_by__"
PLATFORM_FACT = "__berth_platform_fact__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Owner = Callable[[Request], "str | None"]  # the owning project; None: there is no such resource
Missing = Callable[[Request], BerthError]  # what the route answers for a missing resource


class Rule(enum.Enum):
    ADMIN = "admin"
    PROJECT = "project"
    OWNER = "owner"
    PLATFORM = "platform"
    PUBLIC = "public"


@dataclass(frozen=True)
class OwnedBy:
    owner: Owner
    missing: Missing


def owned_by(owner: Owner, missing: Missing) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint that names a resource by id: see the module docstring (OWNER)."""
    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, OWNED_BY, OwnedBy(owner, missing))
        return endpoint
    return mark


def platform_fact(endpoint: Endpoint) -> Endpoint:
    """Marks a read-only endpoint of facts that belong to no project (PLATFORM)."""
    setattr(endpoint, PLATFORM_FACT, True)
    return endpoint


def token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in SCHEMES and value.strip():
        return value.strip()
    return None


def authenticate(request: Request, token: str | None) -> ControlToken:
    tokens = state.tokens(request)
    if token is None:
        raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>' "
                           "(the admin token is in the data directory's admin-token file)")
    principal = tokens.authenticate(token)
    if principal is None:
        raise Unauthorized("invalid token")
    request.state.principal = principal
    return principal


def check_scope(request: Request, principal: ControlToken, project: str | None) -> None:
    write = request.method not in READ_METHODS
    if not principal.may(write, project):
        what = "write" if write else "read"
        where = f" in project {project!r}" if project else ""
        raise Forbidden(f"token {principal.name!r} may not {what}{where}",
                        token=principal.name)


def check_owner(request: Request, principal: ControlToken, owned: OwnedBy) -> str:
    """The owning project of the resource the request names, once the token may use it; a
    resource of a project it may not use is missing to it."""
    project = owned.owner(request)
    if project is None or not principal.may(False, project):
        raise owned.missing(request)
    check_scope(request, principal, project)  # in scope: read, or write too
    return project


def path_project(request: Request) -> str | None:
    """The project a native or Gcore path names (`project`, or Gcore's `project_id`)."""
    for name in PROJECT_PARAMS:
        if name in request.path_params:
            return str(request.path_params[name])
    return None


def _same_forbidden(_request: Request, exc: Forbidden) -> BerthError:
    return exc


@dataclass(frozen=True)
class Authorization:
    """A route's authorization, as a FastAPI dependency (see the module docstring).

    `project` reads the project the request names; `params` are the path parameters it reads
    it from (None: it names one for every route, e.g. from a header). `denied` turns a 403
    into the dialect's own. With `optional` (inference relays, OWNER routes only), a request
    without a control token goes on, and the gateway checks the deployment's API keys."""

    project: Callable[[Request], str | None] = path_project
    params: tuple[str, ...] | None = PROJECT_PARAMS
    credentials: Callable[[Request], str | None] = token_from
    denied: Callable[[Request, Forbidden], BerthError] = _same_forbidden
    optional: bool = False

    def rule_for(self, endpoint: Any, path_params: Collection[str]) -> Rule:
        if getattr(endpoint, OWNED_BY, None) is not None:
            return Rule.OWNER
        if getattr(endpoint, PLATFORM_FACT, False):
            return Rule.PLATFORM
        if self.params is None or any(p in path_params for p in self.params):
            return Rule.PROJECT
        return Rule.ADMIN

    def __call__(self, request: Request) -> None:
        endpoint = request.scope.get("endpoint")
        rule = self.rule_for(endpoint, request.path_params)
        token = self.credentials(request)
        if rule == Rule.OWNER:
            owned: OwnedBy = getattr(endpoint, OWNED_BY)
            if self.optional:
                principal = state.tokens(request).authenticate(token) if token else None
                if principal is None:  # no control token: the gateway decides
                    if owned.owner(request) is None:
                        raise owned.missing(request)
                    return
                request.state.principal = principal
            else:
                principal = authenticate(request, token)
            check_owner(request, principal, owned)
            return
        principal = authenticate(request, token)
        project = self.project(request) if rule == Rule.PROJECT else None
        if rule == Rule.ADMIN or (rule == Rule.PROJECT and project is None):
            if principal.access != ADMIN:
                raise Forbidden(f"token {principal.name!r} may not use this route: it names "
                                "no project, so it needs the admin token", token=principal.name)
        elif rule == Rule.PLATFORM:
            check_scope(request, principal, None)
        else:
            try:
                check_scope(request, principal, project)
            except Forbidden as exc:
                raise self.denied(request, exc) from None


class Public(Authorization):
    """No credentials: the health check."""

    def rule_for(self, endpoint: Any, path_params: Collection[str]) -> Rule:
        return Rule.PUBLIC

    def __call__(self, request: Request) -> None:
        return None


require_token = Authorization()  # the project in the path (native, Gcore)
require_admin = Authorization(params=())  # nothing names a project: the admin token only
public = Public()


def task_project(request: Request) -> str | None:
    try:
        return state.tasks(request).get(str(request.path_params["task_id"])).project
    except NotFound:
        return None


def task_missing(request: Request) -> BerthError:
    task_id = str(request.path_params["task_id"])
    return NotFound(f"task {task_id!r} not found", task_id=task_id)


owned_task = owned_by(task_project, task_missing)  # routes of /tasks/{task_id}
