"""Native v1: a project's registry credentials and secrets. Passwords and hidden secret
values go in, sealed; no answer carries them back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic import Field

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.v1.models import Out
from berth.domain.records import RegistryCredential, Secret
from berth.services.credentials import (
    MASK,
    RegistryCredentialRequest,
    SecretRequest,
    shown_data,
)

registries = api_router(prefix="/v1/projects/{project}/registry-credentials",
                       tags=["credentials"])
secrets = api_router(prefix="/v1/projects/{project}/secrets", tags=["credentials"])


def _body(model: type[RegistryCredentialRequest | SecretRequest]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


class RegistryCredentialOut(Out):
    """Registry credentials, without their password."""

    name: str
    registry_url: str
    username: str
    created_at: datetime
    updated_at: datetime


class RegistryCredentialList(Out):
    items: list[RegistryCredentialOut]


class SecretOut(Out):
    name: str
    type: str
    data: dict[str, str] = Field(description=f"Hidden fields read {MASK!r}.")
    created_at: datetime
    updated_at: datetime


class SecretList(Out):
    items: list[SecretOut]


def registry_out(c: RegistryCredential) -> RegistryCredentialOut:
    return RegistryCredentialOut(name=c.name, registry_url=c.registry_url, username=c.username,
                                 created_at=c.created_at, updated_at=c.updated_at)


def secret_out(s: Secret) -> SecretOut:
    return SecretOut(name=s.name, type=s.type, data=shown_data(s), created_at=s.created_at,
                     updated_at=s.updated_at)


@registries.post("", status_code=201, response_model=RegistryCredentialOut,
                 openapi_extra=_body(RegistryCredentialRequest),
                 summary="Create registry credentials (the password is sealed, never shown)")
def create_registry(project: str, request: Request, body: JsonBody) -> RegistryCredentialOut:
    return registry_out(state.credentials(request).create_registry(project, body))


@registries.get("", response_model=RegistryCredentialList,
                summary="List registry credentials (without passwords)")
def list_registries(project: str, request: Request) -> RegistryCredentialList:
    found = state.credentials(request).list_registries(project)
    return RegistryCredentialList(items=[registry_out(c) for c in found])


@registries.get("/{name}", response_model=RegistryCredentialOut,
                summary="Get registry credentials (without the password)")
def get_registry(project: str, name: str, request: Request) -> RegistryCredentialOut:
    return registry_out(state.credentials(request).get_registry(project, name))


@registries.put("/{name}", response_model=RegistryCredentialOut,
                openapi_extra=_body(RegistryCredentialRequest),
                summary="Replace registry credentials (URL, username and password)")
def replace_registry(project: str, name: str, request: Request,
                     body: JsonBody) -> RegistryCredentialOut:
    return registry_out(state.credentials(request).replace_registry(project, name, body))


@registries.delete("/{name}", status_code=204, response_class=Response,
                   summary="Delete registry credentials")
def delete_registry(project: str, name: str, request: Request) -> Response:
    state.credentials(request).delete_registry(project, name)
    return Response(status_code=204)


@secrets.post("", status_code=201, response_model=SecretOut, openapi_extra=_body(SecretRequest),
              summary="Create a secret (hidden values are sealed, never shown)")
def create_secret(project: str, request: Request, body: JsonBody) -> SecretOut:
    return secret_out(state.credentials(request).create_secret(project, body))


@secrets.get("", response_model=SecretList, summary="List secrets (hidden values masked)")
def list_secrets(project: str, request: Request) -> SecretList:
    return SecretList(items=[secret_out(s)
                             for s in state.credentials(request).list_secrets(project)])


@secrets.get("/{name}", response_model=SecretOut, summary="Get a secret (hidden values masked)")
def get_secret(project: str, name: str, request: Request) -> SecretOut:
    return secret_out(state.credentials(request).get_secret(project, name))


@secrets.put("/{name}", response_model=SecretOut, openapi_extra=_body(SecretRequest),
             summary="Replace a secret's type and data")
def replace_secret(project: str, name: str, request: Request, body: JsonBody) -> SecretOut:
    return secret_out(state.credentials(request).replace_secret(project, name, body))


@secrets.delete("/{name}", status_code=204, response_class=Response, summary="Delete a secret")
def delete_secret(project: str, name: str, request: Request) -> Response:
    state.credentials(request).delete_secret(project, name)
    return Response(status_code=204)
