"""Log files are read off the API's event loop (a read of 100,000 lines would stall every
other request): the runtime's `logs` is called in a worker thread by each logs route."""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from berth.api.app import create_app
from berth.runtime.base import LogLine
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


class ThreadNotingRuntime(FakeRuntime):
    """Records, for each logs call, whether an event loop runs in the calling thread."""

    def __init__(self) -> None:
        super().__init__()
        self.on_loop: list[bool] = []
        self.threads: set[int] = set()

    def logs(self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
             replica_id: str | None = None) -> list[LogLine]:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        self.threads.add(threading.get_ident())
        return [LogLine(ts=1.0 + len(self.on_loop), replica_id="r1", stream="stdout",
                        line="hello")]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, ThreadNotingRuntime]]:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.migrate()
    tokens = TokenService(store)
    tokens.ensure_admin_token(tmp_path / "admin-token", T0)
    token = (tmp_path / "admin-token").read_text().strip()
    runtime = ThreadNotingRuntime()
    app = create_app(
        deployments_service=DeploymentService(store, facts(), lambda: T0),
        tasks=TaskService(store), tokens=tokens, runtime=runtime, facts=facts(),
        api_keys=ApiKeyService(store, lambda: T0),
        credentials=CredentialService(store, Vault(tmp_path / "credentials.key"), lambda: T0))
    http = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    with http:
        for project in ("team", "7"):
            r = http.post(f"/v1/projects/{project}/deployments",
                          json={"name": "echo", "image": "catalog/echo"})
            assert r.status_code == 202, r.text
        yield http, runtime
    store.close()


def test_native_logs_are_read_in_a_worker_thread(
        env: tuple[TestClient, ThreadNotingRuntime]) -> None:
    http, runtime = env
    r = http.get("/v1/projects/team/deployments/echo/logs", params={"limit": 100000})
    assert r.status_code == 200 and r.json()["items"][0]["line"] == "hello"
    assert runtime.on_loop == [False]
    assert threading.get_ident() not in runtime.threads


def test_followed_logs_are_read_in_a_worker_thread(
        env: tuple[TestClient, ThreadNotingRuntime]) -> None:
    http, runtime = env
    seen = 0
    with http.stream("GET", "/v1/projects/team/deployments/echo/logs",
                     params={"follow": "true"}) as response:
        for raw in response.iter_lines():
            if raw:
                assert json.loads(raw)["line"] == "hello"
                seen += 1
            if seen == 3:  # the first read, then two polls
                break
    assert len(runtime.on_loop) >= 3 and not any(runtime.on_loop)


def test_gcore_logs_are_read_in_a_worker_thread(
        env: tuple[TestClient, ThreadNotingRuntime]) -> None:
    http, runtime = env
    r = http.get("/cloud/v3/inference/7/deployments/echo/logs")
    assert r.status_code == 200 and r.json()["results"][0]["message"] == "hello"
    assert runtime.on_loop == [False]
