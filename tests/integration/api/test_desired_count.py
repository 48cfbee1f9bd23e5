"""A deployment's GET and list show each region's desired count (the autoscaler's decision
within [min, max]), and PUT takes that shape back unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.store.autoscaler import ScaleRecord
from tests.integration.api.app_env import ApiEnv

BASE = "/v1/projects/p/deployments"


def spec(name: str, max_: int = 4) -> dict[str, Any]:
    return {"name": name, "image": "catalog/echo",
            "containers": [{"region": "local", "scale": {"min": 1, "max": max_}}]}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    e = ApiEnv(tmp_path)
    with e.http:
        yield e
    e.close()


def create(env: ApiEnv, name: str, max_: int = 4) -> str:
    answer = env.http.post(BASE, json=spec(name, max_))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["deployment"]["id"])


def decide(env: ApiEnv, deployment_id: str, desired: int) -> None:
    with env.store.write() as tx:
        tx.autoscaler.save(ScaleRecord(deployment_id=deployment_id, region="local",
                                       desired=desired, current=1, panic=False,
                                       decided_at=1.0))


def test_get_and_list_show_the_decided_count_within_the_bounds(env: ApiEnv) -> None:
    decide(env, create(env, "busy"), 3)
    decide(env, create(env, "capped", max_=2), 5)  # decided before max was lowered
    create(env, "fresh")
    assert env.http.get(f"{BASE}/busy").json()["containers"][0]["desired"] == 3
    items = {d["name"]: d["containers"][0]["desired"]
             for d in env.http.get(BASE).json()["items"]}
    assert items == {"busy": 3, "capped": 2, "fresh": None}


def test_a_stopped_deployment_has_no_desired_count(env: ApiEnv) -> None:
    d_id = create(env, "idle")
    decide(env, d_id, 2)
    assert env.http.post(f"{BASE}/idle/stop").status_code == 202
    assert env.http.get(f"{BASE}/idle").json()["containers"][0]["desired"] is None


def test_put_takes_the_get_shape_back(env: ApiEnv) -> None:
    decide(env, create(env, "echo"), 3)
    got = env.http.get(f"{BASE}/echo").json()
    assert got["containers"][0]["desired"] == 3
    answer = env.http.put(f"{BASE}/echo", json=got)
    assert answer.status_code == 202, answer.text
    patched = env.http.patch(f"{BASE}/echo", json={"containers": got["containers"]},
                             headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 202, patched.text
