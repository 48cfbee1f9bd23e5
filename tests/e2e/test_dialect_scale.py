"""The official Scale GP SDK (strict response validation on) against a real `berth serve`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import scale_gp_beta
from scale_gp_beta import SGPClient
from scale_gp_beta.types import InferenceCreateResponse
from scale_gp_beta.types.launch_vendor_configuration_param import (
    LaunchVendorConfigurationParam,
    ModelImage,
)

from tests.e2e.harness import BerthServer, wait_for

ACCOUNT = "acct-scale"


def echo_config(**image: Any) -> LaunchVendorConfigurationParam:
    """A launch vendor configuration running catalog/echo; `image` overrides ModelImage fields."""
    model_image = cast(ModelImage, {
        "registry": "", "repository": "catalog/echo", "tag": "", "command": [],
        "predict_route": "/predict", "healthcheck_route": "/healthz", "readiness_delay": 0,
        "env_vars": {"MODE": "a"}, **image})
    return {"model_image": model_image,
            "model_infra": {"endpoint_type": "sync", "cpus": "1", "memory": "256Mi",
                            "min_workers": 1, "max_workers": 2, "per_worker": 4,
                            "labels": {"team": "ml"}}}


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[SGPClient]:
    client = SGPClient(api_key=server.token, account_id=ACCOUNT, base_url=server.url,
                       max_retries=0, _strict_response_validation=True)
    yield client
    client.close()


def echoed(answer: InferenceCreateResponse) -> object:
    """What catalog/echo echoed back in a generic inference answer (or one stream chunk)."""
    assert isinstance(answer.response, dict), answer
    return answer.response["echo"]


def _ready(sdk: SGPClient, model_id: str) -> Any:
    def check() -> Any:
        model = sdk.models.retrieve(model_id)
        assert model.status != "failed", model.status_reason
        return model if model.status == "ready" else None
    return wait_for(check, 60, every=0.5, what=f"model {model_id} ready")


def test_sdk_launch_model_lifecycle(sdk: SGPClient, server: BerthServer) -> None:
    created = sdk.models.create(model={
        "name": "echo-model", "model_vendor": "launch", "model_type": "generic",
        "model_metadata": {"owner": "me"}, "vendor_configuration": echo_config()})
    assert created.name == "echo-model" and created.status == "deploying"
    assert created.api_model_vendor == "launch" and created.metadata == {"owner": "me"}
    ready = _ready(sdk, created.id)
    infra = ready.vendor_configuration.infra
    assert (infra.min_workers, infra.max_workers, infra.per_worker) == (1, 2, 4)
    assert ready.vendor_configuration.image.repository == "catalog/echo"
    answer = sdk.inference.create(model="launch/echo-model", args={"via": "scale"})
    assert answer.object == "generic_inference"
    assert echoed(answer) == {"via": "scale"}

    patched = sdk.models.update(created.id, model={"model_metadata": {}})  # seed 004's body
    assert patched.metadata == {} and patched.status == "ready"
    rolled = sdk.models.update(created.id, model={"vendor_configuration": {
        "model_image": {"env_vars": {"MODE": "b"}}}})
    assert rolled.vendor_configuration.image.env_vars == {"MODE": "b"}  # type: ignore[union-attr]
    native = f"/v1/projects/{ACCOUNT}/deployments"
    with server.client() as http:
        dep = http.get(native).json()["items"][0]
        assert dep["envs"] == {"MODE": "b"} and dep["generation"] >= 2
    _ready(sdk, created.id)
    assert echoed(sdk.inference.create(model="launch/echo-model", args={"n": 2})) == {"n": 2}

    renamed = sdk.models.update(created.id, model={"name": "echo-renamed"})
    assert renamed.name == "echo-renamed"
    deleted = sdk.models.delete(created.id)
    assert deleted.deleted and deleted.id == created.id and deleted.object == "model"
    with pytest.raises(scale_gp_beta.NotFoundError):
        sdk.models.retrieve(created.id)


def test_sdk_lists_with_cursor_paging(sdk: SGPClient) -> None:
    ids = [sdk.models.create(model={"name": f"hosted-{i}", "model_vendor": "openai",
                                    "model_type": "chat_completion"}).id for i in range(5)]
    first = sdk.models.list(limit=2)
    assert [m.id for m in first.items] == ids[:2] and first.has_more
    assert [m.id for m in sdk.models.list(limit=2)] == ids  # the SDK follows the cursor
    assert [m.id for m in sdk.models.list(limit=2, starting_after=ids[3]).items] == ids[4:]
    assert [m.id for m in sdk.models.list(limit=2, ending_before=ids[3]).items] == ids[1:3]
    assert [m.name for m in sdk.models.list(name="hosted-3").items] == ["hosted-3"]
    desc = sdk.models.list(limit=10, sort_order="desc").items
    assert [m.id for m in desc] == ids[::-1] and desc[0].status == "ready"
    swapped = sdk.models.update(ids[0], model={"name": "hosted-1", "on_conflict": "swap"})
    assert swapped.name == "hosted-1" and sdk.models.retrieve(ids[1]).name == "hosted-0"
    for model_id in ids:
        sdk.models.delete(model_id)
    assert sdk.models.list().items == []


def test_sdk_sees_scale_errors(sdk: SGPClient, server: BerthServer) -> None:
    with pytest.raises(scale_gp_beta.NotFoundError) as missing:
        sdk.models.retrieve("no-such-model")
    assert "no-such-model" in missing.value.response.json()["detail"]
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as bad:
        sdk.models.create(model={"name": "bad-cpu", "model_vendor": "launch",
                                 "vendor_configuration": {
            "model_image": {"repository": "catalog/echo", "registry": "", "tag": "",
                            "command": []},
            "model_infra": {"cpus": "lots"}}})
    detail = bad.value.response.json()["detail"]
    assert detail[0]["loc"] == ["body", "vendor_configuration", "model_infra", "cpus"]
    inverted = echo_config()
    inverted["model_infra"] = {"min_workers": 3, "max_workers": 1}
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as workers:
        sdk.models.create(model={"name": "bad-workers", "model_vendor": "launch",
                                 "vendor_configuration": inverted})
    assert "min_workers" in workers.value.response.text
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as unknown:
        sdk.models.create(model={"name": "bad-image", "model_vendor": "launch",
                                 "vendor_configuration": echo_config(
            repository="catalog/nope")})
    assert "repository" in unknown.value.response.text
    assert sdk.models.list(name="bad-image").items == []  # nothing half-applied
    with pytest.raises(scale_gp_beta.NotFoundError):
        sdk.inference.create(model="launch/nowhere", args={})
    sdk.models.create(model={"name": "twice", "model_vendor": "openai",
                             "model_type": "generic"})
    with pytest.raises(scale_gp_beta.ConflictError):
        sdk.models.create(model={"name": "twice", "model_vendor": "openai",
                                 "model_type": "generic"})
    with pytest.raises(scale_gp_beta.AuthenticationError):
        SGPClient(api_key="wrong", account_id=ACCOUNT, base_url=server.url,
                  max_retries=0).models.list()
    r = httpx.get(f"{server.url}/v5/models", timeout=10)
    assert r.status_code == 401 and "x-api-key" in r.json()["detail"]


def test_private_model_needs_an_api_key_of_the_account(sdk: SGPClient,
                                                        server: BerthServer) -> None:
    config = echo_config()
    config["model_infra"] |= {"public_inference": False, "high_priority": False,
                              "storage": "1Gi"}
    created = sdk.models.create(model={"name": "private", "model_vendor": "launch",
                                       "vendor_configuration": config})
    _ready(sdk, created.id)
    with pytest.raises(scale_gp_beta.AuthenticationError) as refused:  # the gateway asks
        sdk.inference.create(model="launch/private", args={"a": 1})
    assert "API key" in refused.value.response.json()["detail"]
    with server.client() as http:
        r = http.post(f"/v1/projects/{ACCOUNT}/api-keys", json={"name": "scale-caller"})
        assert r.status_code == 201, r.text
        key = r.json()["secret"]
    keyed = SGPClient(api_key=server.token, account_id=ACCOUNT, base_url=server.url,
                      max_retries=0, default_headers={"Authorization": f"Bearer {key}"})
    try:
        answer = keyed.inference.create(model="launch/private", args={"a": 1})
        assert answer.response["echo"] == {"a": 1}  # type: ignore[index,call-overload]
    finally:
        keyed.close()
    storage = sdk.models.retrieve(created.id).vendor_configuration.infra.storage  # type: ignore[union-attr]
    assert storage == "1Gi"  # kept and shown back
    with pytest.raises(scale_gp_beta.UnprocessableEntityError) as priority:
        sdk.models.update(created.id, model={"vendor_configuration": {
            "model_infra": {"high_priority": True}}})
    assert priority.value.response.json()["detail"][0]["loc"][-1] == "high_priority"
