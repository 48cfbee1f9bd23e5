"""The control API in-process for dialect tests: the real app over a SQLite store in a
temporary directory, the fake runtime, and a relay that answers for the gateway."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from berth.api.app import create_app
from berth.domain.platform import Gpu
from berth.domain.records import Deployment
from berth.services.api_keys import ApiKeyService
from berth.services.credentials import CredentialService
from berth.services.deployments import DeploymentService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService
from berth.services.vault import Vault
from berth.store.engine import Store
from tests.fakes.builders import T0, facts
from tests.fakes.runtime import FakeRuntime

with warnings.catch_warnings():  # starlette prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GATEWAY = "http://gateway.test"


def echo_model(request: httpx.Request) -> httpx.Response:
    """The gateway and a model behind it: the body echoed, as an event stream when asked."""
    if "text/event-stream" in request.headers.get("accept", ""):
        return httpx.Response(200, content=b"data: {\"n\": 1}\n\ndata: [DONE]\n\n",
                              headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json={"echo": json.loads(request.content or b"null")})


class FakeRelay:
    """Stands in for `berth.api.relay.GatewayRelay`: every call goes to `handler`."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def client(self) -> httpx.AsyncClient:
        def seen(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.handler(request)
        return httpx.AsyncClient(transport=httpx.MockTransport(seen))


class DialectApp:
    def __init__(self, tmp: Path, *, gpus: tuple[Gpu, ...] = (),
                 raise_errors: bool = False) -> None:
        self.store = Store(f"sqlite:///{tmp / 'b.db'}")
        self.store.migrate()
        tokens = TokenService(self.store)
        tokens.ensure_admin_token(tmp / "admin-token", T0)
        self.token = (tmp / "admin-token").read_text().strip()
        self.app: FastAPI = create_app(
            deployments_service=DeploymentService(self.store, facts(gpus), lambda: T0),
            tasks=TaskService(self.store), tokens=tokens, runtime=FakeRuntime(),
            facts=facts(gpus), api_keys=ApiKeyService(self.store, lambda: T0),
            credentials=CredentialService(self.store, Vault(tmp / "credentials.key"),
                                          lambda: T0),
            address=lambda project, name: f"{GATEWAY}/{project}/{name}",
            data_dir=tmp / "data")
        self.relay = FakeRelay(echo_model)
        self.app.state.relay = self.relay
        self.http = TestClient(self.app, raise_server_exceptions=raise_errors)

    def deployments(self, project: str) -> list[Deployment]:
        service: DeploymentService = self.app.state.deployments
        items, _ = service.page(project, limit=None, offset=0, include_deleted=False)
        return items

    def close(self) -> None:
        self.http.close()
        self.store.close()
