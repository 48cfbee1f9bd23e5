"""E2E Networks TIR's model endpoints ("serving/inference"), translated onto Berth's services,
and TIR's model API (inference, in `model_api`).

The SDK sends `?apikey=…&location=…` beside `Authorization: Bearer <token>`; the bearer
token is checked (its scope against the Berth project `tir-{team}-{project}` the route acts
on: read for GET, write otherwise), the query parameters (and the seed's project_id,
active_iam) are accepted and ignored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from berth.api import state
from berth.api.auth import platform_fact
from berth.api.body import JsonBody, api_router
from berth.api.dialects.tir import async_status, datasets, model_api, requests, shapes
from berth.api.dialects.tir.access import TEAM_PROJECT, gpu_router
from berth.api.dialects.tir.models import EndpointAction, EndpointCreate, parse, request_body
from berth.api.dialects.tir.shapes import DIALECT, KIND, berth_project, envelope
from berth.domain.errors import BerthError, NotFound, SpecInvalid
from berth.domain.records import Deployment, Task
from berth.domain.status import DeploymentStatus
from berth.invocations import rules
from berth.services.dialect_records import RecordChange, RecordDelete, RecordWrite
from berth.store.dialect_records import DialectRecord
from berth.store.invocations import Invocation

PREFIX = ("/myaccount/api/v1/gpu/", model_api.PREFIX)  # control API, model API


gpu = gpu_router()
INFERENCE = TEAM_PROJECT + "/serving/inference"
ONE = INFERENCE + "/{inference_id}"
Json = dict[str, Any]


def render_error(exc: BerthError) -> JSONResponse:
    """TIR's envelope: {code, data, message, errors}, with the HTTP status in `code`."""
    status = 400 if exc.status == 422 else exc.status
    errors: Any = exc.message
    if isinstance(exc, SpecInvalid):
        errors = {v.field: [f"{v.message} ({v.rule})"] for v in exc.violations}
    return JSONResponse({"code": status, "data": {}, "message": exc.message,
                         "errors": errors}, status_code=status)


def _record(request: Request, team: int, project: int, inference_id: int) -> DialectRecord:
    rec = state.dialect_records(request).get(DIALECT, KIND, str(inference_id))
    if rec is None or rec.project != berth_project(team, project):
        raise NotFound(f"model endpoint {inference_id} not found")
    return rec


def _merged(rec: DialectRecord, **data: Any) -> DialectRecord:
    return DialectRecord(rec.dialect, rec.kind, rec.key, rec.project, rec.data | data,
                         rec.created_at)


def _write(rec: DialectRecord) -> list[RecordChange]:
    """The record's new data, to write in the same transaction as the change."""
    return [RecordWrite(rec.dialect, rec.kind, rec.data, key=rec.key, project=rec.project,
                        created_at=rec.created_at)]


def _live(request: Request, rec: DialectRecord) -> Deployment:
    try:
        d = state.deployments(request).get(rec.project, rec.data["name"])
    except NotFound:
        d = None
    if d is None or d.id != rec.data["deployment_id"] or d.status == DeploymentStatus.DELETED:
        raise NotFound(f"model endpoint {rec.key} not found")
    return d


def _dataset_numbers(request: Request, project: str) -> dict[str, int]:
    return {ds.name: ds.id for ds in state.datasets(request).of_project(project)}


def _shape(request: Request, rec: DialectRecord, d: Deployment) -> Json:
    cfg = d.spec.async_
    number = None
    if cfg.enabled or cfg.dataset is not None:
        number = _dataset_numbers(request, d.project).get(rules.dataset_name(cfg))
    return shapes.to_tir(int(rec.key), d, rec.data, state.facts(request),
                         state.address(request, d.project, d.name), number)


@gpu.get("/gpu_service/sku/")
@platform_fact
def sku_list(request: Request, service: str = "inference_service",
             framework: str | None = None) -> Json:
    return envelope(shapes.skus(state.facts(request)))


@gpu.post(INFERENCE + "/", openapi_extra=request_body(EndpointCreate))
def create(team: int, project: int, request: Request, body: JsonBody) -> Json:
    req = parse(EndpointCreate, body)
    data = requests.create_to_native(req, state.facts(request))
    kept = requests.kept(req) | {"is_auto_scale_enabled": bool(req.is_auto_scale_enabled)}

    def record(d: Deployment, task: Task) -> Json:
        return kept | {"name": d.name, "deployment_id": d.id, "task_id": task.id}

    # The numbered record is written in the create's own transaction: never one without other.
    try:
        change = state.deployments(request).create(berth_project(team, project), data,
                                                   records=[RecordWrite(DIALECT, KIND, record)])
    except SpecInvalid as exc:
        raise requests.in_tir_terms(exc) from None
    d, rec = change.deployment, change.records[0]
    return envelope(_shape(request, rec, d), "Model endpoint created successfully")


@gpu.get(INFERENCE + "/")
def list_(team: int, project: int, request: Request) -> Json:
    records = state.dialect_records(request).find(DIALECT, KIND,
                                                  project=berth_project(team, project))
    out = []
    for rec in records:
        try:
            out.append(_shape(request, rec, _live(request, rec)))
        except NotFound:
            continue
    return envelope(out)


@gpu.get(ONE + "/")
def get(team: int, project: int, inference_id: int, request: Request) -> Json:
    rec = _record(request, team, project, inference_id)
    return envelope(_shape(request, rec, _live(request, rec)))


@gpu.delete(ONE + "/")
def delete(team: int, project: int, inference_id: int, request: Request) -> Json:
    rec = _record(request, team, project, inference_id)
    d = _live(request, rec)
    state.deployments(request).delete(d.project, d.name,
                                      records=[RecordDelete(DIALECT, KIND, rec.key)])
    return envelope({"id": inference_id, "name": d.name},
                    "Model endpoint deleted successfully")


MESSAGES = {"start": "Model Endpoint started successfully",
            "stop": "Model Endpoint stopped successfully",
            "restart": "Model Endpoint restarted successfully",
            "patch": "Model Endpoint updated successfully",
            "update_auto_scale": "Auto scale policy updated successfully",
            "disable_auto_scale": "Auto scale disabled successfully",
            "update_async_configuration": "Async configuration updated successfully"}


@gpu.put(ONE + "/", openapi_extra=request_body(EndpointAction))
def act(team: int, project: int, inference_id: int, request: Request, body: JsonBody) -> Json:
    req = parse(EndpointAction, body)
    rec = _record(request, team, project, inference_id)
    d = _live(request, rec)
    svc, p, name, action = state.deployments(request), d.project, d.name, req.action
    if action in ("start", "stop", "restart"):
        d = getattr(svc, action)(p, name).deployment
    elif action == "patch":
        native = requests.patch_to_native(req, d.spec, state.facts(request))
        extra = requests.kept(req)
        if req.is_auto_scale_enabled is not None and (
                not req.is_auto_scale_enabled or req.auto_scale_policy is not None):
            extra["is_auto_scale_enabled"] = req.is_auto_scale_enabled
        rec = _merged(rec, **extra)
        if native:
            try:
                d = svc.patch(p, name, native, records=_write(rec)).deployment
            except SpecInvalid as exc:
                raise requests.in_tir_terms(exc) from None
        else:
            state.dialect_records(request).put([rec])
    elif action == "update_auto_scale":
        rec = _merged(rec, is_auto_scale_enabled=True)
        d = svc.patch(p, name, requests.scale(req.auto_scale_policy, autoscale=True),
                      records=_write(rec)).deployment
    elif action == "disable_auto_scale":
        count = requests.replica_count(req)
        if count is None:
            count = d.spec.containers[0].scale.min or 1
        rec = _merged(rec, is_auto_scale_enabled=False)
        d = svc.patch(p, name, requests.scale(None, autoscale=False, replicas=count),
                      records=_write(rec)).deployment
    else:
        d = _configure_async(request, rec, d, req)
    return envelope(_shape(request, rec, d), MESSAGES[action])


def _configure_async(request: Request, rec: DialectRecord, d: Deployment,
                     req: EndpointAction) -> Deployment:
    """`update_async_configuration`: the native spec's `async`, patched; the dataset the
    body numbers is looked up first (unknown: a 400 naming async_dataset_id)."""
    dataset = None
    number = requests.async_dataset_number(req) if req.async_enabled else None
    if number is not None:
        try:
            dataset = state.datasets(request).by_id(d.project, number).name
        except NotFound:
            raise requests.bad("async_dataset_id", "known_dataset", f"no dataset {number} in "
                               "this project (GET …/datasets/)") from None
    patch = requests.async_patch(req, d.spec.async_, dataset, int(rec.key))
    kept = {k: v for k, v in rec.data.items() if k != "async"}  # the spec holds it now
    rec = DialectRecord(rec.dialect, rec.kind, rec.key, rec.project, kept, rec.created_at)
    try:
        return state.deployments(request).patch(d.project, d.name, patch,
                                                records=_write(rec)).deployment
    except SpecInvalid as exc:
        raise requests.in_tir_terms(exc) from None


@gpu.get(ONE + "/logs/")
async def logs(team: int, project: int, inference_id: int, request: Request,
               limit: int = 500) -> Json:
    rec = await run_in_threadpool(_record, request, team, project, inference_id)
    d = await run_in_threadpool(_live, request, rec)
    runtime = state.runtime(request)
    lines = await run_in_threadpool(runtime.logs, d.id, limit=max(1, min(limit, 5000)))
    return envelope([{"pod_name": ln.replica_id, "stream": ln.stream, "message": ln.line,
                      "timestamp": datetime.fromtimestamp(ln.ts, UTC).isoformat()
                      .replace("+00:00", "Z")} for ln in lines])


@gpu.get(ONE + "/replicas/")
def replicas(team: int, project: int, inference_id: int, request: Request) -> Json:
    rec = _record(request, team, project, inference_id)
    d = _live(request, rec)
    _, items = state.deployments(request).replicas(d.project, d.name)
    return envelope([
        {"pod_name": r.id, "replica_name": r.id, "status": r.state.value.title(),
         "ready": r.ready, "restart_count": r.restarts, "reason": r.reason,
         "created_at": r.created_at.isoformat().replace("+00:00", "Z")}
        for r in items if r.state.value != "STOPPED"])


@gpu.delete(ONE + "/replicas/{replica_name}/")
def restart_replica(team: int, project: int, inference_id: int, replica_name: str,
                    request: Request) -> Json:
    """Replaces that replica alone: a new one starts, then the named one drains."""
    rec = _record(request, team, project, inference_id)
    d = _live(request, rec)
    state.deployments(request).restart_replica(d.project, d.name, replica_name)
    return envelope({"replica_name": replica_name}, "Replica restarted successfully")


@gpu.get(ONE + "/async_status/")
def async_requests(team: int, project: int, inference_id: int, request: Request,
                   request_id: str | None = None, date_filter: str | None = None,
                   page_no: str | None = None, per_page: str | None = None,
                   queue_name: str | None = None) -> Json:
    """One request (`request_id`: a list of it, empty when unknown), or a page of them."""
    rec = _record(request, team, project, inference_id)
    d = _live(request, rec)
    invocations = state.invocations(request)
    if request_id is not None and request_id.strip():
        try:
            found = [invocations.get(d.project, d.name, request_id.strip())]
        except NotFound:
            found = []
        return envelope(_items(request, d, found))
    q = async_status.list_query(invocations.clock(), date_filter, page_no, per_page,
                                queue_name)
    page = invocations.page(d.project, d.name, since=q.since, until=q.until,
                            offset=q.offset, limit=q.limit, route=q.route)
    return envelope(_items(request, d, page.items)) | {
        "total_count": page.total, "total_page_number": math.ceil(page.total / q.limit)}


def _items(request: Request, d: Deployment, found: list[Invocation]) -> list[Json]:
    cfg = d.spec.async_
    numbers = _dataset_numbers(request, d.project) if found else {}
    return [async_status.item(
        inv, inv.result_path or rules.result_path(cfg, d.name, inv.id),
        numbers.get(inv.dataset or rules.dataset_name(cfg))) for inv in found]


router = api_router()  # what the app mounts: the control API, datasets and the model API
router.include_router(gpu)
router.include_router(datasets.router)
router.include_router(model_api.router)
