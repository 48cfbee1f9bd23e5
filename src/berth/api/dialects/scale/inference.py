"""Scale GP inference on launch models, through Berth's gateway: generic inference
(`/v5/inference`, streamed too) and the OpenAI-shaped `/v5/chat/completions` and
`/v5/completions`, forwarded to the replica's `/v1/chat/completions` and `/v1/completions`.

Streams are relayed as they come, event by event, never buffered whole. An async model
(`endpoint_type: async`) is called through Berth's async queue: `/v5/inference` submits the
request, waits for its result within the call's timeout, and answers as a sync call would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.dialects.request_schema import parse, request_body
from berth.api.dialects.scale import sse
from berth.api.dialects.scale.access import Upstream, target
from berth.api.dialects.scale.models import (
    CHAT,
    COMPLETION,
    INFERENCE,
    InferenceConfiguration,
    OpenAIRequest,
)
from berth.api.dialects.scale.shapes import async_route
from berth.api.relay import route_url, timeout
from berth.domain.errors import BerthError, SpecInvalid, Violation
from berth.domain.invocations import InvocationStatus
from berth.domain.records import Deployment
from berth.domain.spec import EndpointType

router = api_router()


@dataclass(frozen=True)
class Call:
    seconds: float  # the read timeout
    retries: int = 0  # more tries when the model does not answer or answers 5xx
    headers: dict[str, str] = field(default_factory=dict)


OPENAI_ROUTES = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
DEFAULT_TIMEOUT = 300.0
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class TimedOut(BerthError):
    """An async model's request still waiting or running when the call's timeout passed."""

    code = "timeout"
    status = 504
    should_retry = False  # it is still queued: a retry would submit it again


def _failed(status: int, text: str) -> Upstream:
    """The model's own error answer, in Scale's shape: client errors keep their status."""
    err = Upstream(f"the model answered {status}: {text[:500]}")
    if status < 500:
        err.status = status
    return err


async def _call(client: httpx.AsyncClient, url: str, body: Any, call: Call) -> Any:
    """One JSON answer from the model; a failure to answer or a 5xx is tried again up to
    `call.retries` more times."""
    for attempt in range(call.retries + 1):
        last = attempt == call.retries
        try:
            answer = await client.post(url, json=body, headers=call.headers,
                                       timeout=timeout(call.seconds, connect=30.0))
        except httpx.HTTPError as exc:
            if last:
                raise Upstream(f"the model did not answer: {exc!r}") from None
            continue
        if answer.status_code >= 500 and not last:
            continue
        if answer.status_code >= 400:
            raise _failed(answer.status_code, answer.text)
        try:
            return answer.json()
        except ValueError:
            return answer.text
    raise AssertionError("unreachable")


async def _relay(client: httpx.AsyncClient, url: str, body: Any, call: Call,
                 reshape: sse.Reshape) -> StreamingResponse:
    """The model's event stream, each event reshaped for the client as it arrives. Errors
    before the first byte are Scale errors (tried again as `_call` does); later ones end the
    stream with an error event."""
    for attempt in range(call.retries + 1):
        last = attempt == call.retries
        try:
            upstream = await client.send(client.build_request(
                "POST", url, json=body, headers={"accept": "text/event-stream", **call.headers},
                timeout=timeout(call.seconds, connect=30.0)), stream=True)
        except httpx.HTTPError as exc:
            if last:
                raise Upstream(f"the model did not answer: {exc!r}") from None
            continue
        if upstream.status_code >= 400:
            text = (await upstream.aread()).decode("utf-8", errors="replace")
            await upstream.aclose()
            if upstream.status_code >= 500 and not last:
                continue
            raise _failed(upstream.status_code, text)
        break
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


def _call_of(request: Request, seconds: float, retries: int = 0) -> Call:
    """How to call the model: a deployment API key the caller sent as `Authorization`
    (beside its control token in `x-api-key`) goes on to the gateway, which asks for one
    when the model is private (`public_inference: false`)."""
    key = request.headers.get("authorization") if request.headers.get("x-api-key") else None
    return Call(seconds, retries, {"authorization": key} if key else {})


@router.post("/inference", response_model=None, openapi_extra=request_body(INFERENCE))
async def inference(request: Request, body: JsonBody) -> dict[str, Any] | StreamingResponse:
    """`args` to the model's predict route; with `stream: true` (top level, or in `args`)
    to its streaming_predict_route, relayed as `generic_inference.chunk` events."""
    asked = parse(INFERENCE, body)
    args = asked.args if asked.args is not None else {}
    config = asked.inference_configuration or InferenceConfiguration()
    call = _call_of(request, config.timeout_seconds or DEFAULT_TIMEOUT, config.num_retries or 0)
    d, address, _ = await run_in_threadpool(target, request, asked.model)
    streamed = asked.stream or args.get("stream") is True
    if d.spec.endpoint_type == EndpointType.ASYNC:
        if streamed:
            raise SpecInvalid([Violation("stream", "not_streaming", (
                f"model {asked.model!r} is an async endpoint (endpoint_type 'async'): it "
                "answers whole through a queue and cannot stream; send stream false, or "
                "make it a streaming endpoint"))])
        return {"response": await _queued(request, d, args, call.seconds),
                "object": "generic_inference"}
    if streamed:
        route = d.spec.routes.streaming_predict
        if route is None:
            raise SpecInvalid([Violation("stream", "not_streaming", (
                f"model {asked.model!r} has no streaming_predict_route: set "
                "vendor_configuration.model_image.streaming_predict_route"))])
        return await _relay(state.relay(request), route_url(address, route), args, call,
                            sse.inference_chunk)
    response = await _call(state.relay(request), route_url(address, d.spec.routes.predict),
                           args, call)
    return {"response": response, "object": "generic_inference"}


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


async def _queued(request: Request, d: Deployment, args: Any, seconds: float) -> Any:
    """`args` through the async queue to the predict route; the model's answer once the
    request has ended, within `seconds`. The queue retries as `async.max_attempts` says."""
    svc = state.invocations(request)
    route = async_route(d.spec)
    accepted = await run_in_threadpool(svc.submit, d.project, d.name, route,
                                       json.dumps(args).encode(), "application/json")
    inv = await svc.wait(d.project, d.name, accepted.id, seconds)
    if inv.status in InvocationStatus.pending():
        raise TimedOut(f"the model did not answer within {seconds:g} s: async request "
                       f"{inv.id} is still {inv.status.value.lower()} (it still runs; raise "
                       "inference_configuration.timeout_seconds to wait longer)",
                       request_id=inv.id)
    body = await run_in_threadpool(svc.result, inv)
    if inv.status is InvocationStatus.SUCCEEDED and body is not None:
        return _decoded(body)
    err = (_failed(inv.status_code, (body or b"").decode("utf-8", errors="replace"))
           if inv.status_code is not None and inv.status is InvocationStatus.FAILED
           else Upstream(f"the model did not answer: {inv.error or inv.reason}"))
    err.should_retry = False  # the queue has retried it: another call would submit it again
    raise err


async def _openai(request: Request, asked: OpenAIRequest,
                  kind: str) -> JSONResponse | StreamingResponse:
    d, address, name = await run_in_threadpool(target, request, asked.model)
    forward = asked.model_dump(mode="json", exclude_unset=True) | {"model": name}
    url = route_url(address, OPENAI_ROUTES[kind])
    call = _call_of(request, max(d.spec.timeouts.first_byte, d.spec.timeouts.idle))
    client = state.relay(request)
    if asked.stream:
        return await _relay(client, url, forward, call, sse.passthrough)
    return JSONResponse(await _call(client, url, forward, call))


@router.post("/chat/completions", response_model=None, openapi_extra=request_body(CHAT))
async def chat_completions(request: Request,
                           body: JsonBody) -> JSONResponse | StreamingResponse:
    """OpenAI chat completions from a launch model that serves them."""
    return await _openai(request, parse(CHAT, body), "chat")


@router.post("/completions", response_model=None, openapi_extra=request_body(COMPLETION))
async def completions(request: Request, body: JsonBody) -> JSONResponse | StreamingResponse:
    """OpenAI (legacy) text completions from a launch model that serves them."""
    return await _openai(request, parse(COMPLETION, body), "completion")
