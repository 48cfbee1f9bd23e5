"""The real control API app in-process: SQLite in a temp dir, the fake runtime, an admin token."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.app import create_app
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
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

__all__ = ["CREATE_ROUTES", "ApiEnv", "TestClient"]

# One create route per surface: the native API and each dialect.
CREATE_ROUTES = {
    "native": "/v1/projects/p/deployments",
    "gcore": "/cloud/v3/inference/7/deployments",
    "tir": "/myaccount/api/v1/gpu/teams/1/projects/2/serving/inference/",
    "scale": "/v5/models",
    "foundry": "/api/v2/models/liveDeployments?preview=true",
}


class ApiEnv:
    def __init__(self, tmp: Path, **app_options: Any) -> None:
        self.db = tmp / "b.db"
        self.store = Store(f"sqlite:///{self.db}")
        self.store.migrate()
        tokens = TokenService(self.store)
        tokens.ensure_admin_token(tmp / "admin-token", T0)
        self.token = (tmp / "admin-token").read_text().strip()
        self.app: FastAPI = create_app(
            deployments_service=DeploymentService(self.store, facts(), lambda: T0),
            tasks=TaskService(self.store), tokens=tokens, runtime=FakeRuntime(),
            facts=facts(), api_keys=ApiKeyService(self.store, lambda: T0),
            credentials=CredentialService(self.store, Vault(tmp / "credentials.key"),
                                          lambda: T0), **app_options)
        self.http = TestClient(self.app, headers={"Authorization": f"Bearer {self.token}"},
                               raise_server_exceptions=False)

    def project_client(self, name: str, projects: list[str]) -> TestClient:
        """A client holding a new control token limited to `projects`."""
        made = self.http.post("/v1/tokens", json={"name": name, "projects": projects})
        assert made.status_code == 201, made.text
        return TestClient(self.app, headers={"Authorization": f"Bearer {made.json()['secret']}"})

    def rows(self) -> dict[str, int]:
        """Rows per table: what a refused request must leave unchanged."""
        with sqlite3.connect(self.db) as db:
            tables = [name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}

    def close(self) -> None:
        self.http.close()
        self.store.close()
