"""/docs and /redoc load nothing from outside: their scripts, styles and icon are Berth's."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
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


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.migrate()
    app = create_app(
        deployments_service=DeploymentService(store, facts(), lambda: T0),
        tasks=TaskService(store), tokens=TokenService(store), runtime=FakeRuntime(),
        facts=facts(), api_keys=ApiKeyService(store, lambda: T0),
        credentials=CredentialService(store, Vault(tmp_path / "credentials.key"), lambda: T0))
    with TestClient(app) as client:  # no token: the docs are public, as before
        yield client
    store.close()


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
    ("/redoc", {"redoc.standalone.js", "favicon.png"}),
])
def test_docs_pages_reference_only_assets_berth_serves(http: TestClient, page: str,
                                                       assets: set[str]) -> None:
    r = http.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:)?//", r.text), r.text
    assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text
    urls = set(re.findall(r"(?:src|href)\s*=\s*['\"]([^'\"]+)['\"]", r.text))
    urls |= set(re.findall(r"url\s*:\s*['\"]([^'\"]+)['\"]", r.text))  # the spec Swagger reads
    local = {u for u in urls if u.startswith("/docs/static/")}
    assert {u.rsplit("/", 1)[1] for u in local} == assets
    for url in local:
        asset = http.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert http.get("/openapi.json").status_code == 200


def test_the_swagger_ui_bundle_reads_openapi_3_1(http: TestClient) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders only from version 5 on."""
    assert http.get("/openapi.json").json()["openapi"].startswith("3.1")
    r = http.get("/docs/static/swagger-ui-bundle.js")
    assert "javascript" in r.headers["content-type"]
    assert "SwaggerUIBundle" in r.text[:2000] and "openapi+json;version=3.1" in r.text
    assert http.get("/docs/oauth2-redirect").status_code == 200
