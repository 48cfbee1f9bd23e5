"""Each dialect's records commit with the deployment change they belong to: a record write
that fails leaves no deployment behind, through the real app (a monkeypatched failure)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.api.dialects.foundry.shapes import BRANCH_KIND, DIALECT, LIVE_KIND
from berth.domain.records import Deployment
from berth.store.deployments import DeploymentRepo
from berth.store.dialect_records import DialectRecord, DialectRecordRepo
from tests.integration.dialects.test_fuzz_foundry import CONFIG, LIVE, MODEL
from tests.integration.dialects.test_fuzz_scale import LAUNCH
from tests.unit.dialects.dialect_app import DialectApp


@pytest.fixture
def env(tmp_path: Path) -> Iterator[DialectApp]:
    e = DialectApp(tmp_path)
    yield e
    e.close()


def _failing_record_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: DialectRecordRepo, r: DialectRecord) -> None:
        raise RuntimeError("record write failed")
    monkeypatch.setattr(DialectRecordRepo, "put", fail)


def test_scale_model_create_whose_record_fails_leaves_no_deployment(
        env: DialectApp, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"x-api-key": env.token, "x-selected-account-id": "sc"}
    _failing_record_writes(monkeypatch)
    assert env.http.post("/v5/models", json=LAUNCH, headers=headers).status_code == 500
    assert env.deployments("sc") == []
    monkeypatch.undo()
    created = env.http.post("/v5/models", json=LAUNCH, headers=headers)
    assert created.status_code == 200, created.text
    assert len(env.deployments("sc")) == 1


def test_scale_model_delete_removes_record_with_the_deployment(env: DialectApp) -> None:
    headers = {"x-api-key": env.token, "x-selected-account-id": "sc"}
    model_id = env.http.post("/v5/models", json=LAUNCH, headers=headers).json()["id"]
    assert env.http.delete(f"/v5/models/{model_id}", headers=headers).status_code == 200
    assert env.http.get(f"/v5/models/{model_id}", headers=headers).status_code == 404
    again = env.http.post("/v5/models", json=LAUNCH | {"on_conflict": "error"}, headers=headers)
    assert again.status_code == 200, again.text


def test_foundry_live_create_that_fails_leaves_no_record_and_no_branch_lock(
        env: DialectApp, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"authorization": f"Bearer {env.token}"}
    model = env.http.post("/api/v2/models", json=MODEL, headers=headers).json()["rid"]

    def fail(self: DeploymentRepo, d: Deployment) -> None:
        raise RuntimeError("deployment insert failed")
    monkeypatch.setattr(DeploymentRepo, "insert", fail)
    body = {"deploymentType": {"type": "direct", "modelRid": model, "branch": "master"},
            "runtimeConfiguration": CONFIG}
    assert env.http.post(f"{LIVE}?preview=true", json=body, headers=headers).status_code == 500
    with env.store.read() as tx:
        assert tx.dialect_records.find(DIALECT, LIVE_KIND) == []
        assert tx.dialect_records.find(DIALECT, BRANCH_KIND) == []
    monkeypatch.undo()
    created = env.http.post(f"{LIVE}?preview=true", json=body, headers=headers)
    assert created.status_code == 200, created.text
    again = env.http.post(f"{LIVE}?preview=true", json=body, headers=headers)
    assert again.status_code == 409, again.text
