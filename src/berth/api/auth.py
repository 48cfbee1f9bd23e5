"""Control-plane authentication: `Authorization: Bearer <token>` or `apikey <token>`."""

from __future__ import annotations

from fastapi import Request

from berth.domain.errors import Unauthorized
from berth.services.tokens import TokenService

SCHEMES = {"bearer", "apikey", "token"}


def token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in SCHEMES and value.strip():
        return value.strip()
    return None


def require_token(request: Request) -> None:
    tokens: TokenService = request.app.state.tokens
    token = token_from(request)
    if token is None:
        raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>' "
                           "(the admin token is in the data directory's admin-token file)")
    if not tokens.verify(token):
        raise Unauthorized("invalid token")
