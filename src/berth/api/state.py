"""What the control API keeps on `app.state`, typed once for every route module."""

from __future__ import annotations

from typing import cast

import httpx
from fastapi import Request

from berth.api.relay import GatewayRelay
from berth.domain.platform import PlatformFacts
from berth.runtime.base import Runtime
from berth.services.api_keys import ApiKeyService
from berth.services.credentials import CredentialService
from berth.services.datasets import DatasetService
from berth.services.deployments import DeploymentService
from berth.services.dialect_records import DialectRecordService
from berth.services.invocations import InvocationService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService


def deployments(request: Request) -> DeploymentService:
    return cast(DeploymentService, request.app.state.deployments)


def tasks(request: Request) -> TaskService:
    return cast(TaskService, request.app.state.tasks)


def tokens(request: Request) -> TokenService:
    return cast(TokenService, request.app.state.tokens)


def api_keys(request: Request) -> ApiKeyService:
    return cast(ApiKeyService, request.app.state.api_keys)


def credentials(request: Request) -> CredentialService:
    return cast(CredentialService, request.app.state.credentials)


def dialect_records(request: Request) -> DialectRecordService:
    return cast(DialectRecordService, request.app.state.dialect_records)


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def facts(request: Request) -> PlatformFacts:
    return cast(PlatformFacts, request.app.state.facts)


def address(request: Request, project: str, name: str) -> str | None:
    """The gateway address of a deployment."""
    return cast("str | None", request.app.state.address(project, name))


def relay(request: Request) -> httpx.AsyncClient:
    """The pooled client that relays inference to the gateway (see berth.api.relay)."""
    return cast(GatewayRelay, request.app.state.relay).client()


def invocations(request: Request) -> InvocationService:
    return cast(InvocationService, request.app.state.invocations)


def datasets(request: Request) -> DatasetService:
    return cast(DatasetService, request.app.state.datasets)
