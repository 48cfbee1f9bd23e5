"""The control API application: native v1 (dialects mount beside it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from berth import __version__
from berth.api.auth import public, require_token
from berth.api.body import DEFAULT_MAX_BODY_BYTES, CheckedRoute, unchecked_body_routes
from berth.api.dialects import load_dialects
from berth.api.errors import install_error_handlers
from berth.api.openapi import add_error_answers
from berth.api.relay import GatewayRelay
from berth.api.v1 import api_keys as api_keys_routes
from berth.api.v1 import credentials as credentials_routes
from berth.api.v1 import datasets as datasets_routes
from berth.api.v1 import deployments, platform
from berth.api.v1 import invocations as invocations_routes
from berth.api.v1 import tokens as tokens_routes
from berth.domain.platform import PlatformFacts
from berth.domain.spec import DeploymentSpec
from berth.runtime.base import Runtime
from berth.services.api_keys import ApiKeyService
from berth.services.credentials import CredentialService
from berth.services.datasets import DatasetService
from berth.services.deployments import DeploymentService
from berth.services.dialect_records import DialectRecordService
from berth.services.invocations import InvocationService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService


def create_app(
    *, deployments_service: DeploymentService, tasks: TaskService, tokens: TokenService,
    runtime: Runtime, facts: PlatformFacts, api_keys: ApiKeyService,
    credentials: CredentialService,
    dialect_records: DialectRecordService | None = None,
    address: Callable[[str, str], str | None] = lambda _project, _name: None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    data_dir: Path = Path(".berth"),
    invocations: InvocationService | None = None,
    datasets: DatasetService | None = None,
) -> FastAPI:
    app = FastAPI(title="Berth", version=__version__,
                  description="Self-hosted model inference endpoints: the control API.",
                  docs_url=None, redoc_url=None)  # served below, from local assets
    app.state.deployments = deployments_service
    app.state.tasks = tasks
    app.state.tokens = tokens
    app.state.runtime = runtime
    app.state.facts = facts
    app.state.api_keys = api_keys
    app.state.credentials = credentials
    app.state.dialect_records = dialect_records or DialectRecordService(
        deployments_service.store, deployments_service.clock)
    app.state.address = address
    app.state.invocations = invocations or InvocationService(
        deployments_service.store, data_dir, time.time)
    app.state.datasets = datasets or DatasetService(
        deployments_service.store, data_dir, deployments_service.clock)
    app.state.relay = GatewayRelay()
    app.router.route_class = CheckedRoute
    app.state.max_body_bytes = max_body_bytes
    install_error_handlers(app)
    auth = [Depends(require_token)]
    app.include_router(deployments.router, dependencies=auth)
    app.include_router(invocations_routes.router, dependencies=auth)
    app.include_router(datasets_routes.router, dependencies=auth)
    app.include_router(platform.router, dependencies=auth)
    app.include_router(api_keys_routes.router, dependencies=auth)
    app.include_router(credentials_routes.registries, dependencies=auth)
    app.include_router(credentials_routes.secrets, dependencies=auth)
    app.include_router(tokens_routes.router)
    dialect_prefixes: list[tuple[str, tuple[str, ...]]] = []
    for dialect in load_dialects():
        app.include_router(dialect.router)
        app.state.error_renderers.append((dialect.PREFIX, dialect.render_error))
        prefixes = dialect.PREFIX if isinstance(dialect.PREFIX, tuple) else (dialect.PREFIX,)
        dialect_prefixes.append((dialect.__name__.split(".")[-2], prefixes))
    unchecked = unchecked_body_routes(app.routes)
    if unchecked:
        raise RuntimeError(f"routes that read a body without the shared reader: {unchecked}; "
                           "make their router with berth.api.body.api_router()")

    @app.get("/healthz", include_in_schema=False, dependencies=[Depends(public)])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    install_docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            spec = DeploymentSpec.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(spec.pop("$defs", {}))
            components["DeploymentSpec"] = spec
            add_error_answers(schema, app.routes, dialect_prefixes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"  # Swagger UI, ReDoc, favicon
DOCS_STATIC = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their scripts and styles served by Berth itself,
    not from a CDN: the pages work on a machine with no internet access."""
    app.mount(DOCS_STATIC, StaticFiles(directory=DOCS_ASSETS), name="docs-static")
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(public)])
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Berth API - Swagger UI",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png")

    @app.get(oauth2_redirect, include_in_schema=False, dependencies=[Depends(public)])
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(public)])
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="Berth API - ReDoc",
                              redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
                              with_google_fonts=False)
