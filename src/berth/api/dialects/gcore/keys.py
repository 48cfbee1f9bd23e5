"""Gcore's inference API keys and capacity, on Berth's API keys and this machine's GPUs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from berth.api import state
from berth.api.auth import platform_fact
from berth.api.dialects.gcore.shapes import region_id
from berth.api.v1.deployments import JsonBody
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import Flavor, PlatformFacts
from berth.domain.records import ApiKey

router = APIRouter()
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


@router.post(KEYS)
def create_key(project_id: int, request: Request, body: JsonBody) -> dict[str, Any]:
    key, secret = state.api_keys(request).create(str(project_id), body)
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


@router.patch(KEYS + "/{name}")
def update_key(project_id: int, name: str, request: Request, body: JsonBody) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) - {"description"}:
        raise SpecInvalid([Violation("body", "fields", "only `description` can be changed")])
    return _key(request, state.api_keys(request).describe(str(project_id), name,
                                                          body.get("description")))


@router.delete(KEYS + "/{name}", status_code=204)
def delete_key(project_id: int, name: str, request: Request) -> Response:
    state.api_keys(request).delete(str(project_id), name)
    return Response(status_code=204)


def capacity_of(flavor: Flavor, facts: PlatformFacts, gpus_in_use: set[int]) -> int:
    """How many more replicas of this flavor fit now: free whole GPUs for GPU flavors;
    the CPU count for CPU flavors (the process runtime does not reserve CPU)."""
    if flavor.gpus:
        free = [g for g in facts.gpus if g.model == flavor.gpu_model
                and g.index not in gpus_in_use]
        return len(free) // flavor.gpus
    return int(facts.cpus // flavor.cpu)


@router.get("/v3/inference/capacity")
@platform_fact
def capacity(request: Request) -> dict[str, Any]:
    facts = state.facts(request)
    deployments = state.deployments(request)
    with deployments.store.read() as tx:
        in_use = {i for r in tx.replicas.all() for i in r.gpus}
    regions = [{"region_id": region_id(name, facts),
                "capacity": [{"flavor_name": f.name, "capacity": capacity_of(f, facts, in_use)}
                             for f in facts.flavors]} for name in facts.regions]
    return {"count": len(regions), "results": regions}
