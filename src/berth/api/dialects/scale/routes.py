"""Scale GP's models (v5), translated onto Berth's services; inference lives in
`inference` and is mounted on this router."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from berth.api import state
from berth.api.body import JsonBody, api_router
from berth.api.dialects.request_schema import parse, request_body
from berth.api.dialects.scale import access, inference
from berth.api.dialects.scale.models import CREATE, PATCH, LaunchVendorConfiguration
from berth.api.dialects.scale.shapes import (
    DIALECT,
    KIND,
    VC,
    in_scale_terms,
    merge_config,
    page,
    parse_create,
    record_data,
    stored_config,
    to_native,
    to_scale,
)
from berth.domain.errors import BerthError, Conflict, NotFound, SpecInvalid, Violation
from berth.services.dialect_records import RecordDelete, RecordWrite
from berth.store.dialect_records import DialectRecord

USER = "berth"  # Berth's control tokens are not users; every model shows this creator
QUERY_FIELDS = ("starting_after", "ending_before", "limit", "sort_by", "sort_order")


PREFIX = "/v5/"
router = api_router(prefix="/v5", tags=["scale"],
                   dependencies=[Depends(access.require_api_key)])


def render_error(exc: BerthError) -> JSONResponse:
    """Scale's (FastAPI's) shape: `{"detail": message}`, or a list of located errors."""
    detail: Any = exc.message
    if isinstance(exc, SpecInvalid):
        detail = [{"loc": ["query" if v.field in QUERY_FIELDS else "body",
                           *v.field.replace("[", ".").replace("]", "").split(".")],
                   "msg": v.message, "type": v.rule} for v in exc.violations]
    retry = getattr(exc, "should_retry", None)
    if retry is None:
        retry = exc.status >= 500
    headers = {} if retry else {"x-should-retry": "false"}
    return JSONResponse({"detail": detail}, status_code=exc.status, headers=headers)


def _region(request: Request) -> str:
    facts = state.facts(request)
    return next(iter(facts.regions), "local")


def _model(request: Request, project: str, model_id: str) -> DialectRecord:
    rec = state.dialect_records(request).get(DIALECT, KIND, model_id)
    if rec is None or rec.project != project:
        raise NotFound(f"model {model_id!r} not found")
    return rec


def _shape(request: Request, rec: DialectRecord) -> dict[str, Any]:
    return to_scale(rec.key, rec.created_at, rec.data, access.deployment_of(request, rec),
                    state.deployments(request).clock())


def _put(request: Request, *records: DialectRecord) -> None:
    """Records that change with no deployment change (a model with no deployment)."""
    state.dialect_records(request).put(records)


def _deploy(request: Request, rec_data: dict[str, Any], project: str,
            vc: LaunchVendorConfiguration, *records: DialectRecord) -> None:
    """Create or replace the model's deployment so that it runs this configuration, writing
    the model's records in the same transaction (a refused change writes none)."""
    name = rec_data["deployment"]
    svc = state.deployments(request)
    try:
        current = svc.get(project, name).spec
    except NotFound:
        current = None
    native = to_native(name, rec_data["name"], vc, _region(request), current)
    writes = [RecordWrite(r.dialect, r.kind, r.data, key=r.key, project=r.project,
                          created_at=r.created_at) for r in records]
    try:
        try:
            svc.replace(project, name, native, records=writes)
        except NotFound:
            svc.create(project, native, records=writes)
    except SpecInvalid as exc:
        raise in_scale_terms(exc) from None


@router.post("/models", openapi_extra=request_body(CREATE))
def create(request: Request, body: JsonBody) -> dict[str, Any]:
    project = access.project(request)
    created = parse_create(body)
    data = record_data(created)
    vc = created.vendor_configuration
    same = access.find_models(request, project, name=created.name)
    if same:
        if created.on_conflict != "update":
            raise Conflict(f"a model named {created.name!r} already exists "
                           "(send on_conflict='update' to update it)", name=created.name)
        rec = same[0]
        if rec.data["model_vendor"] != created.model_vendor:
            raise SpecInvalid([Violation("model_vendor", "immutable", "the existing model is "
                                         f"served by {rec.data['model_vendor']}")])
        new = {**rec.data, **{k: data[k] for k in ("model_type", "model_metadata", VC)}}
        updated = DialectRecord(DIALECT, KIND, rec.key, project, new, rec.created_at)
        if vc is not None:
            _deploy(request, new, project, vc, updated)
        else:
            _put(request, updated)
        return _shape(request, updated)
    model_id = str(uuid.uuid4())
    data.update(created_by_user_id=USER, deployment=None)
    if vc is not None:
        data["deployment"] = "sgp-" + model_id.replace("-", "")[:12]
    rec = DialectRecord(DIALECT, KIND, model_id, project, data, state.deployments(request).clock())
    if vc is not None:
        _deploy(request, data, project, vc, rec)
    else:
        _put(request, rec)
    return _shape(request, rec)


@router.get("/models")
def list_(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          starting_after: str | None = None, ending_before: str | None = None,
          name: str | None = None, model_vendor: str | None = None,
          sort_by: Literal["created_at", "name", "id"] = "created_at",
          sort_order: Literal["asc", "desc"] = "asc") -> dict[str, Any]:
    project = access.project(request)
    filters = {k: v for k, v in (("name", name), ("model_vendor", model_vendor)) if v}
    recs = access.find_models(request, project, **filters)
    key = {"created_at": lambda r: (r.created_at, r.key), "name": lambda r: (r.data["name"],),
           "id": lambda r: (r.key,)}[sort_by]
    recs.sort(key=key, reverse=sort_order == "desc")
    chosen, more = page([{"id": r.key, "rec": r} for r in recs], limit, starting_after,
                        ending_before)
    return {"items": [_shape(request, c["rec"]) for c in chosen], "has_more": more,
            "object": "list", "limit": limit, "total": len(recs)}


@router.get("/models/{model_id}")
def get(model_id: str, request: Request) -> dict[str, Any]:
    return _shape(request, _model(request, access.project(request), model_id))


@router.patch("/models/{model_id}", openapi_extra=request_body(PATCH))
def update(model_id: str, request: Request, body: JsonBody) -> dict[str, Any]:
    project = access.project(request)
    rec = _model(request, project, model_id)
    patch = parse(PATCH, body)
    data = dict(rec.data)
    changed: list[DialectRecord] = []
    vc: LaunchVendorConfiguration | None = None
    if patch.name is not None:
        changed += _rename(request, rec, data, patch.name, patch.on_conflict)
    if patch.model_metadata is not None:
        data["model_metadata"] = patch.model_metadata
    if patch.vendor_configuration is not None:
        if data[VC] is None:
            raise SpecInvalid([Violation(VC, "not_applicable", f"{data['model_vendor']} "
                                         "models have no vendor_configuration")])
        vc = merge_config(data[VC], patch.vendor_configuration)
        data[VC] = stored_config(vc)
    updated = DialectRecord(DIALECT, KIND, rec.key, project, data, rec.created_at)
    if vc is not None:
        _deploy(request, data, project, vc, updated, *changed)
    else:
        _put(request, updated, *changed)
    return _shape(request, updated)


def _rename(request: Request, rec: DialectRecord, data: dict[str, Any], new: str,
            on_conflict: str) -> list[DialectRecord]:
    others = [r for r in access.find_models(request, rec.project, name=new) if r.key != rec.key]
    data["name"] = new
    if not others:
        return []
    if on_conflict != "swap":
        raise Conflict(f"a model named {new!r} already exists (send on_conflict='swap' "
                       "to swap the two names)", name=new)
    other = others[0]
    return [DialectRecord(DIALECT, KIND, other.key, other.project,
                          {**other.data, "name": rec.data["name"]}, other.created_at)]


@router.delete("/models/{model_id}")
def delete(model_id: str, request: Request) -> dict[str, Any]:
    project = access.project(request)
    rec = _model(request, project, model_id)
    if rec.data.get("deployment"):
        try:  # the record goes with the deployment's delete, in its transaction
            state.deployments(request).delete(project, rec.data["deployment"],
                                              records=[RecordDelete(DIALECT, KIND, model_id)])
            return {"id": model_id, "deleted": True, "object": "model"}
        except (NotFound, Conflict):  # already gone, or going
            pass
    state.dialect_records(request).delete(DIALECT, KIND, model_id)
    return {"id": model_id, "deleted": True, "object": "model"}


router.include_router(inference.router)
