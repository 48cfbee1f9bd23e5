"""TIR's datasets (`teams/{t}/projects/{p}/datasets/`), as the SDK's `Datasets` calls them
(create, list, get, delete), translated onto Berth's DatasetService: a TIR dataset is the
Berth dataset of the project `tir-T-P`, and its number is the dataset's id.

Berth keeps a dataset in a directory under its data directory (TIR's `managed` storage) or
at an fsspec URL set natively; it has no E2E Object Storage, so a dataset shows no access
keys and the SDK's MinIO helpers (upload, download, `get_async_invocation_request_response`)
have nothing to reach: read results through Berth's native dataset objects.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from berth.api import state
from berth.api.body import JsonBody
from berth.api.dialects.tir.access import TEAM_PROJECT, gpu_router
from berth.api.dialects.tir.models import Flag, Opt, TirModel, parse, request_body
from berth.api.dialects.tir.shapes import berth_project, envelope
from berth.domain.errors import SpecInvalid, Violation
from berth.store.datasets import Dataset

router = gpu_router()
DATASETS = TEAM_PROJECT + "/datasets"
Json = dict[str, Any]


class DatasetCreate(TirModel):
    """The SDK's `Datasets.create` body."""

    name: Opt[str] = None
    storage_type: Opt[str] = None
    bucket_name: Opt[str] = None
    encryption_enable: Flag = None
    encryption_type: Opt[str] = None
    description: Opt[str] = None


def to_native(body: DatasetCreate) -> Json:
    """A create body as native dataset data; what needs E2E Object Storage is refused."""
    refused = [
        ("storage_type", body.storage_type not in (None, "managed"),
         "Berth keeps datasets on this machine (TIR's 'managed'); an existing bucket "
         "('e2e_s3') or a disk ('pvc') is not served: create the dataset natively with an "
         "fsspec url (s3://...)"),
        ("bucket_name", body.bucket_name is not None,
         "names an E2E Object Storage bucket, which Berth cannot reach: leave it empty"),
        ("encryption_enable", bool(body.encryption_enable),
         "Berth does not encrypt dataset objects (SSE-KMS / SSE-C need E2E Object Storage)"),
        ("encryption_type", body.encryption_type is not None, "see encryption_enable"),
    ]
    found = [Violation(f, "not_supported_here", m) for f, given, m in refused if given]
    if found:
        raise SpecInvalid(found)
    out: Json = {"name": body.name}
    if body.description is not None:
        out["description"] = body.description
    return out


def _iso(d: Dataset) -> str:
    return d.created_at.isoformat().replace("+00:00", "Z")


def to_tir(d: Dataset) -> Json:
    """A Berth dataset in TIR's shape."""
    bucket = d.name
    if d.url is not None:
        bucket = d.url.partition("://")[2].split("/", 1)[0] or d.name
    return {
        "id": d.id, "name": d.name, "description": d.description,
        "storage_type": "managed" if d.url is None else "e2e_s3", "status": "Ready",
        "bucket": {"bucket_name": bucket, "bucket_url": d.url, "endpoint": None},
        "access_key": None, "encryption_enable": False, "encryption_type": None,
        "created_at": _iso(d), "updated_at": _iso(d),
    }


@router.get(DATASETS + "/")
def list_(team: int, project: int, request: Request) -> Json:
    return envelope([to_tir(d) for d in
                     state.datasets(request).of_project(berth_project(team, project))])


@router.post(DATASETS + "/", openapi_extra=request_body(DatasetCreate))
def create(team: int, project: int, request: Request, body: JsonBody) -> Json:
    native = to_native(parse(DatasetCreate, body))
    made = state.datasets(request).create(berth_project(team, project), native)
    return envelope(to_tir(made), "Dataset created successfully")


@router.get(DATASETS + "/{dataset_id}/")
def get(team: int, project: int, dataset_id: int, request: Request) -> Json:
    return envelope(to_tir(state.datasets(request).by_id(berth_project(team, project),
                                                         dataset_id)))


@router.delete(DATASETS + "/{dataset_id}/")
def delete(team: int, project: int, dataset_id: int, request: Request) -> Json:
    """Refused (409) while an endpoint sends its async results to the dataset."""
    svc = state.datasets(request)
    found = svc.by_id(berth_project(team, project), dataset_id)
    svc.delete(found.project, found.name)
    return envelope({"id": dataset_id, "name": found.name}, "Dataset deleted successfully")
