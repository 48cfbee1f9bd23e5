"""OpenAI-compatible answers for catalog/echo. Pure: request payloads to response objects.

    POST /v1/chat/completions   the last message's text comes back as the assistant's
    POST /v1/completions        each prompt comes back as its choice's text

With `"stream": true` the answer is a list of chunks (one per word, OpenAI's chunk shapes),
ended by a chunk with `finish_reason: "stop"` (and a usage chunk when
`stream_options.include_usage` is set); the server sends them as `data: {...}` events and
then `data: [DONE]`. Token counts are word counts.
"""

from __future__ import annotations

import re
from typing import Any

CHAT, COMPLETION = "chat", "completion"
PATHS = {b"/v1/chat/completions": CHAT, b"/v1/completions": COMPLETION}
_PIECE = re.compile(r"\s*\S+|\s+$")


def pieces(text: str) -> list[str]:
    """The text cut into words, each with the whitespace before it: they join back to it."""
    return _PIECE.findall(text)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only the text ones echo back
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    if content is None:
        return ""
    raise ValueError("a message's content must be a string or a list of content parts")


def prompts(kind: str, payload: Any) -> tuple[list[str], int]:
    """The texts to echo (one per choice) and the prompt's token count; ValueError names
    what is wrong with the request."""
    if not isinstance(payload, dict):
        raise ValueError("request body must be a JSON object")
    if kind == CHAT:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) for m in messages):
            raise ValueError("messages must be a non-empty list of message objects")
        texts = [_text(m.get("content")) for m in messages]
        return [texts[-1]], sum(len(pieces(t)) for t in texts)
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt or not all(isinstance(p, str) for p in prompt):
        raise ValueError("prompt must be a string or a non-empty list of strings")
    return prompt, sum(len(pieces(p)) for p in prompt)


def _head(kind: str, payload: dict[str, Any], ident: str, now: int, chunk: bool) -> dict[str, Any]:
    obj = ("chat.completion.chunk" if chunk else "chat.completion") if kind == CHAT else (
        "text_completion")
    model = payload.get("model") if isinstance(payload.get("model"), str) else "catalog/echo"
    return {"id": ident, "object": obj, "created": now, "model": model}


def _usage(prompt_tokens: int, texts: list[str]) -> dict[str, int]:
    completion = sum(len(pieces(t)) for t in texts)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion}


def answer(kind: str, payload: Any, ident: str, now: int) -> dict[str, Any]:
    """The whole answer (no streaming)."""
    texts, prompt_tokens = prompts(kind, payload)
    if kind == CHAT:
        choices: list[dict[str, Any]] = [{
            "index": 0, "message": {"role": "assistant", "content": texts[0]},
            "finish_reason": "stop", "logprobs": None}]
    else:
        choices = [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None}
                   for i, t in enumerate(texts)]
    return _head(kind, payload, ident, now, False) | {
        "choices": choices, "usage": _usage(prompt_tokens, texts)}


def chunks(kind: str, payload: Any, ident: str, now: int) -> list[dict[str, Any]]:
    """The answer as stream chunks, one per word."""
    texts, prompt_tokens = prompts(kind, payload)
    head = _head(kind, payload, ident, now, True)

    def chunk(index: int, part: str | None, finish: str | None) -> dict[str, Any]:
        if kind == CHAT:
            delta = {} if part is None else {"content": part}
            if part == "":
                delta["role"] = "assistant"
            body: dict[str, Any] = {"index": index, "delta": delta}
        else:
            body = {"index": index, "text": part or ""}
        return head | {"choices": [body | {"finish_reason": finish, "logprobs": None}]}

    out = [chunk(0, "", None)] if kind == CHAT else []
    for index, text in enumerate(texts):
        out += [chunk(index, part, None) for part in pieces(text)]
        out.append(chunk(index, None, "stop"))
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        out.append(head | {"choices": [], "usage": _usage(prompt_tokens, texts)})
    return out
