"""Control-plane authentication and scopes.

`Authorization: Bearer <token>` (also `apikey`/`token` schemes, any case). GET and HEAD need
read access; every other method needs write. A project in the path (`project`, or Gcore's
`project_id`) must be one the token may use. Token management needs the admin token.
"""

from __future__ import annotations

from fastapi import Request

from berth.api import state
from berth.domain.errors import Forbidden, Unauthorized
from berth.domain.records import ControlToken
from berth.services.tokens import ADMIN

SCHEMES = {"bearer", "apikey", "token"}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


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


def require_token(request: Request) -> None:
    principal = authenticate(request, token_from(request))
    project = request.path_params.get("project", request.path_params.get("project_id"))
    check_scope(request, principal, None if project is None else str(project))


def require_admin(request: Request) -> None:
    principal = authenticate(request, token_from(request))
    if principal.access != ADMIN:
        raise Forbidden("managing tokens needs the admin token", token=principal.name)
