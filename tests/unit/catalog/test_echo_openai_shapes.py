"""catalog/echo's OpenAI-compatible answers, as the Scale GP SDK's strict types see them."""

from __future__ import annotations

from typing import Any

import pytest
from scale_gp_beta._models import validate_type
from scale_gp_beta.types import Completion
from scale_gp_beta.types.chat import ChatCompletion, ChatCompletionChunk

from berth.catalog.echo_openai import CHAT, COMPLETION, answer, chunks, pieces

CHAT_BODY = {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "hello there  world"}]}


def test_pieces_join_back_to_the_text() -> None:
    for text in ("hello there  world", "  lead", "trail  ", "", "one"):
        assert "".join(pieces(text)) == text
    assert pieces("a b") == ["a", " b"]


def test_chat_answer_echoes_the_last_message() -> None:
    out = answer(CHAT, CHAT_BODY, "chatcmpl-1", 7)
    parsed = validate_type(type_=ChatCompletion, value=out)
    assert parsed.choices[0].message.content == "hello there  world"
    assert parsed.choices[0].finish_reason == "stop" and parsed.model == "m"
    assert parsed.usage is not None and (parsed.usage.prompt_tokens,
                                         parsed.usage.completion_tokens) == (5, 3)
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x y"}]}]}
    assert answer(CHAT, parts, "i", 0)["choices"][0]["message"]["content"] == "x y"


def test_chat_chunks_are_one_per_word() -> None:
    out = chunks(CHAT, CHAT_BODY | {"stream": True,
                                    "stream_options": {"include_usage": True}}, "c", 7)
    parsed = [validate_type(type_=ChatCompletionChunk, value=c) for c in out]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert [p.choices[0].delta.content for p in parsed[1:4]] == ["hello", " there", "  world"]
    assert parsed[4].choices[0].finish_reason == "stop"
    assert parsed[5].choices == [] and parsed[5].usage is not None
    assert {p.id for p in parsed} == {"c"}


def test_completions_echo_each_prompt() -> None:
    out = answer(COMPLETION, {"model": "m", "prompt": ["a b", "c"]}, "cmpl-1", 7)
    parsed = validate_type(type_=Completion, value=out)
    assert [(c.index, c.text) for c in parsed.choices] == [(0, "a b"), (1, "c")]
    streamed = chunks(COMPLETION, {"prompt": "a b", "stream": True}, "cmpl-2", 7)
    assert [c["choices"][0]["text"] for c in streamed] == ["a", " b", ""]
    assert [c["choices"][0]["finish_reason"] for c in streamed] == [None, None, "stop"]
    assert streamed[0]["model"] == "catalog/echo"


@pytest.mark.parametrize("kind, body, words", [
    (CHAT, [], "JSON object"),
    (CHAT, {"messages": []}, "messages"),
    (CHAT, {"messages": [{"role": "user", "content": 3}]}, "content"),
    (COMPLETION, {"prompt": 3}, "prompt"),
    (COMPLETION, {"prompt": []}, "prompt"),
])
def test_bad_requests_name_the_problem(kind: str, body: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        answer(kind, body, "i", 0)
