"""The access log: every line valid JSON, whatever the client sent; numbers exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.gateway.accesslog import MAX_CACHED_PATHS, AccessLog, millis, quoted


@pytest.mark.parametrize("raw", [b"/p/echo/predict", b"", b'/a"b', b"/a\\b", b"/a\x01b",
                                 b"/a\x7f", b"/caf\xc3\xa9", b"/bad\xff\xfe", b"/tab\there"])
def test_quoted_bytes_are_a_json_string_of_their_text(raw: bytes) -> None:
    out = quoted(raw)
    assert json.loads(out) == raw.decode("utf-8", "replace")
    assert "\n" not in out


def test_plain_paths_are_quoted_as_they_are() -> None:
    assert quoted(b"/p/echo/predict") == '"/p/echo/predict"'


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0.000"), (0.000345, "0.345"),
                                               (0.0123456, "12.345"), (1.5, "1500.000"),
                                               (301.000999, "301000.999")])
def test_millis_are_milliseconds_to_the_microsecond(seconds: float, text: str) -> None:
    assert millis(seconds) == text


def add(log: AccessLog, now: float, path: bytes, ttfb: float | None = 0.001) -> None:
    log.add(now, '"r-1"', "127.0.0.1", "POST", path, '"project":"p","deployment":"d"',
            '"d-1"', 200, 0.0025, ttfb, "null", "replica")


def test_lines_are_json_with_every_field(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.log")
    add(log, 10.0, b"/p/d/predict")
    add(log, 10.0005, b'/p/d/"odd"', ttfb=None)
    add(log, 10.002, b"/p/d/predict")
    log.flush()
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [line["path"] for line in lines] == ["/p/d/predict", '/p/d/"odd"', "/p/d/predict"]
    first = lines[0]
    assert first == {"ts": first["ts"], "id": "r-1", "client": "127.0.0.1", "method": "POST",
                     "path": "/p/d/predict", "project": "p", "deployment": "d",
                     "replica": "d-1", "status": 200, "ms": 2.5, "ttfb_ms": 1.0,
                     "key": None, "source": "replica"}
    assert lines[1]["ttfb_ms"] is None
    # The stamp is reused within a millisecond, then taken again.
    assert lines[1]["ts"] == first["ts"] and lines[2]["ts"] >= first["ts"]


def test_path_cache_is_bounded(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.log")
    for i in range(MAX_CACHED_PATHS + 50):
        add(log, float(i), b"/p/d/%d" % i)
    log.flush()
    assert len(log._paths) == MAX_CACHED_PATHS
    assert len((tmp_path / "access.log").read_text().splitlines()) == MAX_CACHED_PATHS + 50


def test_without_a_path_nothing_is_kept() -> None:
    log = AccessLog(None)
    add(log, 1.0, b"/p/d/predict")
    assert log.lines == []
