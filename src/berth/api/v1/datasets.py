"""Native v1: datasets, the named places async results are written to, and their objects."""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.v1.models import DatasetList, DatasetOut, ObjectList, ObjectOut
from berth.invocations.datasets import ObjectInfo
from berth.services.datasets import DatasetIn
from berth.store.datasets import Dataset

router = api_router(prefix="/v1/projects/{project}/datasets", tags=["datasets"])

DATASET_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": DatasetIn.model_json_schema()}}}}
OBJECT_ANSWER: dict[int | str, dict[str, Any]] = {200: {
    "description": "The object's bytes; the content type follows its suffix.",
    "content": {"application/json": {}, "application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}, "*/*": {}}}}
OCTET = "application/octet-stream"


def dataset_out(d: Dataset) -> DatasetOut:
    return DatasetOut(id=d.id, project=d.project, name=d.name, url=d.url,
                      description=d.description, created_at=d.created_at)


def object_out(info: ObjectInfo) -> ObjectOut:
    modified = None if info.modified_at is None else datetime.fromtimestamp(
        info.modified_at, UTC)
    return ObjectOut(path=info.path, size=info.size, modified_at=modified)


def content_type(path: str) -> str:
    """From the suffix: application/json for .json; a compressed one is plain bytes."""
    if path.lower().endswith(".json"):
        return "application/json"
    guessed, encoding = mimetypes.guess_type(path, strict=True)
    if guessed is None or encoding is not None:
        return OCTET
    return guessed


@router.post("", status_code=201, response_model=DatasetOut, openapi_extra=DATASET_BODY,
             summary="Create a dataset (default: a directory under the data directory)")
def create(project: str, request: Request, body: JsonBody) -> DatasetOut:
    return dataset_out(state.datasets(request).create(project, body))


@router.get("", response_model=DatasetList, summary="List the project's datasets")
def list_(project: str, request: Request) -> DatasetList:
    return DatasetList(items=[dataset_out(d) for d in state.datasets(request).of_project(project)])


@router.get("/{name}", response_model=DatasetOut, summary="Get a dataset")
def get(project: str, name: str, request: Request) -> DatasetOut:
    return dataset_out(state.datasets(request).get(project, name))


@router.delete("/{name}", status_code=204, response_class=Response,
               summary="Delete a dataset (and, under the data directory, its objects); "
                       "refused while a deployment sends async results to it")
def delete(project: str, name: str, request: Request) -> Response:
    state.datasets(request).delete(project, name)
    return Response(status_code=204)


@router.get("/{name}/objects", response_model=ObjectList,
            summary="List a dataset's objects, sorted by path")
def objects(
    project: str, name: str, request: Request,
    prefix: Annotated[str, Query(max_length=1000,
                                 description="A folder, e.g. `echo/`; empty: all.")] = "",
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> ObjectList:
    found = state.datasets(request).objects(project, name, prefix, limit=limit)
    return ObjectList(items=[object_out(info) for info in found])


@router.get("/{name}/objects/{path:path}", response_class=Response, responses=OBJECT_ANSWER,
            summary="Read one object (an async result is `{prefix}{request_id}.json`)")
def read_object(project: str, name: str, path: str, request: Request) -> Response:
    data = state.datasets(request).read(project, name, path)
    # The bytes are a replica's answer: never let a browser run them as a page of this API.
    return Response(data, media_type=content_type(path), headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})
