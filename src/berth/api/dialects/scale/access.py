"""Who may call the Scale dialect, in which project, and which Berth deployment a Scale
model name reaches."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from berth.api import state
from berth.api.auth import Authorization, token_from
from berth.api.dialects.scale.shapes import DIALECT, KIND
from berth.domain.errors import BerthError, NotFound, SpecInvalid, Unauthorized, Violation
from berth.domain.records import Deployment
from berth.services.deployments import check_project
from berth.store.dialect_records import DialectRecord

LAUNCH = "launch"


class Upstream(BerthError):
    code = "upstream_error"
    status = 502
    should_retry: bool | None = None  # None: as the status says (5xx: the SDK may retry)


def project(request: Request) -> str:
    """The Berth project: `x-selected-account-id`, else `default`."""
    name = request.headers.get("x-selected-account-id") or "default"
    check_project(name)
    return name


def _credentials(request: Request) -> str:
    token = request.headers.get("x-api-key") or token_from(request)
    if not token:
        raise Unauthorized("missing credentials: send 'x-api-key: <token>' "
                           "(a Berth control token)")
    return token


# Scale sends `x-api-key: <token>`; a Berth control token is accepted there, within its
# scope (the project is `x-selected-account-id`, on every route).
require_api_key = Authorization(project=project, params=None, credentials=_credentials)


def find_models(request: Request, in_project: str, **data: Any) -> list[DialectRecord]:
    return state.dialect_records(request).find(DIALECT, KIND, project=in_project, **data)


def deployment_of(request: Request, rec: DialectRecord) -> Deployment | None:
    name = rec.data.get("deployment")
    if not name:
        return None
    try:
        return state.deployments(request).get(rec.project, name)
    except NotFound:
        return None


def launch_name(model: str) -> str:
    """The Scale model name in `launch/<name>` (a bare `<name>` is taken as launch's)."""
    if not model:
        raise SpecInvalid([Violation("model", "required", "'launch/<name>' is required")])
    vendor, slash, name = model.partition("/")
    if not slash:
        return model
    if vendor != LAUNCH or not name:
        raise SpecInvalid([Violation("model", "unsupported", "Berth serves launch models: "
                                     f"send 'launch/<name>', not {model!r}")])
    return name


def target(request: Request, model: str) -> tuple[Deployment, str, str]:
    """The deployment a launch model name reaches, its gateway address, and the name."""
    in_project = project(request)
    name = launch_name(model)
    found = find_models(request, in_project, name=name, model_vendor=LAUNCH)
    d = deployment_of(request, found[0]) if found else None
    if d is None:
        raise NotFound(f"model {model!r} not found")
    address: str | None = state.address(request, in_project, d.name)
    if address is None:
        raise Upstream(f"model {model!r} has no gateway address on this server")
    return d, address, name
