"""Foundry's models and live-deployments endpoints, translated onto Berth's services.

All Foundry objects live in the Berth project `foundry`; models and the live-deployment
RID <-> Berth deployment mapping are kept as dialect records, through the services.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from berth.api import state
from berth.api.auth import Authorization
from berth.api.body import JsonBody, api_router
from berth.api.dialects.foundry.models import (
    CREATE_LIVE,
    CREATE_MODEL,
    REPLACE_LIVE,
    TRANSFORM,
    LiveDeploymentRuntimeConfiguration,
)
from berth.api.dialects.foundry.shapes import (
    BRANCH_KIND,
    DIALECT,
    LIVE_KIND,
    LIVE_RID,
    MODEL_KIND,
    MODEL_RID,
    PROJECT,
    VERSION_RID,
    FoundryError,
    already_exists,
    branch_key,
    check_sources,
    config_invalid,
    deployment_name,
    error_body,
    holds_branch,
    live_not_found,
    model_not_found,
    model_version,
    sources_locked,
    to_foundry,
    to_native,
    translate,
    version_not_found,
)
from berth.api.dialects.request_schema import parse, request_body
from berth.api.relay import route_url
from berth.api.relay import timeout as relay_timeout
from berth.domain.errors import BerthError, Forbidden, NotFound, SpecInvalid
from berth.domain.records import Deployment
from berth.domain.status import DeploymentStatus
from berth.services.dialect_records import RecordChange, RecordClaim, RecordWrite
from berth.store.dialect_records import DialectRecord

T = TypeVar("T")
PREFIX = "/api/v2/models"
LIVE = "/liveDeployments"
DENIED = {"start": "StartLiveDeploymentPermissionDenied",
          "disable": "DisableLiveDeploymentPermissionDenied",
          "transformJson": "TransformJsonLiveDeploymentPermissionDenied"}


def _denied(request: Request, exc: Forbidden) -> BerthError:
    path, rid = request.url.path, request.path_params.get("rid")
    if request.method == "GET":
        return exc
    if rid is None:
        name = "CreateLiveDeploymentPermissionDenied" if path.endswith(LIVE) else (
            "CreateModelPermissionDenied")
        return FoundryError(name, "PERMISSION_DENIED", exc.message)
    action = path.rsplit("/", 1)[-1]
    return FoundryError(DENIED.get(action, "ReplaceLiveDeploymentPermissionDenied"),
                        "PERMISSION_DENIED", exc.message, liveDeploymentRid=rid)


def _preview(preview: Annotated[str | None, Query()] = None) -> None:
    if (preview or "").lower() != "true":
        raise FoundryError("ApiFeaturePreviewUsageOnly", "INVALID_ARGUMENT",
                           "this endpoint is in preview: add preview=true to the query")


def _project(_request: Request) -> str:
    return PROJECT


# Bearer token; the token must reach the project `foundry` (every Foundry object lives
# there), and write for non-GETs.
_auth = Authorization(project=_project, params=None, denied=_denied)
router = api_router(prefix=PREFIX, tags=["foundry"], dependencies=[Depends(_auth)])
Preview = [Depends(_preview)]


def render_error(exc: BerthError) -> JSONResponse:
    status, body = error_body(exc, str(uuid.uuid4()))
    return JSONResponse(body, status_code=status)


def _model(request: Request, rid: Any) -> DialectRecord:
    found = state.dialect_records(request).get(DIALECT, MODEL_KIND, str(rid))
    if found is None:
        raise model_not_found(str(rid))
    return found


def _live(request: Request, rid: str) -> tuple[Deployment, DialectRecord]:
    record = state.dialect_records(request).get(DIALECT, LIVE_KIND, rid)
    if record is None:
        raise live_not_found(rid)
    try:
        d = state.deployments(request).get(PROJECT, record.data["name"])
    except NotFound:
        raise live_not_found(rid) from None
    if d.status == DeploymentStatus.DELETED:
        raise live_not_found(rid)
    return d, record


def _put(request: Request, key: str, kind: str, data: dict[str, Any],
         created_at: datetime | None = None) -> DialectRecord:
    record = DialectRecord(DIALECT, kind, key, PROJECT, data, created_at or datetime.now(UTC))
    state.dialect_records(request).put([record])
    return record


def _claim(record: DialectRecord) -> list[RecordChange]:
    """The records a live deployment's create writes with it: its model branch's lock,
    refused if another live record of the branch still holds it (checked in the create's
    transaction; on PostgreSQL two concurrent claims collide on the lock's key), and the live
    deployment's own record."""
    model_rid, branch = record.data["modelRid"], record.data["branch"]
    lock = RecordWrite(DIALECT, BRANCH_KIND, {"liveDeploymentRid": record.key},
                       key=branch_key(model_rid, branch), project=PROJECT,
                       created_at=record.created_at)
    claim = RecordClaim(
        lock, {"modelRid": model_rid, "branch": branch},
        lambda other, d: holds_branch(other.created_at, d, record.created_at),
        lambda other: already_exists(model_rid, branch, other.key), kind=LIVE_KIND)
    return [claim, RecordWrite(DIALECT, LIVE_KIND, record.data, key=record.key,
                               project=PROJECT, created_at=record.created_at)]


def _parse(adapter: TypeAdapter[T], body: Any) -> T:
    try:
        return parse(adapter, body)
    except SpecInvalid as exc:
        raise config_invalid(exc) from None


def _kept(config: LiveDeploymentRuntimeConfiguration) -> dict[str, Any]:
    """What the live deployment's record keeps of a configuration: what Berth has no field
    for (the scaling configuration as sent, the sources)."""
    scaling = config.scaling_configuration
    return {"scaling": scaling.model_dump(mode="json", by_alias=True) if scaling else None,
            "sources": check_sources(config.sources)}


@router.post("", openapi_extra=request_body(CREATE_MODEL))
def create_model(request: Request, body: JsonBody) -> dict[str, str]:
    asked = _parse(CREATE_MODEL, body)
    rid = MODEL_RID + str(uuid.uuid4())
    _put(request, rid, MODEL_KIND, {"name": asked.name,
                                    "parentFolderRid": asked.parent_folder_rid})
    return {"rid": rid}


@router.post(LIVE, dependencies=Preview, openapi_extra=request_body(CREATE_LIVE))
def create(request: Request, body: JsonBody) -> dict[str, Any]:
    asked = _parse(CREATE_LIVE, body)
    target, config = asked.deployment_type, asked.runtime_configuration
    model = _model(request, target.model_rid)
    ident = uuid.uuid4()
    rid, name = LIVE_RID + str(ident), deployment_name(ident.hex)
    data = to_native(config, name, state.facts(request))
    record = DialectRecord(DIALECT, LIVE_KIND, rid, PROJECT, {
        "name": name, "modelRid": model.key, "branch": target.branch,
        "modelVersionRid": VERSION_RID + str(uuid.uuid4())} | _kept(config),
        state.deployments(request).clock())
    try:
        change = state.deployments(request).create(PROJECT, data, records=_claim(record))
    except SpecInvalid as exc:
        raise translate(exc, config, state.facts(request)) from None
    except IntegrityError:  # a concurrent claim of the branch won
        winner = state.dialect_records(request).get(
            DIALECT, BRANCH_KIND, branch_key(model.key, target.branch))
        raise already_exists(model.key, target.branch,
                             winner.data["liveDeploymentRid"] if winner else "") from None
    return to_foundry(change.deployment, rid, record.data)


@router.get(LIVE, dependencies=Preview)
def list_(request: Request, model_rid: Annotated[str, Query(alias="modelRid")],
          branch: str | None = None) -> dict[str, Any]:
    return {"data": [to_foundry(d, record.key, record.data)
                     for record, d in _live_of_model(request, model_rid, branch)]}


@router.get(LIVE + "/{rid}", dependencies=Preview)
def get(rid: str, request: Request) -> dict[str, Any]:
    d, record = _live(request, rid)
    return to_foundry(d, rid, record.data)


@router.put(LIVE + "/{rid}", dependencies=Preview, openapi_extra=request_body(REPLACE_LIVE))
def replace(rid: str, request: Request, body: JsonBody) -> dict[str, Any]:
    d, record = _live(request, rid)
    config = _parse(REPLACE_LIVE, body).runtime_configuration
    data = to_native(config, d.name, state.facts(request), d.spec)
    kept = _kept(config)
    if kept["sources"] != record.data.get("sources", []) and (
            d.status != DeploymentStatus.DISABLED):
        raise sources_locked(rid)
    write = RecordWrite(DIALECT, LIVE_KIND, record.data | kept, key=rid, project=PROJECT,
                        created_at=record.created_at)
    try:
        change = state.deployments(request).replace(PROJECT, d.name, data, records=[write])
    except SpecInvalid as exc:
        raise translate(exc, config, state.facts(request)) from None
    return to_foundry(change.deployment, rid, change.records[0].data)


@router.post(LIVE + "/{rid}/start", dependencies=Preview, status_code=204)
def start(rid: str, request: Request) -> Response:
    d, _ = _live(request, rid)
    state.deployments(request).start(PROJECT, d.name)
    return Response(status_code=204)


@router.post(LIVE + "/{rid}/disable", dependencies=Preview, status_code=204)
def disable(rid: str, request: Request) -> Response:
    d, _ = _live(request, rid)
    state.deployments(request).stop(PROJECT, d.name)
    return Response(status_code=204)


@router.post(LIVE + "/{rid}/transformJson", dependencies=Preview,
             openapi_extra=request_body(TRANSFORM))
async def transform_json(rid: str, request: Request, body: JsonBody) -> dict[str, Any]:
    """Inference through the gateway to the replica's predict route."""
    d, _ = await run_in_threadpool(_live, request, rid)
    try:
        asked = parse(TRANSFORM, body)
    except SpecInvalid as exc:
        raise FoundryError("InferenceInvalidInput", "INVALID_ARGUMENT",
                           f"the body must be {{input: {{...}}}}: {exc.message}",
                           liveDeploymentRid=rid, errorType="InvalidInputType") from None
    address = state.address(request, PROJECT, d.name)
    if d.status == DeploymentStatus.DISABLED or not address:
        raise FoundryError("InferenceFailure", "INVALID_ARGUMENT", "the deployment is disabled",
                           liveDeploymentRid=rid, errorMessage="the deployment is disabled")
    url = route_url(address, d.spec.routes.predict)
    try:
        answer = await state.relay(request).post(
            url, json=asked.input,
            timeout=relay_timeout(min(d.spec.timeouts.total, 300)))
    except httpx.TimeoutException:
        raise FoundryError("InferenceTimeout", "TIMEOUT", "the deployment took too long",
                           liveDeploymentRid=rid) from None
    except httpx.HTTPError as exc:
        raise FoundryError("InferenceFailure", "INVALID_ARGUMENT", str(exc),
                           liveDeploymentRid=rid, errorMessage=str(exc)) from None
    if answer.status_code >= 400:
        message = f"the model answered {answer.status_code}: {answer.text[:500]}"
        raise FoundryError("InferenceFailure", "INVALID_ARGUMENT", message,
                           liveDeploymentRid=rid, errorMessage=message)
    try:
        output = answer.json()
    except ValueError:
        output = answer.text
    return {"output": output if isinstance(output, dict) else {"output": output}}


# Model reads. Registered after the live-deployment routes, so `liveDeployments` is never
# taken for a model RID. Preview is accepted, not required.

@router.get("/{model_rid}")
def get_model(model_rid: str, request: Request) -> dict[str, str]:
    return {"rid": _model(request, model_rid).key}


def _live_of_model(request: Request, model_rid: str,
                   branch: str | None = None) -> list[tuple[DialectRecord, Deployment]]:
    """The model's live deployments (on one branch if given); each is also a model version."""
    _model(request, model_rid)
    query: dict[str, Any] = {"modelRid": model_rid}
    if branch is not None:
        query["branch"] = branch
    records = state.dialect_records(request).find(DIALECT, LIVE_KIND, project=PROJECT, **query)
    out = []
    for record in records:
        try:
            out.append(_live(request, record.key))
        except FoundryError:
            continue
    return [(record, d) for d, record in out]


@router.get("/{model_rid}/versions")
def list_versions(model_rid: str, request: Request, branch: str | None = None,
                  page_size: Annotated[int, Query(alias="pageSize")] = 1000,
                  page_token: Annotated[str | None, Query(alias="pageToken")] = None,
                  ) -> dict[str, Any]:
    if page_size < 1:
        raise FoundryError("InvalidPageSize", "INVALID_ARGUMENT",
                           "pageSize must be greater than zero", pageSize=page_size)
    if page_token is not None and not page_token.isdigit():
        raise FoundryError("InvalidArgument", "INVALID_ARGUMENT",
                           "pageToken must be a nextPageToken from an earlier page")
    versions = [model_version(r.data["modelVersionRid"], r.created_at)
                for r, _ in _live_of_model(request, model_rid, branch)]
    start = int(page_token or 0)
    end = start + page_size
    page: dict[str, Any] = {"data": versions[start:end]}
    if end < len(versions):
        page["nextPageToken"] = str(end)
    return page


@router.get("/{model_rid}/versions/{version_rid}")
def get_version(model_rid: str, version_rid: str, request: Request) -> dict[str, Any]:
    for record, _ in _live_of_model(request, model_rid):
        if record.data["modelVersionRid"] == version_rid:
            return model_version(version_rid, record.created_at)
    raise version_not_found(model_rid, version_rid)
