"""Scale GP's create, update and inference routes driven with mutated bodies, in-process:
no answer is a 5xx, and every 4xx is in Scale's (FastAPI's) shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz import drive, drive_raw, encode
from tests.unit.dialects.dialect_app import DialectApp

COUNT = 150  # mutations per route (seeded sample of the field mutations)

LAUNCH = {
    "name": "fuzzed", "model_vendor": "launch", "model_type": "generic",
    "model_metadata": {"owner": "me", "tags": ["a"]}, "on_conflict": "update",
    "vendor_configuration": {
        "model_image": {
            "registry": "", "repository": "catalog/echo", "tag": "latest", "command": [],
            "streaming_command": [], "predict_route": "/predict",
            "streaming_predict_route": "/predict/stream", "healthcheck_route": "/healthz",
            "readiness_delay": 0, "env_vars": {"MODE": "a", "PORT": 8080},
            "request_schema": {"type": "object"}, "response_schema": {}},
        "model_infra": {
            "endpoint_type": "sync", "cpus": "500m", "gpus": 0, "gpu_type": "nvidia-tesla-t4",
            "memory": "256Mi", "storage": "1Gi", "min_workers": 0, "max_workers": 2,
            "per_worker": 4, "high_priority": False, "labels": {"team": "ml"},
            "public_inference": True}}}
PATCH = {"model_metadata": {"k": "v"}, "vendor_configuration": {
    "model_image": {"tag": "latest", "env_vars": {"MODE": "b"}},
    "model_infra": {"max_workers": 3, "cpus": 1}}}
RENAME = {"name": "fuzzed-renamed", "on_conflict": "swap"}
INFERENCE = {"model": "launch/fuzzed", "args": {"x": [1, 2]}, "stream": False,
             "inference_configuration": {"num_retries": 1, "timeout_seconds": 30}}
CHAT = {"model": "launch/fuzzed", "messages": [{"role": "user", "content": "hi"}],
        "stream": False, "max_tokens": 5}
COMPLETION = {"model": "launch/fuzzed", "prompt": "hi", "stream": False}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DialectApp]:
    e = DialectApp(tmp_path_factory.mktemp("scale"))
    yield e
    e.close()


def _headers(env: DialectApp) -> dict[str, str]:
    return {"x-api-key": env.token, "x-selected-account-id": "fuzz",
            "content-type": "application/json"}


def _model_id(env: DialectApp) -> str:
    r = env.http.post("/v5/models", content=encode(LAUNCH), headers=_headers(env))
    assert r.status_code == 200, r.text
    model_id: str = r.json()["id"]
    return model_id


def _scale_shaped(r: Any, what: str) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:500])
    if r.status_code < 400:
        return
    detail = r.json()["detail"]
    if isinstance(detail, list):
        assert detail and all(set(d) == {"loc", "msg", "type"} and d["loc"][0] in (
            "body", "query", "path") for d in detail), (what, detail)
    else:
        assert isinstance(detail, str) and detail, (what, r.text[:500])


ROUTES = [("POST", "/v5/models", LAUNCH), ("PATCH", "/v5/models/{id}", PATCH),
          ("PATCH", "/v5/models/{id}", RENAME), ("POST", "/v5/inference", INFERENCE),
          ("POST", "/v5/chat/completions", CHAT), ("POST", "/v5/completions", COMPLETION)]


@pytest.mark.parametrize(("method", "path", "base"), ROUTES)
def test_mutated_bodies_get_scale_errors_never_a_5xx(env: DialectApp, method: str, path: str,
                                                     base: dict[str, Any]) -> None:
    url = path.format(id=_model_id(env))
    r = env.http.request(method, url, content=encode(base), headers=_headers(env))
    assert r.status_code == 200, r.text  # the unmutated body is good
    refused = drive(env.http, method, url, base, _scale_shaped, headers=_headers(env),
                    count=COUNT)
    assert refused > 0  # and the mutations reach the validation


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROUTES])
def test_malformed_raw_bodies_get_scale_errors(env: DialectApp, method: str,
                                               path: str) -> None:
    url = path.format(id=_model_id(env))
    drive_raw(env.http, method, url, _scale_shaped, headers=_headers(env))


def test_min_workers_of_the_wrong_type_is_a_422_naming_it(env: DialectApp) -> None:
    body = {**LAUNCH, "name": "typed", "vendor_configuration": {
        "model_image": {"repository": "catalog/echo"}, "model_infra": {"min_workers": "a"}}}
    r = env.http.post("/v5/models", content=encode(body), headers=_headers(env))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "vendor_configuration", "model_infra",
                                            "min_workers"]
    listed = env.http.get("/v5/models?name=typed", headers=_headers(env))
    assert listed.json()["items"] == []  # nothing half-applied
