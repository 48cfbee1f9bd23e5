"""Scale GP async models through the real app (SQLite and a data directory in tmp_path, the
fake runtime): `endpoint_type: async` turns on the native async, and `/v5/inference` goes
through the queue: submitted with InvocationService.submit, finished here by hand
(tests/fakes/dispatch.py), answered in the sync shape. The official SDK (scale-gp-beta)
drives it over the in-process client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import scale_gp_beta
from scale_gp_beta import SGPClient

from berth.domain.invocations import InvocationStatus
from berth.services.invocations import InvocationService
from tests.fakes.dispatch import Finisher
from tests.fakes.sdk_transport import HttpxViaTestClient
from tests.unit.dialects.dialect_app import DialectApp

ACCOUNT = "acct-async"
HEADERS = {"x-api-key": "", "x-selected-account-id": ACCOUNT}
CONFIG: dict[str, Any] = {"model_image": {"registry": "", "repository": "catalog/echo", "tag": "",
                          "command": [], "predict_route": "/predict",
                          "healthcheck_route": "/healthz", "env_vars": {}},
          "model_infra": {"endpoint_type": "async", "cpus": "1", "memory": "256Mi",
                          "min_workers": 0, "max_workers": 1, "per_worker": 3}}


class Env(DialectApp):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.headers = HEADERS | {"x-api-key": self.token}
        self.invocations: InvocationService = self.app.state.invocations

    def post(self, path: str, body: Any) -> Any:
        return self.http.post(path, content=json.dumps(body), headers=self.headers)

    def model(self, name: str = "queued", **infra: Any) -> dict[str, Any]:
        config = {"model_image": CONFIG["model_image"],
                  "model_infra": CONFIG["model_infra"] | infra}
        made = self.post("/v5/models", {"name": name, "model_vendor": "launch",
                                        "model_type": "generic",
                                        "vendor_configuration": config})
        assert made.status_code == 200, made.text
        out: dict[str, Any] = made.json()
        return out

    def deployment(self) -> str:
        (d,) = self.deployments(ACCOUNT)
        return d.name

    def finisher(self, **kw: Any) -> Finisher:
        f = Finisher(self.store, self.app.state.deployments, self.app.state.datasets,
                     ACCOUNT, self.deployment(), **kw)
        f.start()
        return f


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    with e.http:
        yield e
    e.close()


def test_an_async_model_turns_on_the_native_async(env: Env) -> None:
    made = env.model()
    assert made["vendor_configuration"]["model_infra"]["endpoint_type"] == "async"
    (d,) = env.deployments(ACCOUNT)
    assert d.spec.endpoint_type.value == "async"
    assert (d.spec.async_.enabled, d.spec.async_.workers) == (True, 3)
    changed = env.http.patch(f"/v5/models/{made['id']}", headers=env.headers, content=json.dumps(
        {"vendor_configuration": {"model_infra": {"endpoint_type": "sync"}}}))
    assert changed.status_code == 200, changed.text
    (d,) = env.deployments(ACCOUNT)
    assert not d.spec.async_.enabled and d.spec.endpoint_type.value == "sync"


def test_more_async_workers_than_berth_runs_is_refused_at_per_worker(env: Env) -> None:
    config = {"model_image": CONFIG["model_image"],
              "model_infra": CONFIG["model_infra"] | {"per_worker": 20000}}
    answer = env.post("/v5/models", {"name": "wide", "model_vendor": "launch",
                                     "model_type": "generic", "vendor_configuration": config})
    assert answer.status_code == 422, answer.text
    assert [d["loc"] for d in answer.json()["detail"]] == [
        ["body", "vendor_configuration", "model_infra", "per_worker"]]
    assert env.deployments(ACCOUNT) == []


def test_inference_is_queued_and_answered_as_a_sync_call(env: Env) -> None:
    env.model()
    finisher = env.finisher(answer=b'{"echo": {"n": 2}}')
    answer = env.post("/v5/inference", {"model": "launch/queued", "args": {"n": 2}})
    finisher.join()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"response": {"echo": {"n": 2}}, "object": "generic_inference"}
    assert env.relay.requests == []  # through the queue, not relayed
    (rid,) = finisher.finished
    inv = env.invocations.get(ACCOUNT, env.deployment(), rid)
    assert (inv.route, inv.path, inv.status) == ("predict", "/predict",
                                                 InvocationStatus.SUCCEEDED)
    with env.store.read() as tx:
        assert tx.invocations.body(rid) is None  # the body is dropped once it ended


def test_a_text_result_is_answered_as_text(env: Env) -> None:
    env.model()
    finisher = env.finisher(answer=b"plain words")
    answer = env.post("/v5/inference", {"model": "queued", "args": {}})
    finisher.join()
    assert answer.json()["response"] == "plain words"


def test_still_pending_at_the_timeout_is_scales_timeout_error(env: Env) -> None:
    env.model()
    answer = env.post("/v5/inference", {"model": "launch/queued", "args": {"n": 1},
                                        "inference_configuration": {"timeout_seconds": 0.2}})
    assert answer.status_code == 504, answer.text
    detail = answer.json()["detail"]
    assert "within 0.2 s" in detail and "still queued" in detail
    assert answer.headers["x-should-retry"] == "false"  # it still runs: no second copy
    page = env.invocations.page(ACCOUNT, env.deployment())
    assert page.total == 1 and page.items[0].id in detail


@pytest.mark.parametrize("code, status", [(422, 422), (503, 502)])
def test_a_failed_request_is_the_error_a_sync_failure_gets(env: Env, code: int,
                                                           status: int) -> None:
    env.model()
    finisher = env.finisher(status_code=code, answer=b'{"detail": "no"}')
    answer = env.post("/v5/inference", {"model": "launch/queued", "args": {}})
    finisher.join()
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"] == f'the model answered {code}: {{"detail": "no"}}'
    assert answer.headers["x-should-retry"] == "false"  # the queue retried it already


def test_streaming_an_async_model_is_refused(env: Env) -> None:
    env.model()
    for body in ({"model": "launch/queued", "args": {}, "stream": True},
                 {"model": "launch/queued", "args": {"stream": True}}):
        answer = env.post("/v5/inference", body)
        assert answer.status_code == 422, answer.text
        (err,) = answer.json()["detail"]
        assert err["loc"] == ["body", "stream"] and "async endpoint" in err["msg"]
    assert env.invocations.page(ACCOUNT, env.deployment()).total == 0


def test_async_turned_off_natively_refuses_in_scales_shape(env: Env) -> None:
    env.model()
    env.app.state.deployments.patch(ACCOUNT, env.deployment(), {"async": {"enabled": False}})
    answer = env.post("/v5/inference", {"model": "launch/queued", "args": {}})
    assert answer.status_code == 409, answer.text
    assert "not enabled" in answer.json()["detail"]


def test_the_sdks_inference_create_works_unchanged(env: Env) -> None:
    env.model()
    sdk = SGPClient(api_key=env.token, account_id=ACCOUNT, base_url="http://testserver",
                    http_client=httpx.Client(transport=HttpxViaTestClient(env.http)),
                    max_retries=0, _strict_response_validation=True)
    finisher = env.finisher(answer=b'{"echo": {"q": "x"}}')
    answer = sdk.inference.create(model="launch/queued", args={"q": "x"})
    finisher.join()
    assert answer.object == "generic_inference" and answer.response == {"echo": {"q": "x"}}
    with pytest.raises(scale_gp_beta.APIStatusError) as late:
        sdk.inference.create(model="launch/queued", args={},
                             inference_configuration={"timeout_seconds": 1})
    assert late.value.status_code == 504
    sdk.close()
