"""TIR's model API: inference relayed through the gateway to a model endpoint's replicas.

The SDK's `ModelAPIClient.infer` posts a KServe v2 body (`{"inputs": [{name, shape,
datatype, data}]}`) to `{MODEL_API_CLIENT_HOST}project/p-{project}/v1/{model}/infer`; an
endpoint's own URL is `project/p-{project}/endpoint/is-{id}/...`. Both are served here:

    /project/p-{project}/v1/{name}/{rest}         -> endpoint `name`, /v2/models/{name}/{rest}
    /project/p-{project}/endpoint/is-{id}/{path}  -> endpoint `id`, /{path}

The request (method, query, body, headers less hop-by-hop ones) goes to the deployment's
gateway address, and the answer comes back as the gateway gave it: status, headers and a
streamed body. A Berth control token (the SDK sends its access token) is checked, scoped to
the endpoint's Berth project (read for GET, write otherwise; an endpoint of a project it may
not use is not found), and kept from the model server; any other credential (a deployment
API key as `Authorization: Bearer` or `X-Api-Key`) is passed on, and the gateway enforces the
endpoint's keys. The relayed path may not leave the endpoint: see `berth.api.relay.relay_url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError

from berth.api import state
from berth.api.auth import Authorization, owned_by
from berth.api.body import api_router
from berth.api.dialects.tir.shapes import DIALECT, KIND
from berth.api.relay import relay_url
from berth.api.relay import timeout as relay_timeout
from berth.domain.errors import BerthError, NotFound, SpecInvalid, Violation
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus
from berth.store.dialect_records import DialectRecord

PREFIX = "/project/p-"
# A control token is optional here (the gateway checks the endpoint's API keys); one that is
# sent must be scoped to the endpoint's project.
router = api_router(prefix="/project/p-{project}", tags=["tir"],
                     dependencies=[Depends(Authorization(optional=True))])
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


def _not_found(project: int | str, what: str) -> NotFound:
    return NotFound(f"model endpoint {what} not found in project p-{project}")


def _deployment(request: Request, rec: DialectRecord | None, project: int,
                what: str) -> Deployment:
    if rec is None or _tir_project(rec.project) != project:
        raise _not_found(project, what)
    try:
        d = state.deployments(request).get(rec.project, rec.data["name"])
    except NotFound:
        d = None
    if d is None or d.id != rec.data.get("deployment_id") or d.status == DeploymentStatus.DELETED:
        raise _not_found(project, what)
    return d


def by_name(request: Request, project: int, name: str) -> Deployment:
    found = [r for r in state.dialect_records(request).find(DIALECT, KIND, name=name)
             if _tir_project(r.project) == project]
    return _deployment(request, found[0] if found else None, project, repr(name))


def by_id(request: Request, project: int, inference_id: int) -> Deployment:
    rec = state.dialect_records(request).get(DIALECT, KIND, str(inference_id))
    return _deployment(request, rec, project, f"is-{inference_id}")


_INT = TypeAdapter(int)  # as FastAPI reads the routes' integers


def _path_int(request: Request, name: str) -> int:
    try:
        return _INT.validate_python(request.path_params.get(name))
    except ValidationError:
        raise SpecInvalid([Violation(name, "int_parsing", "must be an integer; got "
                                     f"{request.path_params.get(name)!r}")]) from None


def _named_project(request: Request) -> str | None:
    """The Berth project of the endpoint `/v1/{name}/` names (for the route's authorization)."""
    try:
        return by_name(request, _path_int(request, "project"),
                       str(request.path_params["name"])).project
    except NotFound:
        return None


def _named_missing(request: Request) -> NotFound:
    return _not_found(request.path_params["project"], repr(request.path_params["name"]))


def _endpoint_project(request: Request) -> str | None:
    """The Berth project of the endpoint `/endpoint/is-{id}/` names."""
    try:
        return by_id(request, _path_int(request, "project"),
                     _path_int(request, "inference_id")).project
    except NotFound:
        return None


def _endpoint_missing(request: Request) -> NotFound:
    return _not_found(request.path_params["project"],
                      f"is-{request.path_params['inference_id']}")


def _strip_control_token(request: Request) -> bool:
    """Whether the caller's bearer is a Berth control token (checked by the route's
    authorization, not passed on)."""
    return getattr(request.state, "principal", None) is not None


def upstream_headers(request: Request, strip_auth: bool) -> list[tuple[str, str]]:
    named = {v.strip().lower() for v in request.headers.get("connection", "").split(",")}
    skip = HOP_BY_HOP | named | ({"authorization"} if strip_auth else set())
    return [(k, v) for k, v in request.headers.items() if k.lower() not in skip]


async def relay(request: Request, d: Deployment, path: str) -> StreamingResponse:
    strip_auth = _strip_control_token(request)
    address = state.address(request, d.project, d.name)
    if address is None:
        raise BadGateway("this server has no gateway address to relay inference to")
    url = relay_url(address, path, request.url.query)
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


@owned_by(_named_project, _named_missing)
async def model_api(project: int, name: str, rest: str, request: Request) -> StreamingResponse:
    """ModelAPIClient.infer: KServe v2 inference on the endpoint named `name`."""
    d = await run_in_threadpool(by_name, request, project, name)
    return await relay(request, d, f"/v2/models/{name}/{rest}")


@owned_by(_endpoint_project, _endpoint_missing)
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
