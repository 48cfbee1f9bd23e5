"""Scale's event-stream relay: reading a model's events in pieces, reshaping them."""

from __future__ import annotations

import json

import pytest
from scale_gp_beta._models import validate_type
from scale_gp_beta.types import InferenceResponseChunk

from berth.api.dialects.scale import sse
from berth.api.dialects.scale.access import launch_name
from berth.domain.errors import SpecInvalid


def test_events_split_anywhere_come_out_whole() -> None:
    stream = (b'data: {"a": 1}\n\n: a comment\r\ndata: line one\r\ndata: line two\r\n\r\n'
              b"event: ping\nid: 3\ndata: x\n\ndata: [DONE]\n\n")
    expected = ['{"a": 1}', "line one\nline two", "x", "[DONE]"]
    for size in (1, 2, 3, 7, len(stream)):
        reader = sse.EventReader()
        got: list[str] = []
        for i in range(0, len(stream), size):
            got += reader.feed(stream[i:i + size])
        assert got + reader.close() == expected, size


def test_lone_cr_ends_lines_and_a_last_event_needs_no_blank_line() -> None:
    reader = sse.EventReader()
    assert reader.feed(b"data: a\r\rdata: b") == ["a"]
    assert reader.close() == ["b"]
    assert sse.EventReader().close() == []


def test_inference_chunks_are_what_the_sdk_reads() -> None:
    out, done = sse.reshape_all(['{"echo": {"a": 1}}', "plain text", "[DONE]", "after"],
                                sse.inference_chunk)
    assert done
    events = [json.loads(e.removeprefix(b"data: ")) for e in out.split(b"\n\n") if e]
    chunks = [validate_type(type_=InferenceResponseChunk, value=e) for e in events]
    assert [c.response for c in chunks] == [{"echo": {"a": 1}}, "plain text"]
    assert {c.object for c in chunks} == {"generic_inference.chunk"}


def test_passthrough_keeps_the_data_and_drops_done() -> None:
    out, done = sse.reshape_all(['{"id": "c"}', "two\nlines"], sse.passthrough)
    assert out == b'data: {"id": "c"}\n\ndata: two\ndata: lines\n\n' and not done
    assert sse.reshape_all(["[DONE]"], sse.passthrough) == (b"", True)
    assert sse.error_event("boom").startswith(b"event: error\ndata: ")


@pytest.mark.parametrize("bad", ["openai/gpt-4o", "launch/", ""])
def test_only_launch_names_reach_a_deployment(bad: str) -> None:
    assert launch_name("launch/echo") == "echo" and launch_name("echo") == "echo"
    with pytest.raises(SpecInvalid) as exc:
        launch_name(bad)
    assert exc.value.violations[0].field == "model"
