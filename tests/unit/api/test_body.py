"""The shared body reader's pure parts: JSON parsing rules, the depth scan, the text walk."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.body import (
    MAX_DEPTH,
    JsonBody,
    api_router,
    nesting_depth_exceeds,
    parse_json,
    shown,
    text_violations,
    unchecked_body_routes,
)
from berth.api.errors import install_error_handlers
from berth.domain.errors import MalformedBody, SpecInvalid
from tests.fuzz import raw_bodies

with warnings.catch_warnings():  # starlette prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.mark.parametrize(("raw", "value"), [
    (b'{"a": 1}', {"a": 1}),
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a BOM is ignored (RFC 8259 8.1)
    (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one character
    (b'{"a": "[[[[{{{{"}', {"a": "[[[[{{{{"}),  # brackets inside strings do not nest
    (b'{"a": "\\"[[[["}', {"a": '"[[[['}),
    (b'{"a": 1.5e300, "b": -0}', {"a": 1.5e300, "b": 0}),
    (b'"x"', "x"),
    (b"[]", []),
    (b'{"a": "\\\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, not an escape
    ("{\"a\": \"é☃\"}".encode(), {"a": "é☃"}),
])
def test_accepts(raw: bytes, value: Any) -> None:
    assert parse_json(raw) == value


@pytest.mark.parametrize(("raw", "rule"), [
    (b"[" * 100_000, "depth"),
    (b"[" * 100_000 + b"]" * 100_000, "depth"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "depth"),
    (b'{"a": "\xff"}', "utf8"),
    (b'{"a": "\xe2\x82"}', "utf8"),
    (b'{"a": "\xed\xbf\xbf"}', "utf8"),  # a surrogate encoded as UTF-8 bytes
    (b'{"a": NaN}', "finite"),
    (b'{"a": Infinity}', "finite"),
    (b'{"a": -Infinity}', "finite"),
    (b'{"a": 1e999}', "finite"),
    (b'{"a": ' + b"1" * 5000 + b"}", "json"),  # over Python's int digit limit
    (b'{"a": 1, "a": 2}', "unique_keys"),
    (b'{"a": {"b": 1, "b": 1}}', "unique_keys"),
    (b'{"a": ', "json"),
    (b'{"a": "x', "json"),
    (b'{"a": "\x00"}', "json"),  # a raw control character
    (b'{"a": 1} x', "json"),
    (b"   ", "required"),
])
def test_refuses_malformed_with_400(raw: bytes, rule: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(raw)
    assert caught.value.status == 400
    assert [v.rule for v in caught.value.violations] == [rule]


@pytest.mark.parametrize(("raw", "fields"), [
    (b'{"a": "\\udfff"}', [("a", "surrogate")]),
    (b'{"a": "x\\ud800y"}', [("a", "surrogate")]),
    (b'{"a": "\\ude00\\ud83d"}', [("a", "surrogate")]),  # a pair in the wrong order
    (b'{"a": {"b": ["x", "\\udfff"]}}', [("a.b[1]", "surrogate")]),
    (b'{"\\ud800": 1}', [("\\ud800", "surrogate")]),
    (b'{"labels": {"k": "\\u0000"}}', [("labels.k", "nul")]),
    (b'["\\udfff"]', [("[0]", "surrogate")]),
    (b'"\\udfff"', [("body", "surrogate")]),
])
def test_refuses_strings_that_are_not_text_naming_the_field(
        raw: bytes, fields: list[tuple[str, str]]) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_json(raw)
    assert not isinstance(caught.value, MalformedBody)
    assert [(v.field, v.rule) for v in caught.value.violations] == fields
    caught.value.message.encode()  # every part of the answer is text


def test_depth_limit_is_inclusive() -> None:
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(MalformedBody):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_depth_scan_skips_strings_and_stops_at_an_unterminated_one() -> None:
    assert not nesting_depth_exceeds(b'["' + b"[" * 1000 + b'"]', 2)
    assert not nesting_depth_exceeds(b'["\\"' + b"[" * 1000 + b'"]', 2)
    assert not nesting_depth_exceeds(b'["' + b"[" * 1000, 2)
    assert nesting_depth_exceeds(b"[[[", 2)


def test_text_walk_is_iterative() -> None:
    deep: Any = "\udfff"
    for _ in range(5000):  # deeper than the interpreter's recursion limit
        deep = [deep]
    [violation] = text_violations(deep)
    assert violation.field.endswith("[0]") and violation.rule == "surrogate"


def test_shown_escapes_what_is_not_text() -> None:
    assert shown("a\udfffb") == "a\\udfffb"
    assert shown("plain") == "plain"


def test_every_malformed_raw_body_is_refused() -> None:
    for what, raw in raw_bodies():
        if what in {"a bare string", "a bare list", "null", "a UTF-8 BOM", "a 2 MiB body"}:
            continue  # well-formed JSON (the size limit is the reader's, not the parser's)
        with pytest.raises(SpecInvalid):
            parse_json(raw)


def test_a_body_route_on_a_plain_router_is_found() -> None:
    plain, checked = APIRouter(), api_router()

    @plain.post("/plain")
    def _plain(body: JsonBody) -> None: ...

    @checked.post("/checked")
    def _checked(body: JsonBody) -> None: ...

    @plain.get("/no-body")
    def _no_body() -> None: ...

    assert unchecked_body_routes([*plain.routes, *checked.routes]) == ["POST /plain"]


class Item(BaseModel):
    name: str
    size: int


def test_a_pydantic_body_route_gets_the_vetted_body() -> None:
    app = FastAPI()
    install_error_handlers(app)
    router = api_router()

    @router.post("/items")
    def create(item: Item) -> dict[str, Any]:
        return item.model_dump()

    app.include_router(router)
    with TestClient(app) as http:
        ok = http.post("/items", content=b'{"name": "a", "size": 2}',
                       headers={"Content-Type": "application/json"})
        assert ok.status_code == 200 and ok.json() == {"name": "a", "size": 2}
        for raw, status in [(b"[" * 10_000, 400), (b'{"name": "a", "size": NaN}', 400),
                            (b'{"name": "\\udfff", "size": 1}', 422),
                            (b'{"name": "a", "size": "x"}', 422)]:
            answer = http.post("/items", content=raw, headers={"Content-Type": "application/json"})
            assert answer.status_code == status, answer.text
