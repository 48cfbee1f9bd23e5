"""Deleting a deployment that has no live replica: stopped, scaled to zero, crash-looping, or
whose command cannot run. Each reaches DELETED, its name is free again, its delete task
finishes, and no IllegalTransition event is written."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.harness import Api, echo_spec

CRASH = ["python3", "-c", "import sys; print('no weights'); sys.exit(3)"]


def _stopped(api: Api, name: str) -> None:
    api.task(api.create(echo_spec(name, 1))["task_id"])
    assert api.task(api.act(name, "stop"))["state"] == "FINISHED"
    assert api.get(name)["status"] == "DISABLED"


def _scaled_to_zero(api: Api, name: str) -> None:
    spec = echo_spec(name)
    spec["containers"][0]["scale"] = {"min": 0, "max": 0}
    assert api.task(api.create(spec)["task_id"])["state"] == "FINISHED"
    d = api.get(name)
    assert d["status"] == "ACTIVE" and d["containers"][0]["deploy_status"]["total"] == 0


def _crash_looping(api: Api, name: str) -> None:
    api.create(echo_spec(name, 1, command=CRASH))
    api.wait_status(name, "ERROR", 60)


def _not_runnable(api: Api, name: str) -> None:
    api.create(echo_spec(name, 1, command=["definitely-not-installed-berth", "--serve"]))
    api.wait_status(name, "FAILED", 30)


def _events(api: Api, name: str) -> list[dict[str, Any]]:
    r = api.http.get(f"{api.base}/{name}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.mark.parametrize("name, prepare", [
    ("del-stopped", _stopped),
    ("del-zero", _scaled_to_zero),
    ("del-crashing", _crash_looping),
    ("del-failed", _not_runnable),
])
def test_delete_without_live_replicas_reaches_deleted(
        api: Api, name: str, prepare: Callable[[Api, str], None]) -> None:
    prepare(api, name)
    r = api.http.delete(f"{api.base}/{name}")
    assert r.status_code == 202, r.text
    task = api.task(r.json()["task_id"])
    assert task["state"] == "FINISHED", task
    d = api.wait_status(name, "DELETED", 10)
    assert d["status_reason"] == "deleted"
    assert name not in [x["name"] for x in api.http.get(api.base).json()["items"]]
    time.sleep(1.0)  # several controller ticks: nothing may keep happening to it
    events = _events(api, name)
    reasons = [e["reason"] for e in events]
    assert "IllegalTransition" not in reasons, events
    assert reasons.index("DELETING") < reasons.index("DELETED")
    assert reasons.count("DELETED") == 1
    again = api.create(echo_spec(name, 1))  # the name is free again
    assert api.task(again["task_id"])["state"] == "FINISHED"
    assert api.get(name)["status"] == "ACTIVE"
    assert api.task(api.http.delete(f"{api.base}/{name}").json()["task_id"])["state"] == (
        "FINISHED")
