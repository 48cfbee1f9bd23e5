"""Server-sent events for Scale's streamed answers. Pure: reading a model's event stream
piece by piece, and writing events in the shapes the Scale GP SDK reads.

The SDK's stream reader parses every unnamed event's data as JSON and knows no `[DONE]`
marker, so the model's `[DONE]` ends the relay and is not passed on; a failure after the
stream began is sent as a named `error` event, which the SDK skips.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

DONE = "[DONE]"
CHUNK = "generic_inference.chunk"


class EventReader:
    """Feed bytes as they arrive; get back the data of each complete event (SSE framing:
    events end at a blank line; `data:` lines join with newlines; comments and other
    fields are ignored)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[str]:
        self._buffer += piece
        out: list[str] = []
        while True:
            cut = min((i for i in (self._buffer.find(b"\n"), self._buffer.find(b"\r"))
                       if i >= 0), default=-1)
            if cut < 0:
                return out
            line = self._buffer[:cut].decode("utf-8", errors="replace")
            skip = 2 if self._buffer[cut:cut + 2] == b"\r\n" else 1
            if self._buffer[cut:cut + 1] == b"\r" and cut + 1 == len(self._buffer):
                return out  # a lone CR may be the first half of CRLF: wait for more
            self._buffer = self._buffer[cut + skip:]
            event = self._line(line)
            if event is not None:
                out.append(event)

    def close(self) -> list[str]:
        """The data of a last event the stream ended without a blank line after."""
        return self.feed(b"\n\n") if self._buffer or self._data else []

    def _line(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None


def event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def error_event(message: str) -> bytes:
    return b"event: error\ndata: " + json.dumps({"detail": message}).encode() + b"\n\n"


def as_json(data: str) -> Any:
    """An event's data as JSON when it is JSON, else the text itself."""
    try:
        return json.loads(data)
    except ValueError:
        return data


def inference_chunk(data: str) -> bytes:
    """One model event as a `generic_inference.chunk`."""
    return event({"response": as_json(data), "object": CHUNK})


def passthrough(data: str) -> bytes:
    """One model event as it came (OpenAI-shaped chunks for chat and completions)."""
    return b"data: " + data.replace("\n", "\ndata: ").encode() + b"\n\n"


Reshape = Callable[[str], bytes]


def reshape_all(events: list[str], reshape: Reshape) -> tuple[bytes, bool]:
    """The events as the client sees them, and whether the stream has ended (`[DONE]`)."""
    out: list[bytes] = []
    for data in events:
        if data.strip() == DONE:
            return b"".join(out), True
        out.append(reshape(data))
    return b"".join(out), False
