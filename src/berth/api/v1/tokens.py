"""Native v1: named control tokens (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request, Response

from berth.api import state
from berth.api.auth import require_admin
from berth.api.body import JsonBody, api_router
from berth.domain.records import ControlToken

router = api_router(prefix="/v1/tokens", tags=["tokens"], dependencies=[Depends(require_admin)])


def _out(t: ControlToken) -> dict[str, Any]:
    return {"name": t.name, "access": t.access, "projects": t.projects,
            "created_at": t.created_at.isoformat().replace("+00:00", "Z")}


@router.post("", status_code=201, summary="Create a token; its secret is shown only here")
def create(request: Request, response: Response, body: JsonBody) -> dict[str, Any]:
    token, secret = state.tokens(request).create(body, datetime.now(UTC))
    response.headers["Cache-Control"] = "no-store"
    return {**_out(token), "secret": secret}


@router.get("")
def list_(request: Request) -> dict[str, Any]:
    return {"items": [_out(t) for t in state.tokens(request).list()]}


@router.delete("/{name}", status_code=204)
def delete(name: str, request: Request) -> Response:
    state.tokens(request).delete(name)
    return Response(status_code=204)
