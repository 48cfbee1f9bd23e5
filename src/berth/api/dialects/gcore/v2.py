"""Gcore's v2 inference instances (seed 001): by instance id, with flavor/key/registry ids.

A v2 body is translated to the v3 one (ids to names) and then to the native spec, so the
rules and mappings are the v3 ones; answers carry v2's ids and its full status enum.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from berth.api import state
from berth.api.auth import owned_by
from berth.api.body import JsonBody, api_router
from berth.api.dialects.gcore.models import DeploymentUpdate, InstanceUpdate, parse, request_body
from berth.api.dialects.gcore.shapes import gcore_fields, to_gcore, to_native
from berth.domain.errors import NotFound, SpecInvalid, Violation
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus

router = api_router()
INSTANCE = "/v2/inference/deployments/{instance_id}"
FLAVORS = uuid.UUID("6f3c8a6e-0a51-4d8e-9a64-2f1c6c1e0b7a")  # namespace of flavor ids


def flavor_id(name: str) -> str:
    """A stable id for one of this machine's flavors (v2 names flavors by UUID)."""
    return str(uuid.uuid5(FLAVORS, name))


def _missing(request: Request) -> NotFound:
    return NotFound(f"inference instance {request.path_params['instance_id']!r} not found")


def _instance(request: Request, instance_id: str) -> Deployment:
    d = state.deployments(request).by_id(instance_id)
    if d is None or d.status == DeploymentStatus.DELETED:
        raise _missing(request)
    return d


def _owner(request: Request) -> str | None:
    """The project of the instance the path names: no project is in v2's paths."""
    try:
        return _instance(request, str(request.path_params["instance_id"])).project
    except NotFound:
        return None


instance = owned_by(_owner, _missing)


def to_v3(body: InstanceUpdate, d: Deployment, request: Request) -> DeploymentUpdate:
    """A v2 instance body as the v3 one: ids to names."""
    facts = state.facts(request)
    given = body.model_fields_set
    data = body.model_dump(include=given - {"flavor_id", "api_key_ids", "image_registry_id",
                                            "project_id", "name"})
    if "flavor_id" in given:
        names = {flavor_id(f.name): f.name for f in facts.flavors}
        if body.flavor_id not in names:
            raise SpecInvalid([Violation("flavor_id", "known_flavor",
                                         f"unknown flavor_id {body.flavor_id!r}; ids of "
                                         "this machine's flavors: " + ", ".join(names))])
        data["flavor_name"] = names[body.flavor_id]
    if body.api_key_ids is not None:
        keys = {k.id: k.name for k in state.api_keys(request).list(d.project)}
        missing = [i for i in body.api_key_ids if i not in keys]
        if missing:
            raise SpecInvalid([Violation("api_key_ids", "known_key",
                                         f"unknown API key ids in project {d.project}: "
                                         + ", ".join(missing))])
        data["api_keys"] = [keys[i] for i in body.api_key_ids]
        data.pop("auth_enabled", None)  # in v2, key ids imply authentication
    if body.image_registry_id is not None:
        data["credentials_name"] = body.image_registry_id
    return DeploymentUpdate.model_validate(data)


def to_v2(request: Request, d: Deployment) -> dict[str, Any]:
    facts = state.facts(request)
    shape = to_gcore(d, facts, state.address(request, d.project, d.name))
    key_ids = {k.name: k.id for k in state.api_keys(request).list(d.project)}
    shape.pop("object_references", None)
    shape.pop("flavor_name", None)
    shape.pop("api_keys", None)
    credentials = shape.pop("credentials_name", "")
    shape.update(
        id=d.id, status=d.status.value, command=d.spec.command,
        flavor_id=flavor_id(d.spec.flavor) if d.spec.flavor else None,
        image_registry_id=credentials or None,
        api_key_ids=[key_ids[n] for n in d.spec.api_keys or [] if n in key_ids])
    return shape


@router.get(INSTANCE)
@instance
def get_instance(instance_id: str, request: Request) -> dict[str, Any]:
    return to_v2(request, _instance(request, instance_id))


@router.put(INSTANCE, openapi_extra=request_body(InstanceUpdate))
@instance
def put_instance(instance_id: str, request: Request, body: JsonBody) -> dict[str, Any]:
    d = _instance(request, instance_id)
    req = parse(InstanceUpdate, body)
    if req.project_id is not None and str(req.project_id) != d.project:
        raise SpecInvalid([Violation("project_id", "matches_instance",
                                     f"is {req.project_id} but instance {instance_id!r} is "
                                     f"in project {d.project}")])
    data = to_native(to_v3(req, d, request), state.facts(request))
    if req.name is not None:
        data["name"] = req.name
    try:
        change = state.deployments(request).replace(d.project, d.name, data)
    except SpecInvalid as exc:
        raise gcore_fields(exc) from None
    return to_v2(request, change.deployment)


@router.delete(INSTANCE)
@instance
def delete_instance(instance_id: str, request: Request) -> dict[str, list[str]]:
    d = _instance(request, instance_id)
    svc = state.deployments(request)
    return {"tasks": [svc.delete(d.project, d.name).task.id]}
