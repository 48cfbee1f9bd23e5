"""Gcore's inference API keys and capacity, on Berth's API keys and this machine's GPUs."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from berth.api import state
from berth.api.auth import platform_fact
from berth.api.body import JsonBody, api_router
from berth.api.dialects.gcore.models import (
    ApiKeyCreate,
    ApiKeyUpdate,
    check_project,
    parse,
    request_body,
)
from berth.api.dialects.gcore.shapes import region_id
from berth.controller.placement import GpuRequest, place
from berth.domain.platform import Flavor, PlatformFacts
from berth.domain.records import ApiKey

router = api_router()
KEYS = "/v3/inference/{project_id}/api_keys"


def _iso(key: ApiKey, field: str) -> str | None:
    at = getattr(key, field)
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _shapes(request: Request, project: str, keys: list[ApiKey]) -> list[dict[str, Any]]:
    """Gcore's key shapes; `deployment_names` from one read of the project's deployments."""
    items, _count = state.deployments(request).page(project)
    return [{"name": key.name, "description": key.description or None,
             "created_at": _iso(key, "created_at"), "expires_at": _iso(key, "expires_at"),
             "deployment_names": [d.name for d in items
                                  if (d.spec.api_keys and key.name in d.spec.api_keys)
                                  or d.spec.auth_enabled]}
            for key in keys]


def _key(request: Request, key: ApiKey) -> dict[str, Any]:
    return _shapes(request, key.project, [key])[0]


@router.post(KEYS, openapi_extra=request_body(ApiKeyCreate))
def create_key(project_id: int, request: Request, body: JsonBody) -> dict[str, Any]:
    req = parse(ApiKeyCreate, body)
    check_project(req, project_id)
    data = req.model_dump(exclude={"project_id"}, exclude_none=True)
    key, secret = state.api_keys(request).create(str(project_id), data)
    return {**_key(request, key), "secret": secret}


@router.get(KEYS)
def list_keys(project_id: int, request: Request, limit: int = 1000,
              offset: int = 0) -> dict[str, Any]:
    keys = state.api_keys(request).list(str(project_id))
    return {"count": len(keys),
            "results": _shapes(request, str(project_id), keys[offset:offset + limit])}


@router.get(KEYS + "/{name}")
def get_key(project_id: int, name: str, request: Request) -> dict[str, Any]:
    return _key(request, state.api_keys(request).get(str(project_id), name))


@router.patch(KEYS + "/{name}", openapi_extra=request_body(ApiKeyUpdate))
def update_key(project_id: int, name: str, request: Request, body: JsonBody) -> dict[str, Any]:
    req = parse(ApiKeyUpdate, body)
    check_project(req, project_id)
    return _key(request, state.api_keys(request).describe(str(project_id), name,
                                                          req.description))


@router.delete(KEYS + "/{name}", status_code=204)
def delete_key(project_id: int, name: str, request: Request) -> Response:
    state.api_keys(request).delete(str(project_id), name)
    return Response(status_code=204)


def capacity_of(flavor: Flavor, facts: PlatformFacts, gpus_in_use: set[int]) -> int:
    """How many more replicas of this flavor fit now: for GPU flavors, how many times the
    controller's placement (`controller.placement.place`) could give one its GPUs; the CPU
    count for CPU flavors (the process runtime does not reserve CPU)."""
    if not flavor.gpus:
        return int(facts.cpus // flavor.cpu)
    request = GpuRequest(flavor.gpus, flavor.gpu_model or None)
    taken, fits = set(gpus_in_use), 0
    while isinstance(given := place(request, facts.gpus, taken), list):
        taken.update(given)
        fits += 1
    return fits


@router.get("/v3/inference/capacity")
@platform_fact
def capacity(request: Request) -> dict[str, Any]:
    facts = state.facts(request)
    in_use = state.deployments(request).gpus_in_use()
    regions = [{"region_id": region_id(name, facts),
                "capacity": [{"flavor_name": f.name, "capacity": capacity_of(f, facts, in_use)}
                             for f in facts.flavors]} for name in facts.regions]
    return {"count": len(regions), "results": regions}
