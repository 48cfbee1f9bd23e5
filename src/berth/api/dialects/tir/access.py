"""Who may call TIR's control API: the bearer token, scoped to the Berth project `tir-T-P`
the route acts on (read for GET, write otherwise). Every control route module of the
dialect (endpoints, datasets) hangs off `gpu_router()`, so all check the same way."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from berth.api.auth import Authorization
from berth.api.body import api_router
from berth.api.dialects.tir.shapes import scope_project

GPU = "/myaccount/api/v1/gpu"
TEAM_PROJECT = "/teams/{team}/projects/{project}"


def _scope(request: Request) -> str | None:
    return scope_project(request.path_params)


# The bearer token, scoped to the Berth project the route acts on (`tir-T-P`, not the
# numeric TIR project): read for GET, write otherwise.
require_tir_token = Authorization(project=_scope, params=("team", "project"))


def gpu_router() -> APIRouter:
    """A router under TIR's control API prefix, authorized as its other routes."""
    return api_router(prefix=GPU, tags=["tir"], dependencies=[Depends(require_tir_token)])
