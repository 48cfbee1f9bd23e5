"""The one reader of request bodies, query strings and path parameters, for every route.

Every router is made with `api_router()`, whose routes are `CheckedRoute`s. Before FastAPI
(or a route's `JsonBody`) sees a body, the route reads it here: at most `max_body_bytes`
(413 beyond, without reading further), strict UTF-8, nested at most `MAX_DEPTH` deep (checked
before parsing, so the parser cannot recurse out of stack), no NaN/Infinity, no duplicate
keys, no string that is not Unicode text (a lone surrogate) or holds NUL. Query and path
values are held to the same text rules and a length. Failures are `BerthError`s, so each
dialect renders them in its own shape. `create_app` refuses to build an app with a body
route that bypasses this (`unchecked_body_routes`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from berth.domain.errors import MalformedBody, PayloadTooLarge, SpecInvalid, Violation
from berth.domain.validation import field_path

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_PARAM_CHARS = 2048

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}\"")
# A string can only hold a surrogate or NUL through a \u escape: strict UTF-8 has neither.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
_NOT_TEXT = re.compile("[\ud800-\udfff\x00]")
_BOM = b"\xef\xbb\xbf"


class _Unset:
    pass


UNSET: Any = _Unset()  # no body was sent


def _malformed(rule: str, message: str, where: str = "body") -> MalformedBody:
    return MalformedBody([Violation(where, rule, message)])


def nesting_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`, without recursion."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    unterminated = brackets.find(b'"')
    if unterminated >= 0:  # everything after an unterminated quote is inside a string
        brackets = brackets[:unterminated]
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _constant(name: str) -> Any:
    raise _malformed("finite", f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _malformed("finite", f"the number {text[:40]} is out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _malformed("unique_keys", f"the key {key[:80]!r} appears more than once")
            seen.add(key)
    return found


def shown(text: str) -> str:
    """`text` safe to put in an answer: what is not text is shown as its escape."""
    return _NOT_TEXT.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _where(path: tuple[int | str, ...]) -> str:
    return field_path(tuple(shown(p) if isinstance(p, str) else p for p in path))


def text_violations(value: Any) -> list[Violation]:
    """Strings (keys and values) that are not text: a lone surrogate or NUL. Iterative."""
    found: list[Violation] = []
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), value)]
    while stack and len(found) < 10:
        path, item = stack.pop()
        if isinstance(item, str):
            if _NOT_TEXT.search(item):
                found.append(_not_text(_where(path), item))
        elif isinstance(item, dict):
            for key, child in item.items():
                if _NOT_TEXT.search(key):
                    found.append(_not_text(_where((*path, key)), key, what="key"))
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))
    return sorted(found, key=lambda v: v.field)


def _not_text(where: str, text: str, what: str = "string") -> Violation:
    if "\x00" in text:
        return Violation(where, "nul", f"the {what} contains a NUL character (\\u0000)")
    return Violation(where, "surrogate", f"the {what} contains a lone surrogate (a \\ud800-"
                     "\\udfff escape without its pair), which is not a Unicode character")


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body, or a `MalformedBody` / `SpecInvalid` saying why not."""
    if raw.startswith(_BOM):  # RFC 8259 8.1: a parser may ignore it
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("utf8", f"the body is not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise _malformed("required", "a JSON request body is required")
    if nesting_depth_exceeds(raw, max_depth):
        raise _malformed("depth", f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float,
                           object_pairs_hook=_unique)
    except ValueError as exc:  # JSONDecodeError, and ints over Python's digit limit
        raise _malformed("json", f"not valid JSON: {exc}") from None
    except RecursionError:  # unreachable after the depth check; kept so it can never 500
        raise _malformed("depth", "JSON nested too deep") from None
    if _SUSPECT_ESCAPE.search(raw):
        violations = text_violations(value)
        if violations:
            raise SpecInvalid(violations)
    return value


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 once it passes `limit` bytes (Content-Length first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _malformed("content_length", "Content-Length is not a number",
                             "Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes",
                                  limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes",
                                  limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def max_body_bytes(request: Request) -> int:
    limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    return int(limit)


class CheckedRequest(Request):
    """A request whose body was read and vetted once; FastAPI and `JsonBody` reuse it."""

    def __init__(self, request: Request, raw: bytes, value: Any) -> None:
        super().__init__(request.scope, request.receive)
        self.raw = raw
        self.value = value

    async def body(self) -> bytes:
        return self.raw

    async def json(self) -> Any:
        return self.value


async def checked(request: Request) -> CheckedRequest:
    """Read and vet the body of `request` (idempotent)."""
    if isinstance(request, CheckedRequest):
        return request
    raw = await read_limited(request, max_body_bytes(request))
    value = parse_json(raw) if raw.strip() else UNSET
    return CheckedRequest(request, raw, value)


def check_params(request: Request) -> None:
    """Path and query values: text, and at most MAX_PARAM_CHARS long."""
    named: list[tuple[str, str]] = [(f"path.{k}", str(v))
                                    for k, v in request.path_params.items()]
    for key, value in request.query_params.multi_items():
        named.append((f"query.{shown(key[:40])}", key))
        named.append((f"query.{shown(key[:40])}", value))
    for where, text in named:
        if len(text) > MAX_PARAM_CHARS:
            raise _malformed("max_length", f"longer than {MAX_PARAM_CHARS} characters", where)
        if _NOT_TEXT.search(text):
            raise MalformedBody([_not_text(where, text)])


async def json_body(request: Request) -> Any:
    """The request body as JSON, whatever Content-Type says (curl -d sends form type)."""
    value = (await checked(request)).value
    if value is UNSET:
        raise SpecInvalid([Violation("body", "required", "a JSON request body is required")])
    return value


JsonBody = Annotated[Any, Depends(json_body)]


def takes_body(route: APIRoute) -> bool:
    """Whether the route reads a body: a pydantic body parameter or a `JsonBody`."""
    if route.body_field is not None:
        return True
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if dependency.call is json_body:
            return True
        stack.extend(dependency.dependencies)
    return False


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CheckedRoute(APIRoute):
    """Vets path and query values, then (where the route takes one) the body, before the
    route's own handler parses anything."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        with_body = takes_body(self)

        async def vetted(request: Request) -> Response:
            check_params(request)
            if with_body:
                request = await checked(request)
            return await handler(request)

        return vetted


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes go through the shared reader. Every router is made here."""
    return APIRouter(route_class=CheckedRoute, **options)


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, through included routers at any depth."""
    try:  # FastAPI >= 0.120 keeps included routers whole and resolves them lazily
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies every route into the including router
        for route in routes:
            if isinstance(route, APIRoute):
                yield route.path, route
        return
    for context in iter_route_contexts(routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            yield str(context.path), original


def unchecked_body_routes(routes: Sequence[BaseRoute]) -> list[str]:
    """`METHODS path` of each route that takes a body but is not a `CheckedRoute`."""
    return [f"{','.join(sorted(route.methods or []))} {path}"
            for path, route in api_routes(routes)
            if takes_body(route) and not isinstance(route, CheckedRoute)]
