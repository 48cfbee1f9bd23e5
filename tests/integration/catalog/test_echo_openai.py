"""catalog/echo's OpenAI-compatible routes, as a real process on loopback."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "BERTH_REPLICA_ID": "echo-1",
           "ECHO_DELAY_MS": "150"}
    process = subprocess.Popen([sys.executable, "-m", "berth.catalog.echo"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("echo did not start")
                time.sleep(0.05)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _events(url: str, path: str, body: dict[str, object]) -> list[tuple[float, str]]:
    out = []
    with httpx.stream("POST", url + path, json=body, timeout=10) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/event-stream"
        for line in reply.iter_lines():
            if line.startswith("data: "):
                out.append((time.monotonic(), line.removeprefix("data: ")))
    return out


def test_chat_completion_echoes_the_last_message(url: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 200
    out = reply.json()
    assert out["object"] == "chat.completion" and out["model"] == "m"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "hi there"}


def test_chat_stream_sends_a_chunk_per_word_as_it_goes(url: str) -> None:
    body = {"messages": [{"role": "user", "content": "one two three"}], "stream": True}
    events = _events(url, "/v1/chat/completions", body)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == [
        "", "one", " two", " three", None]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    times = [at for at, _ in events[1:4]]
    assert all(later - earlier > 0.08 for earlier, later in itertools.pairwise(times))


def test_completions_plain_and_streamed(url: str) -> None:
    reply = httpx.post(f"{url}/v1/completions", json={"prompt": "say this"}, timeout=10)
    assert reply.json()["choices"][0]["text"] == "say this"
    events = _events(url, "/v1/completions", {"prompt": "say this", "stream": True})
    assert [json.loads(d)["choices"][0]["text"] for _, d in events[:-1]] == ["say", " this", ""]


def test_bad_openai_requests_are_400s(url: str) -> None:
    for path, body in (("/v1/chat/completions", {"messages": "hi"}),
                       ("/v1/chat/completions", {"messages": [], "stream": True}),
                       ("/v1/completions", {"prompt": 5})):
        reply = httpx.post(url + path, json=body, timeout=10)
        assert reply.status_code == 400, (path, body)
        assert "error" in reply.json()
    assert httpx.post(f"{url}/v1/completions", content=b"{", timeout=10).status_code == 400
