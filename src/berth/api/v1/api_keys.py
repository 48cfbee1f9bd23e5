"""Native v1: API keys that callers of a project's inference endpoints present."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.v1.models import ApiKeyCreated, ApiKeyList, ApiKeyOut
from berth.domain.records import ApiKey
from berth.services.api_keys import ApiKeyRequest

router = api_router(prefix="/v1/projects/{project}/api-keys", tags=["api-keys"])

KEY_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ApiKeyRequest.model_json_schema()}}}}


def api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(id=key.id, name=key.name, description=key.description, prefix=key.prefix,
                     created_at=key.created_at, expires_at=key.expires_at)


@router.post("", status_code=201, response_model=ApiKeyCreated, openapi_extra=KEY_BODY,
             summary="Create an API key (its secret is returned only this once)")
def create(project: str, request: Request, response: Response, body: JsonBody) -> ApiKeyCreated:
    key, secret = state.api_keys(request).create(project, body)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(**api_key_out(key).model_dump(), secret=secret)


@router.get("", response_model=ApiKeyList, summary="List API keys (without secrets)")
def list_(project: str, request: Request) -> ApiKeyList:
    return ApiKeyList(items=[api_key_out(k) for k in state.api_keys(request).list(project)])


@router.get("/{name}", response_model=ApiKeyOut, summary="Get an API key (without its secret)")
def get(project: str, name: str, request: Request) -> ApiKeyOut:
    return api_key_out(state.api_keys(request).get(project, name))


@router.delete("/{name}", status_code=204, response_class=Response,
               summary="Delete an API key; callers using it are refused from then on")
def delete(project: str, name: str, request: Request) -> Response:
    state.api_keys(request).delete(project, name)
    return Response(status_code=204)
