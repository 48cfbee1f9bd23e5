"""Gcore's inference endpoints, translated onto Berth's services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from berth.api import state
from berth.api.auth import owned_task, platform_fact, require_token
from berth.api.body import JsonBody, api_router
from berth.api.dialects.gcore import credentials, keys, v2
from berth.api.dialects.gcore.credentials import check_credentials_name
from berth.api.dialects.gcore.models import (
    DeploymentCreate,
    DeploymentUpdate,
    check_project,
    parse,
    request_body,
)
from berth.api.dialects.gcore.shapes import (
    gcore_fields,
    region_id,
    task_to_gcore,
    to_gcore,
    to_native,
)
from berth.domain.errors import BerthError, NotFound, SpecInvalid
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus
from berth.services.deployments import Change

PREFIX = "/cloud/"
router = api_router(prefix="/cloud", tags=["gcore"], dependencies=[Depends(require_token)])
DEPLOYMENTS = "/v3/inference/{project_id}/deployments"
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]
EXCEPTION = {"invalid_spec": "ValidationError", "invalid_request": "ValidationError",
             "not_found": "NotFound", "conflict": "Conflict",
             "precondition_failed": "Conflict", "unauthorized": "Unauthorized"}


def render_error(exc: BerthError) -> JSONResponse:
    """Gcore's error shape; client errors tell the SDK not to retry."""
    status = 400 if exc.status == 422 else exc.status
    body: dict[str, Any] = {"exception_class": EXCEPTION.get(exc.code, "Error"),
                            "message": exc.message}
    if isinstance(exc, SpecInvalid):
        body["errors"] = [{"field": v.field, "rule": v.rule, "message": v.message}
                          for v in exc.violations]
    headers = {"x-should-retry": "false"} if status < 500 else {}
    return JSONResponse(body, status_code=status, headers=headers)


def _shape(request: Request, d: Deployment) -> dict[str, Any]:
    return to_gcore(d, state.facts(request), state.address(request, d.project, d.name))


def _tasks(change: Change) -> dict[str, list[str]]:
    return {"tasks": [change.task.id]}


def _native(request: Request, project_id: int, body: DeploymentUpdate, *,
            partial: bool = False) -> dict[str, Any]:
    check_project(body, project_id)
    data = to_native(body, state.facts(request), partial=partial)
    check_credentials_name(request, project_id, data)
    return data


def _apply(change: Callable[[], Change]) -> dict[str, list[str]]:
    """A service change, its native validation errors named as Gcore's fields."""
    try:
        return _tasks(change())
    except SpecInvalid as exc:
        raise gcore_fields(exc) from None


@router.post(DEPLOYMENTS, openapi_extra=request_body(DeploymentCreate))
def create(project_id: int, request: Request, body: JsonBody) -> dict[str, list[str]]:
    data = _native(request, project_id, parse(DeploymentCreate, body))
    return _apply(lambda: state.deployments(request).create(str(project_id), data))


@router.get(DEPLOYMENTS)
def list_(project_id: int, request: Request, limit: Limit = 1000,
          offset: Offset = 0) -> dict[str, Any]:
    items, count = state.deployments(request).page(str(project_id), limit=limit, offset=offset)
    return {"results": [_shape(request, d) for d in items], "count": count}


def _live(request: Request, project_id: int, name: str) -> Deployment:
    d = state.deployments(request).get(str(project_id), name)
    if d.status == DeploymentStatus.DELETED:
        raise NotFound(f"inference deployment {name!r} not found")
    return d


@router.get(DEPLOYMENTS + "/{name}")
def get(project_id: int, name: str, request: Request) -> dict[str, Any]:
    return _shape(request, _live(request, project_id, name))


@router.patch(DEPLOYMENTS + "/{name}", openapi_extra=request_body(DeploymentUpdate))
def update(project_id: int, name: str, request: Request,
           body: JsonBody) -> dict[str, list[str]]:
    patch = _native(request, project_id, parse(DeploymentUpdate, body), partial=True)
    return _apply(lambda: state.deployments(request).patch(str(project_id), name, patch))


@router.put(DEPLOYMENTS + "/{name}", openapi_extra=request_body(DeploymentCreate))
def replace(project_id: int, name: str, request: Request,
            body: JsonBody) -> dict[str, list[str]]:
    data = _native(request, project_id, parse(DeploymentCreate, body))
    return _apply(lambda: state.deployments(request).replace(str(project_id), name, data))


@router.delete(DEPLOYMENTS + "/{name}")
def delete(project_id: int, name: str, request: Request) -> dict[str, list[str]]:
    return _tasks(state.deployments(request).delete(str(project_id), name))


@router.post(DEPLOYMENTS + "/{name}/start")
def start(project_id: int, name: str, request: Request) -> dict[str, list[str]]:
    return _tasks(state.deployments(request).start(str(project_id), name))


@router.post(DEPLOYMENTS + "/{name}/stop")
def stop(project_id: int, name: str, request: Request) -> dict[str, list[str]]:
    return _tasks(state.deployments(request).stop(str(project_id), name))


@router.get(DEPLOYMENTS + "/{name}/logs")
async def logs(project_id: int, name: str, request: Request, limit: Limit = 100,
               offset: Offset = 0, region_id_: Annotated[int | None, Query(
                   alias="region_id")] = None) -> dict[str, Any]:
    d = await run_in_threadpool(_live, request, project_id, name)
    runtime = state.runtime(request)
    lines = await run_in_threadpool(runtime.logs, d.id, limit=limit + offset)
    region = region_id(d.spec.containers[0].region, state.facts(request))
    page = list(reversed(lines))[offset:offset + limit]  # newest first, as Gcore pages
    return {"count": len(lines), "results": [
        {"message": ln.line, "pod": ln.replica_id, "region_id": region,
         "time": datetime.fromtimestamp(ln.ts, UTC).isoformat().replace("+00:00", "Z")}
        for ln in page]}


@router.get("/v1/tasks/{task_id}")
@owned_task
def task(task_id: str, request: Request) -> dict[str, Any]:
    tasks = state.tasks(request)
    return task_to_gcore(tasks.get(task_id))


def _flavor(f: Any) -> dict[str, Any]:
    return {"name": f.name, "cpu": f.cpu, "memory": round(f.memory_bytes / 2**30, 2),
            "gpu": f.gpus, "gpu_model": f.gpu_model,
            "gpu_memory": round(f.gpu_memory_mib / 1024, 2),
            "gpu_compute_capability": f.gpu_compute_capability, "is_gpu_shared": False,
            "description": f.description}


@router.get("/v3/inference/flavors")
@platform_fact
def flavors(request: Request, limit: Limit = 1000, offset: Offset = 0) -> dict[str, Any]:
    items = state.facts(request).flavors
    return {"count": len(items), "results": [_flavor(f) for f in items[offset:offset + limit]]}


router.include_router(keys.router)
router.include_router(credentials.router)
router.include_router(v2.router)


@router.get("/v3/inference/flavors/{flavor_name}")
@platform_fact
def flavor(flavor_name: str, request: Request) -> dict[str, Any]:
    found = state.facts(request).flavor(flavor_name)
    if found is None:
        raise NotFound(f"flavor {flavor_name!r} not found")
    return _flavor(found)
