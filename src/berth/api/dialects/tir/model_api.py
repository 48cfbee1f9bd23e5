"""TIR's model API: inference relayed through the gateway to a model endpoint's replicas.

The SDK's `ModelAPIClient.infer` posts a KServe v2 body (`{"inputs": [{name, shape,
datatype, data}]}`) to `{MODEL_API_CLIENT_HOST}project/p-{project}/v1/{model}/infer`; an
endpoint's own URL is `project/p-{project}/endpoint/is-{id}/...`. Both are served here:

    /project/p-{project}/v1/{name}/{rest}         -> endpoint `name`, /v2/models/{name}/{rest}
    /project/p-{project}/endpoint/is-{id}/{path}  -> endpoint `id`, /{path}

The request (method, query, body, headers less hop-by-hop ones) goes to the deployment's
gateway address, and the answer comes back as the gateway gave it: status, headers and a
streamed body. A Berth control token (the SDK sends its access token) is checked, scoped to
the endpoint's Berth project (read for GET, write otherwise), and kept from the model
server; any other credential (a deployment API key as `Authorization: Bearer` or
`X-Api-Key`) is passed on, and the gateway enforces the endpoint's keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from berth.api import state
from berth.api.auth import check_scope, token_from
from berth.api.body import api_router
from berth.api.dialects.tir.shapes import DIALECT, KIND
from berth.api.relay import timeout as relay_timeout
from berth.domain.errors import BerthError, NotFound
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus
from berth.store.dialect_records import DialectRecord

PREFIX = "/project/p-"
router = api_router(prefix="/project/p-{project}", tags=["tir"])
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "host",
                        "content-length"})
ANSWER_SKIP = HOP_BY_HOP - {"content-length"} | {"date", "server"}  # the server sets these


class BadGateway(BerthError):
    code = "bad_gateway"
    status = 502


def _tir_project(berth_project: str) -> int | None:
    """`tir-{team}-{project}` -> project."""
    prefix, _, rest = berth_project.partition("-")
    last = rest.rpartition("-")[2]
    return int(last) if prefix == DIALECT and last.isdigit() else None


def _deployment(request: Request, rec: DialectRecord | None, project: int,
                what: str) -> Deployment:
    if rec is None or _tir_project(rec.project) != project:
        raise NotFound(f"model endpoint {what} not found in project p-{project}")
    try:
        d = state.deployments(request).get(rec.project, rec.data["name"])
    except NotFound:
        d = None
    if d is None or d.id != rec.data.get("deployment_id") or d.status == DeploymentStatus.DELETED:
        raise NotFound(f"model endpoint {what} not found in project p-{project}")
    return d


def by_name(request: Request, project: int, name: str) -> Deployment:
    found = [r for r in state.dialect_records(request).find(DIALECT, KIND, name=name)
             if _tir_project(r.project) == project]
    return _deployment(request, found[0] if found else None, project, repr(name))


def by_id(request: Request, project: int, inference_id: int) -> Deployment:
    rec = state.dialect_records(request).get(DIALECT, KIND, str(inference_id))
    return _deployment(request, rec, project, f"is-{inference_id}")


def _strip_control_token(request: Request, d: Deployment) -> bool:
    """Whether the caller's bearer is a Berth control token (checked here, not passed on)."""
    token = token_from(request)
    principal = state.tokens(request).authenticate(token) if token else None
    if principal is None:
        return False
    check_scope(request, principal, d.project)  # read for GET, write otherwise
    return True


def upstream_headers(request: Request, strip_auth: bool) -> list[tuple[str, str]]:
    named = {v.strip().lower() for v in request.headers.get("connection", "").split(",")}
    skip = HOP_BY_HOP | named | ({"authorization"} if strip_auth else set())
    return [(k, v) for k, v in request.headers.items() if k.lower() not in skip]


async def relay(request: Request, d: Deployment, path: str) -> StreamingResponse:
    strip_auth = await run_in_threadpool(_strip_control_token, request, d)
    address = state.address(request, d.project, d.name)
    if address is None:
        raise BadGateway("this server has no gateway address to relay inference to")
    query = request.url.query
    url = address + path + (f"?{query}" if query else "")
    t = d.spec.timeouts  # the gateway enforces them; ours only back them up
    client = state.relay(request)
    try:
        outgoing = client.build_request(
            request.method, url, content=await request.body(),
            headers=upstream_headers(request, strip_auth),
            timeout=relay_timeout(max(t.first_byte, t.idle) + 10.0))
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise BadGateway(f"the gateway did not answer: {exc}") from None
    response = StreamingResponse(_body(answer), status_code=answer.status_code)
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in answer.headers.multi_items()
                            if k.lower() not in ANSWER_SKIP]
    return response


async def _body(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the gateway went away mid-answer: end the body here
    finally:
        with anyio.CancelScope(shield=True):  # also when the client went away
            await answer.aclose()  # gives the connection back to the relay's pool


async def model_api(project: int, name: str, rest: str, request: Request) -> StreamingResponse:
    """ModelAPIClient.infer: KServe v2 inference on the endpoint named `name`."""
    d = await run_in_threadpool(by_name, request, project, name)
    return await relay(request, d, f"/v2/models/{name}/{rest}")


async def endpoint(project: int, inference_id: int, path: str,
                   request: Request) -> StreamingResponse:
    """An endpoint's own URL: any path, relayed as given."""
    d = await run_in_threadpool(by_id, request, project, inference_id)
    return await relay(request, d, f"/{path}")


# One route per method, so each has its own OpenAPI operation id.
for _method in ("GET", "POST"):
    router.add_api_route("/v1/{name}/{rest:path}", model_api, methods=[_method])
for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    router.add_api_route("/endpoint/is-{inference_id}/{path:path}", endpoint, methods=[_method])
