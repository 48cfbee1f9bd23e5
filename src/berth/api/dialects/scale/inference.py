"""Scale GP inference on launch models, through Berth's gateway: generic inference
(`/v5/inference`, streamed too) and the OpenAI-shaped `/v5/chat/completions` and
`/v5/completions`, forwarded to the replica's `/v1/chat/completions` and `/v1/completions`.

Streams are relayed as they come, event by event, never buffered whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from berth.api import state
from berth.api.dialects.scale import sse
from berth.api.dialects.scale.access import Upstream, target
from berth.api.relay import route_url, timeout
from berth.api.v1.deployments import JsonBody
from berth.domain.errors import SpecInvalid, Violation

router = APIRouter()
OPENAI_ROUTES = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
DEFAULT_TIMEOUT = 300.0
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _failed(status: int, text: str) -> Upstream:
    """The model's own error answer, in Scale's shape: client errors keep their status."""
    err = Upstream(f"the model answered {status}: {text[:500]}")
    if status < 500:
        err.status = status
    return err


async def _call(client: httpx.AsyncClient, url: str, body: Any, seconds: float) -> Any:
    """One JSON answer from the model."""
    try:
        answer = await client.post(url, json=body, timeout=timeout(seconds, connect=30.0))
    except httpx.HTTPError as exc:
        raise Upstream(f"the model did not answer: {exc!r}") from None
    if answer.status_code >= 400:
        raise _failed(answer.status_code, answer.text)
    try:
        return answer.json()
    except ValueError:
        return answer.text


async def _relay(client: httpx.AsyncClient, url: str, body: Any, seconds: float,
                 reshape: sse.Reshape) -> StreamingResponse:
    """The model's event stream, each event reshaped for the client as it arrives. Errors
    before the first byte are Scale errors; later ones end the stream with an error event."""
    try:
        upstream = await client.send(client.build_request(
            "POST", url, json=body, headers={"accept": "text/event-stream"},
            timeout=timeout(seconds, connect=30.0)), stream=True)
    except httpx.HTTPError as exc:
        raise Upstream(f"the model did not answer: {exc!r}") from None
    if upstream.status_code >= 400:
        text = (await upstream.aread()).decode("utf-8", errors="replace")
        await upstream.aclose()
        raise _failed(upstream.status_code, text)
    streamed = "text/event-stream" in upstream.headers.get("content-type", "")

    async def events() -> AsyncIterator[bytes]:
        reader = sse.EventReader()
        try:
            if not streamed:  # the model answered in one piece: one event
                yield reshape((await upstream.aread()).decode("utf-8", errors="replace"))
                return
            async for piece in upstream.aiter_bytes():
                out, done = sse.reshape_all(reader.feed(piece), reshape)
                if out:
                    yield out
                if done:
                    return
            out, _ = sse.reshape_all(reader.close(), reshape)
            if out:
                yield out
        except httpx.HTTPError as exc:
            yield sse.error_event(f"the model's stream broke off: {exc!r}")
        finally:
            with anyio.CancelScope(shield=True):  # also when the client went away
                await upstream.aclose()  # gives the connection back to the relay's pool

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SpecInvalid([Violation("body", "type", "the request body must be a JSON object")])
    return body


@router.post("/inference", response_model=None)
async def inference(request: Request, body: JsonBody) -> dict[str, Any] | StreamingResponse:
    """`args` to the model's predict route; with `stream: true` (top level, or in `args`)
    to its streaming_predict_route, relayed as `generic_inference.chunk` events."""
    body = _body(body)
    args = body.get("args") if body.get("args") is not None else {}
    if not isinstance(args, dict):
        raise SpecInvalid([Violation("args", "type", "args must be a JSON object")])
    config = body.get("inference_configuration") or {}
    asked = config.get("timeout_seconds") if isinstance(config, dict) else None
    if asked is not None and (not isinstance(asked, int | float) or asked <= 0):
        raise SpecInvalid([Violation("inference_configuration.timeout_seconds", "gt",
                                     "timeout_seconds must be a positive number")])
    seconds = float(asked or DEFAULT_TIMEOUT)
    d, address, _ = await run_in_threadpool(target, request, body.get("model"))
    if body.get("stream") is True or args.get("stream") is True:
        route = d.spec.routes.streaming_predict
        if route is None:
            raise SpecInvalid([Violation("stream", "not_streaming", (
                f"model {body['model']!r} has no streaming_predict_route: set "
                "vendor_configuration.model_image.streaming_predict_route"))])
        return await _relay(state.relay(request), route_url(address, route), args, seconds,
                            sse.inference_chunk)
    response = await _call(state.relay(request), route_url(address, d.spec.routes.predict),
                           args, seconds)
    return {"response": response, "object": "generic_inference"}


async def _openai(request: Request, body: Any, kind: str) -> JSONResponse | StreamingResponse:
    body = _body(body)
    d, address, name = await run_in_threadpool(target, request, body.get("model"))
    forward = body | {"model": name}  # the model is served under its Scale name
    url = route_url(address, OPENAI_ROUTES[kind])
    seconds = max(d.spec.timeouts.first_byte, d.spec.timeouts.idle)
    client = state.relay(request)
    if body.get("stream") is True:
        return await _relay(client, url, forward, seconds, sse.passthrough)
    return JSONResponse(await _call(client, url, forward, seconds))


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request,
                           body: JsonBody) -> JSONResponse | StreamingResponse:
    """OpenAI chat completions from a launch model that serves them."""
    return await _openai(request, body, "chat")


@router.post("/completions", response_model=None)
async def completions(request: Request, body: JsonBody) -> JSONResponse | StreamingResponse:
    """OpenAI (legacy) text completions from a launch model that serves them."""
    return await _openai(request, body, "completion")
