"""Native v1: deployments and their replicas, events and logs.

`JsonBody` is re-exported from `berth.api.body` for the modules that import it from here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.v1.models import (
    Accepted,
    AutoscalerOut,
    DeploymentList,
    DeploymentOut,
    EventList,
    LogList,
    ReplicaList,
)
from berth.api.views import (
    autoscaler_out,
    deployment_body,
    deployment_out,
    event_out,
    log_out,
    replica_out,
)
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus
from berth.services.deployments import Change, parse_if_match

router = api_router(prefix="/v1/projects/{project}/deployments", tags=["deployments"])

SPEC_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/DeploymentSpec"}}}}}
PATCH_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/merge-patch+json": {"schema": {"type": "object"}},
    "application/json": {"schema": {"type": "object"}}}}}


__all__ = ["JsonBody", "router"]
IfMatch = Annotated[str | None, Header(alias="If-Match")]


class JsonResponse(Response):
    """Compact JSON of data already in wire shape (no second validation pass)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _address(request: Request, d: Deployment) -> str | None:
    return state.address(request, d.project, d.name)


def _accepted(change: Change, request: Request, response: Response) -> Accepted:
    response.status_code = 202
    response.headers["Location"] = f"/v1/tasks/{change.task.id}"
    response.headers["ETag"] = f'"{change.deployment.generation}"'
    d = change.deployment
    return Accepted(deployment=deployment_out(d, _address(request, d)), task_id=change.task.id)


@router.post("", status_code=202, response_model=Accepted, openapi_extra=SPEC_BODY,
             summary="Create a deployment")
def create(project: str, request: Request, response: Response, body: JsonBody) -> Accepted:
    return _accepted(state.deployments(request).create(project, body), request, response)


@router.get("", response_model=DeploymentList, summary="List deployments")
def list_(
    project: str, request: Request,
    limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    include_deleted: bool = False,
) -> Response:
    svc = state.deployments(request)
    items, count = svc.page(project, limit=limit, offset=offset,
                            include_deleted=include_deleted)
    decisions = svc.decisions(d.id for d in items)
    return JsonResponse({"items": [deployment_body(d, _address(request, d), decisions.get(d.id))
                                   for d in items], "count": count})


@router.get("/{name}", response_model=DeploymentOut, summary="Get a deployment")
def get(project: str, name: str, request: Request) -> Response:
    svc = state.deployments(request)
    d = svc.get(project, name)
    return JsonResponse(deployment_body(d, _address(request, d), svc.decisions([d.id]).get(d.id)),
                        headers={"ETag": f'"{d.generation}"'})


@router.put("/{name}", status_code=202, response_model=Accepted, openapi_extra=SPEC_BODY,
            summary="Replace a deployment's spec (rolls replicas if needed)")
def replace(project: str, name: str, request: Request, response: Response, body: JsonBody,
            if_match: IfMatch = None) -> Accepted:
    change = state.deployments(request).replace(project, name, body, parse_if_match(if_match))
    return _accepted(change, request, response)


@router.patch("/{name}", status_code=202, response_model=Accepted, openapi_extra=PATCH_BODY,
              summary="Change a deployment with a JSON merge patch")
def patch(project: str, name: str, request: Request, response: Response, body: JsonBody,
          if_match: IfMatch = None) -> Accepted:
    change = state.deployments(request).patch(project, name, body, parse_if_match(if_match))
    return _accepted(change, request, response)


@router.post("/{name}/start", status_code=202, response_model=Accepted)
def start(project: str, name: str, request: Request, response: Response) -> Accepted:
    return _accepted(state.deployments(request).start(project, name), request, response)


@router.post("/{name}/stop", status_code=202, response_model=Accepted)
def stop(project: str, name: str, request: Request, response: Response) -> Accepted:
    return _accepted(state.deployments(request).stop(project, name), request, response)


@router.post("/{name}/restart", status_code=202, response_model=Accepted,
             summary="Rolling restart: new replicas replace the old ones without downtime")
def restart(project: str, name: str, request: Request, response: Response) -> Accepted:
    return _accepted(state.deployments(request).restart(project, name), request, response)


@router.post("/{name}/replicas/{replica}/restart", status_code=202, response_model=Accepted,
             summary="Replace one replica: a new one starts, then this one drains")
def restart_replica(project: str, name: str, replica: str, request: Request,
                    response: Response) -> Accepted:
    change = state.deployments(request).restart_replica(project, name, replica)
    return _accepted(change, request, response)


@router.delete("/{name}", status_code=202, response_model=Accepted)
def delete(project: str, name: str, request: Request, response: Response) -> Accepted:
    return _accepted(state.deployments(request).delete(project, name), request, response)


@router.get("/{name}/replicas", response_model=ReplicaList)
async def replicas(project: str, name: str, request: Request) -> ReplicaList:
    _d, rows = await run_in_threadpool(state.deployments(request).replicas, project, name)
    runtime = state.runtime(request)
    stats = await asyncio.gather(*(runtime.stats(r.id) for r in rows))
    return ReplicaList(items=[replica_out(r, s) for r, s in zip(rows, stats, strict=True)])


@router.get("/{name}/events", response_model=EventList)
def events(project: str, name: str, request: Request,
           limit: Annotated[int, Query(ge=1, le=10000)] = 100,
           after_id: Annotated[int, Query(ge=0)] = 0) -> EventList:
    items = state.deployments(request).events(project, name, limit=limit, after_id=after_id)
    return EventList(items=[event_out(e) for e in items])


@router.get("/{name}/autoscaler", response_model=AutoscalerOut,
            summary="The autoscaler's latest decision per region: counts, panic, reasons and "
                    "each trigger's metric with its age")
def autoscaler(project: str, name: str, request: Request) -> AutoscalerOut:
    d, records, replicas = state.deployments(request).autoscaler(project, name)
    return autoscaler_out(d, records, replicas)


@router.get("/{name}/logs", response_model=LogList,
            summary="Replica stdout/stderr; follow=true streams NDJSON until disconnect")
async def logs(
    project: str, name: str, request: Request,
    since: Annotated[float | None, Query(ge=0, description="Unix seconds")] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
    follow: bool = False,
    replica: str | None = None,
) -> Any:
    svc = state.deployments(request)
    d = await run_in_threadpool(svc.get, project, name)
    runtime = state.runtime(request)
    # Log files are read in a worker thread: up to 100,000 lines must not stall the loop.
    lines = await run_in_threadpool(runtime.logs, d.id, since=since, limit=limit,
                                    replica_id=replica)
    if not follow:
        return LogList(items=[log_out(line) for line in lines])

    async def stream() -> AsyncIterator[bytes]:
        last = since or 0.0
        batch = lines
        while True:
            for line in batch:
                last = max(last, line.ts)
                yield (log_out(line).model_dump_json() + "\n").encode()
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            batch = await run_in_threadpool(runtime.logs, d.id, since=last, limit=limit,
                                            replica_id=replica)
            if not batch:
                current = await run_in_threadpool(svc.get, project, name)
                if current.status == DeploymentStatus.DELETED:
                    return

    return StreamingResponse(stream(), media_type="application/x-ndjson")
