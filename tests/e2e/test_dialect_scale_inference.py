"""Scale GP inference through the official SDK against a real `berth serve`: streamed
generic inference, chat completions and completions, relayed chunk by chunk."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import scale_gp_beta
from scale_gp_beta import SGPClient, Stream
from scale_gp_beta.types import InferenceResponseChunk
from scale_gp_beta.types.model_create_params import ModelLaunchModelCreateRequest

from tests.e2e.harness import BerthServer, wait_for
from tests.e2e.test_dialect_scale import ACCOUNT, echo_config, echoed

DELAY = 0.3  # seconds between the echo model's stream events (ECHO_DELAY_MS)


def _client(server: BerthServer, strict: bool = True) -> SGPClient:
    return SGPClient(api_key=server.token, account_id=ACCOUNT, base_url=server.url,
                     max_retries=0, _strict_response_validation=strict)


@pytest.fixture(scope="module")
def sdk(server: BerthServer) -> Iterator[SGPClient]:
    client = _client(server)
    yield client
    client.close()


@pytest.fixture(scope="module")
def streamer(sdk: SGPClient) -> str:
    """A launch model running catalog/echo, its stream events DELAY apart."""
    config = echo_config(streaming_predict_route="/predict/stream",
                         env_vars={"ECHO_DELAY_MS": str(int(DELAY * 1000))})
    config["model_infra"] |= {"endpoint_type": "streaming", "max_workers": 1}
    # The SDK types a launch model as model_type "generic" only; this one serves chat too.
    model = cast(ModelLaunchModelCreateRequest, {
        "name": "streamer", "model_vendor": "launch", "model_type": "chat_completion",
        "vendor_configuration": config})
    created = sdk.models.create(model=model)

    def ready() -> bool:
        model = sdk.models.retrieve(created.id)
        assert model.status != "failed", model.status_reason
        return model.status == "ready"

    wait_for(ready, 60, every=0.5, what="streamer ready")
    return "launch/streamer"


def _timed(items: Iterator[Any]) -> list[tuple[float, Any]]:
    return [(time.monotonic(), item) for item in items]


def _spread(arrivals: list[tuple[float, Any]]) -> None:
    """Each chunk came when the model sent it, not all at the end."""
    times = [at for at, _ in arrivals]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap > DELAY / 2 for gap in gaps), gaps


def test_streamed_inference_relays_each_event_as_it_comes(sdk: SGPClient,
                                                          streamer: str) -> None:
    args = {"a": 1, "b": [2], "c": "three"}
    with sdk.post("/v5/inference", body={"model": streamer, "args": args, "stream": True},
                  cast_to=InferenceResponseChunk, stream=True,
                  stream_cls=Stream[InferenceResponseChunk]) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        arrivals = _timed(iter(stream))
    chunks = [chunk for _, chunk in arrivals]
    assert [c.object for c in chunks] == ["generic_inference.chunk"] * 3
    assert [echoed(c) for c in chunks] == [
        {"a": 1}, {"b": [2]}, {"c": "three"}]
    _spread(arrivals)
    # `stream` inside args works too (and reaches the model).
    with sdk.post("/v5/inference", body={"model": streamer, "args": {"stream": True}},
                  cast_to=InferenceResponseChunk, stream=True,
                  stream_cls=Stream[InferenceResponseChunk]) as stream:
        assert [echoed(c) for c in stream] == [{"stream": True}]


def test_streaming_needs_a_streaming_route(sdk: SGPClient, streamer: str) -> None:
    sdk.models.create(model={"name": "plain", "model_vendor": "launch",
                             "vendor_configuration": echo_config()})
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as exc:
        sdk.inference.create(model="launch/plain", args={}, extra_body={"stream": True})
    assert exc.value.response.json()["detail"][0]["loc"] == ["body", "stream"]


def test_chat_completions(sdk: SGPClient, streamer: str) -> None:
    messages: list[dict[str, object]] = [{"role": "system", "content": "echo"},
                                         {"role": "user", "content": "hello from berth"}]
    answer = sdk.chat.completions.create(model=streamer, messages=messages)
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "hello from berth"
    assert answer.model == "streamer" and answer.usage is not None

    stream = sdk.chat.completions.create(model=streamer, messages=messages, stream=True)
    arrivals = _timed(iter(stream))
    chunks = [chunk for _, chunk in arrivals]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello from berth"
    assert chunks[-1].choices[0].finish_reason == "stop"
    _spread(arrivals[1:4])  # the three words


def test_completions(sdk: SGPClient, server: BerthServer, streamer: str) -> None:
    answer = sdk.completions.create(model=streamer, prompt="say it back")
    assert answer.choices[0].text == "say it back" and answer.object == "text_completion"
    # The SDK's Completion type (used for stream chunks too) requires finish_reason, which
    # OpenAI-style streams send only on the last chunk: read this one without strict checks.
    with _client(server, strict=False) as loose:
        arrivals = _timed(iter(loose.completions.create(model=streamer, prompt="a b c",
                                                        stream=True)))
    assert [c.choices[0].text for _, c in arrivals] == ["a", " b", " c", ""]
    _spread(arrivals[:3])


def test_inference_errors_in_scale_shape(sdk: SGPClient, streamer: str) -> None:
    with pytest.raises(scale_gp_beta.NotFoundError):
        sdk.chat.completions.create(model="launch/nowhere", messages=[])
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as vendor:
        sdk.chat.completions.create(model="openai/gpt-4o", messages=[])
    assert vendor.value.response.json()["detail"][0]["loc"] == ["body", "model"]
    with pytest.raises(scale_gp_beta.BadRequestError) as bad:  # the model's own 400
        sdk.chat.completions.create(model=streamer, messages=[], stream=True)
    assert "messages" in bad.value.response.json()["detail"]
    assert bad.value.response.headers["x-should-retry"] == "false"
