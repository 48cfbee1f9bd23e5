"""The control API application: native v1 (dialects mount beside it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI

from berth import __version__
from berth.api.auth import public, require_token
from berth.api.dialects import load_dialects
from berth.api.errors import install_error_handlers
from berth.api.relay import GatewayRelay
from berth.api.v1 import api_keys as api_keys_routes
from berth.api.v1 import credentials as credentials_routes
from berth.api.v1 import deployments, platform
from berth.api.v1 import tokens as tokens_routes
from berth.domain.platform import PlatformFacts
from berth.domain.spec import DeploymentSpec
from berth.runtime.base import Runtime
from berth.services.api_keys import ApiKeyService
from berth.services.credentials import CredentialService
from berth.services.deployments import DeploymentService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService


def create_app(
    *, deployments_service: DeploymentService, tasks: TaskService, tokens: TokenService,
    runtime: Runtime, facts: PlatformFacts, api_keys: ApiKeyService,
    credentials: CredentialService,
    address: Callable[[str, str], str | None] = lambda _project, _name: None,
) -> FastAPI:
    app = FastAPI(title="Berth", version=__version__,
                  description="Self-hosted model inference endpoints: the control API.")
    app.state.deployments = deployments_service
    app.state.tasks = tasks
    app.state.tokens = tokens
    app.state.runtime = runtime
    app.state.facts = facts
    app.state.api_keys = api_keys
    app.state.credentials = credentials
    app.state.address = address
    app.state.relay = GatewayRelay()
    install_error_handlers(app)
    auth = [Depends(require_token)]
    app.include_router(deployments.router, dependencies=auth)
    app.include_router(platform.router, dependencies=auth)
    app.include_router(api_keys_routes.router, dependencies=auth)
    app.include_router(credentials_routes.registries, dependencies=auth)
    app.include_router(credentials_routes.secrets, dependencies=auth)
    app.include_router(tokens_routes.router)
    for dialect in load_dialects():
        app.include_router(dialect.router)
        app.state.error_renderers.append((dialect.PREFIX, dialect.render_error))

    @app.get("/healthz", include_in_schema=False, dependencies=[Depends(public)])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            spec = DeploymentSpec.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(spec.pop("$defs", {}))
            components["DeploymentSpec"] = spec
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
