"""Access-log strings from the wire: always valid JSON, whatever the client sent."""

from __future__ import annotations

import json

import pytest

from berth.gateway.service import _q


@pytest.mark.parametrize("raw", [b"/p/echo/predict", b"", b'/a"b', b"/a\\b", b"/a\x01b",
                                 b"/a\x7f", b"/caf\xc3\xa9", b"/bad\xff\xfe", b"/tab\there"])
def test_quoted_bytes_are_a_json_string_of_their_text(raw: bytes) -> None:
    out = _q(raw)
    assert json.loads(out) == raw.decode("utf-8", "replace")
    assert "\n" not in out


def test_plain_paths_are_quoted_as_they_are() -> None:
    assert _q(b"/p/echo/predict") == '"/p/echo/predict"'
