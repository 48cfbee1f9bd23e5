"""Dialect request bodies as pydantic models: parsing with located errors, and the schema
for the route's OpenAPI `requestBody`.

Dialect routes read their body with the shared JSON reader (`JsonBody`) and validate it
here, so the dialect's own error renderer answers, naming the field.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from berth.domain.errors import SpecInvalid, Violation
from berth.domain.validation import violations_from

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def parse(adapter: TypeAdapter[T], data: Any, *, prefix: tuple[str, ...] = (),
          tagged: bool = False) -> T:
    """`data` validated by `adapter`; SpecInvalid naming each broken field (under `prefix`).
    `tagged`: the type is a tagged union, whose tag pydantic puts first in each location."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        violations = violations_from(exc, prefix)
        if tagged:
            violations = [type(v)(_untagged(v.field), v.rule, v.message) for v in violations]
        raise SpecInvalid(violations) from None


def _untagged(field: str) -> str:
    _, dot, rest = field.partition(".")
    return rest if dot else "body"


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """`openapi_extra` declaring the route's JSON request body (self-contained: the
    model's `$defs` inlined, as a route's schema cannot point into a model's own defs)."""
    schema = adapter.json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(schema, defs)}}}}


@functools.cache
def _adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def parse_object(model: type[M], body: Any) -> M:
    """A JSON-object body as `model`; SpecInvalid naming each broken field (`body` when the
    body is no object)."""
    if not isinstance(body, dict):
        raise SpecInvalid([Violation("body", "type", "the request body must be a JSON object")])
    return cast(M, parse(_adapter(model), body))


def model_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the route's JSON request body."""
    return request_body(_adapter(model))
