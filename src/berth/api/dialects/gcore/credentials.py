"""Gcore's inference registry credentials and secrets, on Berth's credentials service.

Gcore's shapes: a credential answers `{name, project_id, registry_url, username}` (never the
password); a secret answers `{name, type, data}` with hidden values masked. Deleting a
credential or secret a deployment names is allowed, as Gcore documents no refusal.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.dialects.gcore.models import (
    GcoreModel,
    RegistryCredentialCreate,
    RegistryCredentialReplace,
    SecretCreate,
    SecretReplace,
    check_project,
    parse,
    request_body,
)
from berth.domain.records import RegistryCredential, Secret
from berth.services.credentials import shown_data

M = TypeVar("M", bound=GcoreModel)

router = api_router()
REGISTRY = "/v3/inference/{project_id}/registry_credentials"
SECRETS = "/v3/inference/{project_id}/secrets"
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


def _request(model: type[M], body: Any, project_id: int) -> dict[str, Any]:
    """The body as the service's data: `project_id`, which Gcore's params allow, must be
    the path's and is not passed on."""
    request = parse(model, body)
    check_project(request, project_id)
    return request.model_dump(exclude={"project_id"})


def _credential(c: RegistryCredential) -> dict[str, Any]:
    return {"name": c.name, "project_id": int(c.project), "registry_url": c.registry_url,
            "username": c.username}


def _secret(s: Secret) -> dict[str, Any]:
    return {"name": s.name, "type": s.type, "data": shown_data(s)}


def check_credentials_name(request: Request, project_id: int, data: dict[str, Any]) -> None:
    """A deployment's `credentials_name`, when given, must name credentials of its project."""
    name = data.get("credentials_name")
    if name:
        state.credentials(request).require_registry(str(project_id), name)


@router.post(REGISTRY, openapi_extra=request_body(RegistryCredentialCreate))
def create_registry(project_id: int, request: Request, body: JsonBody) -> dict[str, Any]:
    data = _request(RegistryCredentialCreate, body, project_id)
    return _credential(state.credentials(request).create_registry(str(project_id), data))


@router.get(REGISTRY)
def list_registries(project_id: int, request: Request, limit: Limit = 1000,
                    offset: Offset = 0) -> dict[str, Any]:
    found = state.credentials(request).list_registries(str(project_id))
    return {"count": len(found),
            "results": [_credential(c) for c in found[offset:offset + limit]]}


@router.get(REGISTRY + "/{credential_name}")
def get_registry(project_id: int, credential_name: str, request: Request) -> dict[str, Any]:
    return _credential(state.credentials(request).get_registry(str(project_id),
                                                               credential_name))


@router.put(REGISTRY + "/{credential_name}",
            openapi_extra=request_body(RegistryCredentialReplace))
def replace_registry(project_id: int, credential_name: str, request: Request,
                     body: JsonBody) -> dict[str, Any]:
    data = _request(RegistryCredentialReplace, body, project_id)
    return _credential(state.credentials(request).replace_registry(
        str(project_id), credential_name, data))


@router.delete(REGISTRY + "/{credential_name}", status_code=204)
def delete_registry(project_id: int, credential_name: str, request: Request) -> Response:
    state.credentials(request).delete_registry(str(project_id), credential_name)
    return Response(status_code=204)


@router.post(SECRETS, openapi_extra=request_body(SecretCreate))
def create_secret(project_id: int, request: Request, body: JsonBody) -> dict[str, Any]:
    data = _request(SecretCreate, body, project_id)
    return _secret(state.credentials(request).create_secret(str(project_id), data))


@router.get(SECRETS)
def list_secrets(project_id: int, request: Request, limit: Limit = 1000,
                 offset: Offset = 0) -> dict[str, Any]:
    found = state.credentials(request).list_secrets(str(project_id))
    return {"count": len(found), "results": [_secret(s) for s in found[offset:offset + limit]]}


@router.get(SECRETS + "/{secret_name}")
def get_secret(project_id: int, secret_name: str, request: Request) -> dict[str, Any]:
    return _secret(state.credentials(request).get_secret(str(project_id), secret_name))


@router.put(SECRETS + "/{secret_name}", openapi_extra=request_body(SecretReplace))
def replace_secret(project_id: int, secret_name: str, request: Request,
                   body: JsonBody) -> dict[str, Any]:
    data = _request(SecretReplace, body, project_id)
    return _secret(state.credentials(request).replace_secret(str(project_id), secret_name,
                                                             data))


@router.delete(SECRETS + "/{secret_name}", status_code=204)
def delete_secret(project_id: int, secret_name: str, request: Request) -> Response:
    state.credentials(request).delete_secret(str(project_id), secret_name)
    return Response(status_code=204)
