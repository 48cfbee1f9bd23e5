"""Native error rendering: every failure is `{"error": {code, message, details, parameters}}`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from berth.domain.errors import BerthError, NotFound, SpecInvalid, Violation
from berth.domain.validation import field_path

log = logging.getLogger("berth.api")


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, str]] | None = None,
                   parameters: dict[str, object] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {
        "code": code, "message": message, "details": details or [],
        "parameters": parameters or {}}})


Renderer = Callable[[BerthError], JSONResponse]


def dialect_renderer(request: Request) -> Renderer | None:
    """The error renderer of the dialect that owns this path, if any."""
    for prefix, render in getattr(request.app.state, "error_renderers", []):
        if request.url.path.startswith(prefix):
            return cast(Renderer, render)
    return None


def install_error_handlers(app: FastAPI) -> None:
    app.state.error_renderers = []

    @app.exception_handler(BerthError)
    async def _berth(request: Request, exc: BerthError) -> JSONResponse:
        render = dialect_renderer(request)
        if render is not None:
            return render(exc)
        details = []
        if isinstance(exc, SpecInvalid):
            details = [{"field": v.field, "rule": v.rule, "message": v.message}
                       for v in exc.violations]
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = error_response(exc.status, exc.code, exc.message, details,
                                  {k: v for k, v in exc.parameters.items()
                                   if isinstance(v, str | int | float | bool)})
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for item in exc.errors():
            loc = tuple(item.get("loc", ()))
            where = loc[0] if loc else "request"
            path = field_path(loc[1:]) if len(loc) > 1 else str(where)
            details.append({"field": path, "rule": str(item.get("type", "invalid")),
                            "message": str(item.get("msg", "invalid"))})
        first = details[0] if details else {"field": "request", "message": "invalid"}
        render = dialect_renderer(request)
        if render is not None:
            return render(SpecInvalid([Violation(d["field"], d["rule"], d["message"])
                                       for d in details] or [Violation("request", "invalid",
                                                                       "invalid request")]))
        return error_response(422, "invalid_request", f"{first['field']}: {first['message']}",
                              details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        render = dialect_renderer(request)
        if render is not None and exc.status_code == 404:
            return render(NotFound(str(exc.detail)))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log")
