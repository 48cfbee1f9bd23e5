"""The error answers of each operation in `/openapi.json`, in the shape of its surface.

FastAPI lists only 2xx and its own 422. Every operation here lists the errors it can answer
(400 malformed request, 401, 403, 404 where a path names a resource, 409 for changes, 412
where it reads If-Match, 413 where it takes a body, the validation status) with the body its
surface renders: the native `{"error": ...}` or a dialect's own shape (the models below
mirror each dialect's `render_error`; tests/unit/api/test_openapi.py holds them together).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.routing import BaseRoute

from berth.api.body import api_routes, takes_body
from berth.api.v1.models import ErrorDetail, ErrorOut

_CONVERTOR = re.compile(r":\w+}")  # "{rest:path}" is "{rest}" in the document


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class GcoreError(_Shape):
    exception_class: str
    message: str
    errors: list[ErrorDetail] | None = None


class TirError(_Shape):
    code: int
    data: dict[str, Any]
    message: str
    errors: str | dict[str, list[str]]


class ScaleLocatedError(_Shape):
    loc: list[str]
    msg: str
    type: str


class ScaleError(_Shape):
    detail: str | list[ScaleLocatedError]


class FoundryError(_Shape):
    errorCode: str  # Foundry's field names
    errorName: str
    errorInstanceId: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Surface:
    """What one API surface answers on error: its body model, and the status it gives a
    request that fails validation (422, or 400 where the platform says 400)."""

    model: type[BaseModel]
    validation_status: int


NATIVE = Surface(ErrorOut, 422)
DIALECT_SURFACES = {"gcore": Surface(GcoreError, 400), "tir": Surface(TirError, 400),
                    "scale": Surface(ScaleError, 422), "foundry": Surface(FoundryError, 400)}

DESCRIPTIONS = {
    400: "Malformed request: not JSON or not UTF-8, nested too deep, NaN, duplicate keys, "
         "an over-long or non-text parameter",
    401: "No valid token",
    403: "The token may not do this, or not in this project",
    404: "Not found",
    409: "Conflicts with the current state (a name taken, a change in progress)",
    412: "If-Match does not match the current generation",
    413: "The request body is over the server's limit (BERTH_MAX_BODY_BYTES)",
    422: "The request is invalid; the answer names each field and rule",
}


def _statuses(route: APIRoute, path: str, method: str, surface: Surface) -> list[int]:
    statuses = {400, 401, 403}
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses.add(409)
    headers = {p.alias.lower() for p in route.dependant.header_params}
    if "if-match" in headers:
        statuses.add(412)
    if takes_body(route):
        statuses.add(413)
    has_inputs = takes_body(route) or bool(route.dependant.query_params
                                           or route.dependant.path_params)
    if has_inputs or surface.validation_status == 400:
        statuses.add(surface.validation_status)
    return sorted(statuses)


def add_error_answers(schema: dict[str, Any], routes: Sequence[BaseRoute],
                      dialects: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    """Lists the error answers of every operation in `schema` (FastAPI's document of the app
    with these `routes`); `dialects` maps each dialect's name to the path prefixes it owns."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for surface in (NATIVE, *DIALECT_SURFACES.values()):
        shape = surface.model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(shape.pop("$defs", {}))
        components[surface.model.__name__] = shape
    paths = schema.get("paths", {})
    for path, route in api_routes(routes):
        surface = next((DIALECT_SURFACES[name] for name, prefixes in dialects
                        if path.startswith(prefixes)), NATIVE)
        for method in route.methods or ():
            operation = paths.get(_CONVERTOR.sub("}", path), {}).get(method.lower())
            if operation is None:
                continue
            answers = operation.setdefault("responses", {})
            if surface.validation_status != 422:
                answers.pop("422", None)  # FastAPI's own; this surface answers 400
            ref = {"$ref": f"#/components/schemas/{surface.model.__name__}"}
            for status in _statuses(route, path, method.lower(), surface):
                answers[str(status)] = {"description": DESCRIPTIONS[status],
                                        "content": {"application/json": {"schema": ref}}}
    if not any("HTTPValidationError" in str(item) for item in paths.values()):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
