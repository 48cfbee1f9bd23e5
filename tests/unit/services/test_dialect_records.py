"""Dialect records written with the deployment change they belong to, in one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from berth.domain.errors import Conflict, NotFound, SpecInvalid
from berth.domain.records import Deployment, Task
from berth.services.deployments import DeploymentService
from berth.services.dialect_records import (
    DialectRecordService,
    RecordClaim,
    RecordDelete,
    RecordWrite,
)
from berth.store.dialect_records import DialectRecord
from berth.store.engine import Store
from tests.fakes.builders import T0, facts

SPEC = {"name": "echo", "image": "catalog/echo", "listening_port": 8080,
        "containers": [{"region": "local", "scale": {"min": 1, "max": 1}}]}


@pytest.fixture
def svc(store: Store) -> DeploymentService:
    return DeploymentService(store, facts(), lambda: T0)


@pytest.fixture
def records(store: Store) -> DialectRecordService:
    return DialectRecordService(store, lambda: T0)


def ids(d: Deployment, task: Task) -> dict[str, Any]:
    return {"deployment_id": d.id, "task_id": task.id}


def test_a_create_writes_its_record_with_a_numbered_key_and_the_ids(
        svc: DeploymentService, records: DialectRecordService) -> None:
    first = svc.create("p", SPEC, records=[RecordWrite("tir", "endpoint", ids)])
    second = svc.create("p", {**SPEC, "name": "echo-two"},
                        records=[RecordWrite("tir", "endpoint", {"name": "echo-two"})])
    assert [r.key for r in first.records + second.records] == ["1", "2"]
    rec = records.get("tir", "endpoint", "1")
    assert rec is not None and rec.project == "p" and rec.created_at == T0
    assert rec.data == {"deployment_id": first.deployment.id, "task_id": first.task.id}


@pytest.mark.parametrize("bad", ["invalid spec", "name taken"])
def test_a_refused_change_writes_no_record(svc: DeploymentService,
                                           records: DialectRecordService, bad: str) -> None:
    svc.create("p", SPEC)
    data = {**SPEC, "listening_port": "x"} if bad == "invalid spec" else SPEC
    with pytest.raises((SpecInvalid, Conflict)):
        svc.create("p", data, records=[RecordWrite("tir", "endpoint", {"a": 1}, key="k")])
    assert records.find("tir", "endpoint") == []


def test_a_failing_record_undoes_the_change(svc: DeploymentService,
                                            records: DialectRecordService) -> None:
    def broken(_d: Deployment, _t: Task) -> dict[str, Any]:
        raise RuntimeError("the dialect's record could not be built")

    with pytest.raises(RuntimeError):
        svc.create("p", SPEC, records=[RecordWrite("tir", "endpoint", broken)])
    with pytest.raises(Exception, match="not found"):
        svc.get("p", "echo")
    assert records.find("tir", "endpoint") == []


def test_update_and_delete_carry_their_records(svc: DeploymentService,
                                               records: DialectRecordService) -> None:
    svc.create("p", SPEC, records=[RecordWrite("scale", "model", {"v": 1}, key="m")])
    svc.patch("p", "echo", {"envs": {"A": "1"}},
              records=[RecordWrite("scale", "model", {"v": 2}, key="m", created_at=T0)])
    found = records.get("scale", "model", "m")
    assert found is not None and found.data == {"v": 2}
    svc.delete("p", "echo", records=[RecordDelete("scale", "model", "m")])
    assert records.get("scale", "model", "m") is None


def test_records_of_no_change(records: DialectRecordService) -> None:
    records.put([DialectRecord("foundry", "model", "ri.1", "foundry", {"name": "a"}, T0),
                 DialectRecord("foundry", "model", "ri.2", "foundry", {"name": "b"}, T0)])
    assert [r.key for r in records.find("foundry", "model", name="b")] == ["ri.2"]
    assert records.delete("foundry", "model", "ri.1")
    assert not records.delete("foundry", "model", "ri.1")


def _claim(holds: bool) -> RecordClaim:
    lock = RecordWrite("d", "lock", {"holder": "new"}, key="branch-1")
    return RecordClaim(lock, {"branch": "1"}, lambda other, d: holds and d is not None,
                       lambda other: Conflict(f"held by {other.key}"), kind="live")


def test_a_claim_held_by_another_record_refuses_the_whole_change(
        svc: DeploymentService, records: DialectRecordService) -> None:
    svc.create("p", SPEC, records=[RecordWrite("d", "live", {"name": "echo", "branch": "1"},
                                               key="old")])
    other = SPEC | {"name": "echo2"}
    with pytest.raises(Conflict, match="held by old"):
        svc.create("p", other, records=[_claim(True), RecordWrite("d", "live", {}, key="new")])
    with pytest.raises(NotFound):  # the name was not taken
        svc.get("p", "echo2")
    assert records.get("d", "lock", "branch-1") is None
    assert records.get("d", "live", "new") is None
    change = svc.create("p", other, records=[_claim(False),
                                             RecordWrite("d", "live", {}, key="new")])
    assert [r.key for r in change.records] == ["branch-1", "new"]
